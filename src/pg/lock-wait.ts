import pg from 'pg';
import { ToolError } from '../child-process.js';
import { pgClientConfig, type DbConnection } from './connection.js';

/**
 * A dump queued behind an ACCESS EXCLUSIVE lock (a migration at 02:00) would wait for hours
 * while its heartbeat says all is well, and the schedule's overlap SKIP would then skip every
 * later backup. So each attempt waits at most DB_LOCK_TIMEOUT for a table lock; a migration is
 * usually gone minutes later, so the attempt is retried, and after LOCK_WAIT_ATTEMPTS attempts
 * the backup fails, naming the session that held the lock.
 */
export const LOCK_WAIT_ATTEMPTS = 3;

/**
 * Whether `error` is a lock wait that ran out: the fingerprint session's `lock_timeout`
 * (SQLSTATE 55P03), or pg_dump's `--lock-wait-timeout` (pg_dump bounds its LOCK TABLE
 * statements with a statement_timeout, so it reports a cancelled LOCK TABLE).
 */
export function isLockWaitTimeout(error: unknown): boolean {
  if (error instanceof ToolError) return /canceling statement due to (?:statement|lock) timeout/.test(error.message) && /LOCK TABLE/.test(error.message);
  return (error as { code?: unknown } | undefined)?.code === '55P03';
}

export interface LockHolder {
  relation: string;
  granted: boolean;
  pid: number;
  user: string | null;
  application: string | null;
  client: string | null;
  transactionStart: Date | null;
  /**
   * The first two words of its current or last statement (`ALTER TABLE`, `LOCK TABLE`): what
   * it is doing, never its text, which may hold data or a password and would reach the
   * workflow history and the failure notice.
   */
  statement: string | null;
}

/**
 * The sessions that hold (or queue for) an ACCESS EXCLUSIVE lock on a table of `db`: the only
 * lock mode that blocks the ACCESS SHARE locks pg_dump and the fingerprint's reads take. Read
 * right after the timeout, in a connection of its own (the timed-out transaction is aborted).
 */
export async function accessExclusiveHolders(db: DbConnection): Promise<LockHolder[]> {
  const client = new pg.Client(pgClientConfig(db));
  await client.connect();
  try {
    const result = await client.query<{
      relation: string;
      granted: boolean;
      pid: number;
      usename: string | null;
      application_name: string | null;
      client: string | null;
      xact_start: Date | null;
      query: string | null;
    }>(
      `SELECT format('%I.%I', n.nspname, c.relname) AS relation, l.granted, a.pid, a.usename, a.application_name,
              coalesce(host(a.client_addr), 'local') AS client, a.xact_start,
              left(a.query, 200) AS query
         FROM pg_locks l
         JOIN pg_stat_activity a ON a.pid = l.pid
         JOIN pg_class c ON c.oid = l.relation
         JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock'
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND l.pid <> pg_backend_pid()
        ORDER BY l.granted DESC, a.xact_start, 1`,
    );
    return result.rows.map((row) => ({
      relation: row.relation,
      granted: row.granted,
      pid: row.pid,
      user: row.usename,
      application: row.application_name || null,
      client: row.client,
      transactionStart: row.xact_start,
      statement: row.query ? row.query.trim().split(/\s+/).slice(0, 2).join(' ') : null,
    }));
  } finally {
    await client.end();
  }
}

/** `public.invoices: ACCESS EXCLUSIVE held by pid 4711 (user app, application "migrate", ...)`. */
export function describeLockHolder(holder: LockHolder): string {
  const details = [
    `user ${holder.user ?? '?'}`,
    ...(holder.application ? [`application ${JSON.stringify(holder.application)}`] : []),
    `client ${holder.client ?? '?'}`,
    ...(holder.transactionStart ? [`in a transaction since ${holder.transactionStart.toISOString()}`] : []),
    ...(holder.statement ? [`statement ${JSON.stringify(`${holder.statement} ...`)}`] : []),
  ];
  return `${holder.relation}: ACCESS EXCLUSIVE ${holder.granted ? 'held' : 'awaited'} by pid ${holder.pid} (${details.join(', ')})`;
}

/** The message of a dump attempt that waited DB_LOCK_TIMEOUT for a table lock. */
export function lockWaitMessage(lockTimeoutMs: number, holders: readonly LockHolder[] | undefined, attempt: number): string {
  const who =
    holders === undefined
      ? 'the sessions holding locks could not be read'
      : holders.length > 0
        ? holders.map(describeLockHolder).join('; ')
        : 'the session holding it has released it since';
  const next = attempt < LOCK_WAIT_ATTEMPTS ? 'retried' : 'not retried again';
  return `waited DB_LOCK_TIMEOUT (${lockTimeoutMs / 1000} s) for a table lock: ${who}; attempt ${attempt} of ${LOCK_WAIT_ATTEMPTS}, ${next}`;
}

import { describe, expect, it } from 'vitest';
import { ToolError } from '../../src/child-process.js';
import { describeLockHolder, isLockWaitTimeout, lockWaitMessage, type LockHolder } from '../../src/pg/lock-wait.js';
import { explainRestoreToolFailure, firstErrorLines, PERMANENT_RESTORE_ERRORS } from '../../src/pg/restore-errors.js';

const permanent = (stderr: string) => PERMANENT_RESTORE_ERRORS.some((pattern) => pattern.test(stderr));

// The verdicts behind "fail fast, retry what can finish", on the tools' real wording (PostgreSQL 15).
describe('which pg_restore and psql failures a retry cannot fix', () => {
  it.each([
    'pg_restore: error: could not execute query: ERROR:  type "public.invoice_status" does not exist',
    'pg_restore: error: could not execute query: ERROR:  relation "public.customers" does not exist',
    'pg_restore: error: COPY failed for table "orders": ERROR:  invalid input value for enum order_status: "void"',
    'psql:/tmp/globals.apply.sql:3: ERROR:  role "erp4_app" already exists',
    'pg_restore: error: input file does not appear to be a valid archive',
    'pg_restore: error: input file is too short (read 3, expected 5)',
    'pg_restore: error: could not read from input file: end of file',
    'pg_restore: error: could not uncompress data: invalid distance too far back',
  ])('permanent: %s', (stderr) => expect(permanent(stderr)).toBe(true));

  it.each([
    'pg_restore: error: connection to server at "127.0.0.1", port 5432 failed: Connection refused',
    'pg_restore: error: connection to server at "db", port 5432 failed: FATAL:  sorry, too many clients already',
    'pg_restore: error: connection to server at "db", port 5432 failed: FATAL:  too many connections for role "erp4_backup"',
    'psql: error: connection to server at "db", port 5432 failed: FATAL:  the database system is starting up',
    'pg_restore: error: could not execute query: ERROR:  deadlock detected',
    'pg_restore: error: could not execute query: ERROR:  canceling statement due to lock timeout',
    'pg_restore: error: could not execute query: ERROR:  could not extend file "base/16384/16385": No space left on device',
    'pg_restore: error: could not execute query: server closed the connection unexpectedly',
    'pg_restore: error: could not read from input file: Input/output error',
  ])('retryable: %s', (stderr) => expect(permanent(stderr)).toBe(false));

  it('names the first error and the lines after it, a few short lines', () => {
    const stderr = [
      'pg_restore: warning: something harmless',
      'pg_restore: error: could not execute query: ERROR:  type "public.invoice_status" does not exist',
      'LINE 3:     status public.invoice_status NOT NULL',
      '                   ^',
      `Command was: CREATE TABLE public.invoices (${'x'.repeat(1000)}`,
      'a', 'b', 'c', 'd',
    ].join('\n');
    const lines = firstErrorLines(stderr).split('\n');
    expect(lines[0]).toBe('pg_restore: error: could not execute query: ERROR:  type "public.invoice_status" does not exist');
    expect(lines).toHaveLength(6);
    expect(lines[3]!.length).toBeLessThanOrEqual(303);
    const explained = explainRestoreToolFailure(new ToolError('pg_restore', `pg_restore exited with code 1: ${stderr}`, true)) as ToolError;
    expect(explained.message.split('\n')[0]).toBe(
      'pg_restore failed (not retried: the same input fails the same way): pg_restore: error: could not execute query: ERROR:  type "public.invoice_status" does not exist',
    );
    expect(explained.permanent).toBe(true);
  });
});

describe('a dump waiting for a table lock', () => {
  const holder: LockHolder = {
    relation: 'public.invoices',
    granted: true,
    pid: 4711,
    user: 'erp4_app',
    application: 'prisma-migrate',
    client: '10.0.0.5',
    transactionStart: new Date('2026-11-26T17:00:03Z'),
    statement: 'ALTER TABLE',
  };

  it("recognises pg_dump's and the fingerprint session's lock timeouts, and nothing else", () => {
    expect(isLockWaitTimeout(new ToolError('pg_dump', 'pg_dump exited with code 1: pg_dump: error: query failed: ERROR:  canceling statement due to statement timeout\npg_dump: detail: Query was: LOCK TABLE public.invoices IN ACCESS SHARE MODE', false))).toBe(true);
    expect(isLockWaitTimeout(Object.assign(new Error('canceling statement due to lock timeout'), { code: '55P03' }))).toBe(true);
    expect(isLockWaitTimeout(new ToolError('pg_dump', 'pg_dump exited with code 1: pg_dump: error: query failed: ERROR:  canceling statement due to statement timeout\npg_dump: detail: Query was: COPY public.invoices TO stdout', false))).toBe(false);
    expect(isLockWaitTimeout(Object.assign(new Error('canceling statement due to statement timeout'), { code: '57014' }))).toBe(false);
  });

  it('names the session holding the lock, and says whether it will be retried', () => {
    expect(describeLockHolder(holder)).toBe(
      'public.invoices: ACCESS EXCLUSIVE held by pid 4711 (user erp4_app, application "prisma-migrate", client 10.0.0.5, in a transaction since 2026-11-26T17:00:03.000Z, statement "ALTER TABLE ...")',
    );
    expect(lockWaitMessage(300_000, [holder], 1)).toMatch(/^waited DB_LOCK_TIMEOUT \(300 s\) for a table lock: public\.invoices: .*; attempt 1 of 3, retried$/);
    expect(lockWaitMessage(300_000, [{ ...holder, granted: false }], 3)).toMatch(/ACCESS EXCLUSIVE awaited by pid 4711 .*; attempt 3 of 3, not retried again$/);
    expect(lockWaitMessage(2000, [], 2)).toBe('waited DB_LOCK_TIMEOUT (2 s) for a table lock: the session holding it has released it since; attempt 2 of 3, retried');
    expect(lockWaitMessage(2000, undefined, 3)).toBe('waited DB_LOCK_TIMEOUT (2 s) for a table lock: the sessions holding locks could not be read; attempt 3 of 3, not retried again');
  });
});

import type { Client, ClientConfig } from 'pg';
import { ToolError } from '../child-process.js';
import { pgSslEnv, pgSslStream, type PgTls, type SettingPrefix } from './tls.js';

/** Where the database is (S20). The password never leaves the worker's process and environment. */
export interface DbConnection {
  host: string;
  port: number;
  user: string;
  password?: string;
  database: string;
  /** DB_SSLMODE & co. (src/pg/tls.ts); undefined: libpq's default, `prefer`. */
  tls?: PgTls;
  /** Which variables configured this connection, for messages: `DB_` (default) or `DRILL_DB_`. */
  settingPrefix?: SettingPrefix;
}

export function pgClientConfig(db: DbConnection, database = db.database): ClientConfig {
  const stream = pgSslStream(db);
  return {
    host: db.host,
    port: db.port,
    user: db.user,
    password: db.password,
    database,
    application_name: 'erp4-backup',
    connectionTimeoutMillis: 15_000,
    // Always explicit: node-pg would otherwise read PGSSLMODE from the worker's own environment.
    ssl: false,
    ...(stream ? { stream } : {}),
  };
}

/**
 * Environment for pg_dump, pg_restore, pg_dumpall and psql. The password travels as
 * PGPASSWORD (never in argv, where /proc/<pid>/cmdline shows it) and the database name as
 * PGDATABASE, so a name with quotes or spaces needs no quoting at all.
 */
export function pgChildEnv(db: DbConnection, database = db.database): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    LANG: 'C.UTF-8',
    PGHOST: db.host,
    PGPORT: String(db.port),
    PGUSER: db.user,
    PGDATABASE: database,
    PGAPPNAME: 'erp4-backup',
    PGCONNECT_TIMEOUT: '15',
    ...pgSslEnv(db.tls),
  };
  if (db.password !== undefined) env.PGPASSWORD = db.password;
  return env;
}

/** libpq's TLS failures (all permanent: a setting or a certificate is wrong) and the settings to check. */
const TLS_FAILURES: readonly [RegExp, (p: SettingPrefix) => string][] = [
  [/certificate verify failed/i, (p) => `check ${p}SSLROOTCERT: it must hold the CA that signed the server's certificate`],
  [/server certificate for ".*" (?:\(and \d+ other names?\) )?does not match host name/i, (p) => `check ${p}HOST: it must be a name the server's certificate holds (or ${p}SSLMODE=verify-ca)`],
  [/(?:no pg_hba\.conf entry|pg_hba\.conf rejects connection) .*no encryption/i, (p) => `check ${p}USER and ${p}PASSWORD, and ${p}SSLMODE: set prefer or stronger if the server accepts only TLS`],
  [/server does not support SSL, but SSL was required/i, (p) => `turn ssl on in the server, or lower ${p}SSLMODE`],
  [/connection requires a valid client certificate|certificate authentication failed|tlsv1 alert unknown ca|sslv3 alert bad certificate/i, (p) => `check ${p}SSLCERT and ${p}SSLKEY`],
  [/root certificate file ".*" does not exist|could not (?:read|load|open) (?:root certificate|certificate|private key) file/i, (p) => `check ${p}SSLROOTCERT, ${p}SSLCERT and ${p}SSLKEY`],
];

/** libpq/server messages that retrying will not fix. */
export const PERMANENT_PG_ERRORS = [
  /password authentication failed/i,
  /no pg_hba\.conf entry/i,
  /database ".*" does not exist/i,
  /role ".*" does not exist/i,
  /permission denied/i,
  /server version mismatch/i,
  /aborting because of server version mismatch/i,
  ...TLS_FAILURES.map(([pattern]) => pattern),
];

/** The server refused the login, or the database does not exist: retrying cannot help. */
export class DatabaseAccessError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DatabaseAccessError';
  }
}

// SQLSTATEs of a refused login (28P01 invalid_password, 28000 no pg_hba.conf entry or no such
// role) and of a missing database (3D000 invalid_catalog_name).
const LOGIN_REFUSED = new Set(['28P01', '28000']);
const NO_SUCH_DATABASE = '3D000';

/**
 * Connects `client`; a failure names the settings to look at. A refused login (DB_USER,
 * DB_PASSWORD) or a missing database (DB_NAME) is a DatabaseAccessError, never retried; an
 * unreachable server (DB_HOST, DB_PORT) stays retryable: it may be restarting.
 */
export async function connectDatabase(client: Client, db: DbConnection, database = db.database): Promise<void> {
  const p = db.settingPrefix ?? 'DB_';
  try {
    await client.connect();
  } catch (error) {
    const message = (error as Error).message;
    const code = (error as { code?: string }).code;
    if ((error as Error).name === 'PgTlsError') throw error;
    if (code !== undefined && LOGIN_REFUSED.has(code)) {
      const hint = TLS_FAILURES.find(([pattern]) => pattern.test(message))?.[1](p) ?? `check ${p}USER and ${p}PASSWORD`;
      throw new DatabaseAccessError(`PostgreSQL at ${db.host}:${db.port} refused the login of ${p}USER ${JSON.stringify(db.user)}: ${message}; ${hint}`, { cause: error });
    }
    if (code === NO_SUCH_DATABASE) {
      throw new DatabaseAccessError(`${message} on ${db.host}:${db.port}; check ${p === 'DB_' ? 'DB_NAME' : 'the database name'}`, { cause: error });
    }
    throw new Error(`cannot connect to PostgreSQL at ${p}HOST ${db.host} ${p}PORT ${db.port}: ${message}`, { cause: error });
  }
}

/** A pg tool's failure with the setting to check appended (its stderr only says what libpq saw). */
export function explainPgToolFailure(error: unknown, settingPrefix: SettingPrefix = 'DB_'): unknown {
  if (!(error instanceof ToolError)) return error;
  const p = settingPrefix;
  const tls = TLS_FAILURES.find(([pattern]) => pattern.test(error.message));
  const hint = tls
    ? tls[1](p)
    : /password authentication failed|no pg_hba\.conf entry|FATAL:\s+role ".*" does not exist/i.test(error.message)
      ? `check ${p}USER and ${p}PASSWORD`
      : /FATAL:\s+database ".*" does not exist/i.test(error.message)
        ? 'check DB_NAME'
        : undefined;
  return hint ? new ToolError(error.tool, `${error.message}; ${hint}`, error.permanent || tls !== undefined) : error;
}

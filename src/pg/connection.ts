import type { Client, ClientConfig } from 'pg';
import { ToolError } from '../child-process.js';

/** Where the database is (S20). The password never leaves the worker's process and environment. */
export interface DbConnection {
  host: string;
  port: number;
  user: string;
  password?: string;
  database: string;
}

export function pgClientConfig(db: DbConnection, database = db.database): ClientConfig {
  return {
    host: db.host,
    port: db.port,
    user: db.user,
    password: db.password,
    database,
    application_name: 'erp4-backup',
    connectionTimeoutMillis: 15_000,
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
  };
  if (db.password !== undefined) env.PGPASSWORD = db.password;
  return env;
}

/** libpq/server messages that retrying will not fix. */
export const PERMANENT_PG_ERRORS = [
  /password authentication failed/i,
  /no pg_hba\.conf entry/i,
  /database ".*" does not exist/i,
  /role ".*" does not exist/i,
  /permission denied/i,
  /server version mismatch/i,
  /aborting because of server version mismatch/i,
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
  try {
    await client.connect();
  } catch (error) {
    const message = (error as Error).message;
    const code = (error as { code?: string }).code;
    if (code !== undefined && LOGIN_REFUSED.has(code)) {
      throw new DatabaseAccessError(`PostgreSQL at ${db.host}:${db.port} refused the login of DB_USER ${JSON.stringify(db.user)}: ${message}; check DB_USER and DB_PASSWORD`, { cause: error });
    }
    if (code === NO_SUCH_DATABASE) {
      throw new DatabaseAccessError(`${message} on ${db.host}:${db.port}; check DB_NAME`, { cause: error });
    }
    throw new Error(`cannot connect to PostgreSQL at DB_HOST ${db.host} DB_PORT ${db.port}: ${message}`, { cause: error });
  }
}

/** A pg tool's failure with the setting to check appended (its stderr only says what libpq saw). */
export function explainPgToolFailure(error: unknown): unknown {
  if (!(error instanceof ToolError)) return error;
  const hint = /password authentication failed|no pg_hba\.conf entry|role ".*" does not exist/i.test(error.message)
    ? 'check DB_USER and DB_PASSWORD'
    : /database ".*" does not exist/i.test(error.message)
      ? 'check DB_NAME'
      : undefined;
  return hint ? new ToolError(error.tool, `${error.message}; ${hint}`, error.permanent) : error;
}

import type { ClientConfig } from 'pg';

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

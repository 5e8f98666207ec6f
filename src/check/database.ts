import pg from 'pg';
import type { Config } from '../config.js';
import { connectDatabase, pgClientConfig, type DbConnection } from '../pg/connection.js';
import { checkPgToolVersion, resolvePgTool, type PgTool } from '../pg/tools.js';
import { critical, ok, unknown, within, type ProbeResult } from './probe.js';

const PG_TOOLS: readonly PgTool[] = ['pg_dump', 'pg_restore', 'pg_dumpall', 'psql'];
const TIMEOUT_MS = 30_000;

export interface ServerVersion {
  num: number;
  text: string;
}

function dbConnection(config: Config): DbConnection {
  return { ...config.db, password: config.db.password?.reveal(), settingPrefix: 'DB_' };
}

interface Login {
  server: ServerVersion;
  /** Whether the role may create databases: drills and restores create theirs. */
  createsDatabases: boolean;
}

/** Logs in with node-pg and reads the server's version and whether the role may create databases. */
async function logIn(db: DbConnection): Promise<Login> {
  const p = db.settingPrefix ?? 'DB_';
  const client = new pg.Client(pgClientConfig(db));
  // A connection the server drops later must not crash the check.
  client.on('error', () => undefined);
  try {
    await within(TIMEOUT_MS, `PostgreSQL at ${p}HOST ${db.host} ${p}PORT ${db.port}`, connectDatabase(client, db));
    const row = (await client.query<{ num: string; text: string; createdb: boolean }>(
      `SELECT current_setting('server_version_num') AS num, current_setting('server_version') AS text,
              (SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user) AS createdb`,
    )).rows[0]!;
    return { server: { num: Number(row.num), text: row.text }, createsDatabases: row.createdb };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Logs in as the backups do (node-pg with DB_* and DB_SSL*) and reads the server's version. */
export async function probeDatabase(config: Config): Promise<{ result: ProbeResult; login?: Login }> {
  const name = 'database';
  const db = dbConnection(config);
  try {
    const login = await logIn(db);
    return { result: ok(name, `logged in as ${db.user} to ${JSON.stringify(db.database)} on ${db.host}:${db.port}, PostgreSQL ${login.server.text}`), login };
  } catch (error) {
    return { result: critical(name, error, { fallback: ['DB_HOST', 'DB_PORT'] }) };
  }
}

/**
 * Where restore drills create their scratch database (S25): DRILL_DB_HOST, logged in with
 * DRILL_DB_*, or else the production server with DB_USER; either role must be allowed to
 * create databases, or every drill fails on its day.
 */
export async function probeDrillDatabase(config: Config, production: Login | undefined): Promise<ProbeResult> {
  const name = 'drill database';
  const server = config.drill.server;
  if (!server) {
    if (!production) return unknown(name, 'drills use the production server, and the database probe failed');
    return production.createsDatabases
      ? ok(name, `drills create their scratch databases on DB_HOST ${config.db.host} as DB_USER ${config.db.user}`)
      : {
          name,
          status: 'CRITICAL',
          detail: `DB_USER ${config.db.user} may not create databases, and drills create their scratch database on DB_HOST ${config.db.host}`,
          settings: ['DB_USER', 'DRILL_DB_HOST'],
          remedy: `ALTER ROLE <DB_USER> CREATEDB, or a separate drill server in DRILL_DB_HOST`,
        };
  }
  const db: DbConnection = { ...server, password: server.password?.reveal(), database: 'postgres', settingPrefix: 'DRILL_DB_' };
  try {
    const login = await logIn(db);
    if (!login.createsDatabases) {
      return { name, status: 'CRITICAL', detail: `DRILL_DB_USER ${server.user} may not create databases on DRILL_DB_HOST ${server.host}`, settings: ['DRILL_DB_USER'] };
    }
    return ok(name, `logged in as DRILL_DB_USER ${server.user} on DRILL_DB_HOST ${server.host}:${server.port} (PostgreSQL ${login.server.text}); it may create databases`);
  } catch (error) {
    return critical(name, error, { fallback: ['DRILL_DB_HOST', 'DRILL_DB_PORT'] });
  }
}

/** pg_dump, pg_restore, pg_dumpall and psql as the activities pick them: each of at least the server's major version. */
export async function probePgTools(config: Config, server: ServerVersion | undefined): Promise<ProbeResult[]> {
  return Promise.all(
    PG_TOOLS.map(async (tool) => {
      if (!server) return unknown(tool, 'the server version is unknown: the database probe failed');
      try {
        const path = await resolvePgTool(tool, { binDir: config.db.pgBinDir, serverMajor: Math.floor(server.num / 10_000) });
        const version = await within(TIMEOUT_MS, `${path} --version`, checkPgToolVersion(path, server.num));
        return ok(tool, `${path} ${version} (server ${server.text})`);
      } catch (error) {
        return critical(tool, error, { settings: ['PG_BIN_DIR'] });
      }
    }),
  );
}

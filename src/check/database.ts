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

/** Logs in as the backups do (node-pg with DB_* and DB_SSL*) and reads the server's version. */
export async function probeDatabase(config: Config): Promise<{ result: ProbeResult; server?: ServerVersion }> {
  const name = 'database';
  const db = dbConnection(config);
  const client = new pg.Client(pgClientConfig(db));
  // A connection the server drops later must not crash the check.
  client.on('error', () => undefined);
  try {
    await within(TIMEOUT_MS, `PostgreSQL at DB_HOST ${db.host} DB_PORT ${db.port}`, connectDatabase(client, db));
    const row = (await client.query<{ num: string; text: string }>(
      `SELECT current_setting('server_version_num') AS num, current_setting('server_version') AS text`,
    )).rows[0]!;
    const server = { num: Number(row.num), text: row.text };
    return { result: ok(name, `logged in as ${db.user} to ${JSON.stringify(db.database)} on ${db.host}:${db.port}, PostgreSQL ${server.text}`), server };
  } catch (error) {
    return { result: critical(name, error, { fallback: ['DB_HOST', 'DB_PORT'] }) };
  } finally {
    await client.end().catch(() => undefined);
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

import { writeFile } from 'node:fs/promises';
import pg from 'pg';
import { runTool } from '../child-process.js';
import { explainPgToolFailure, PERMANENT_PG_ERRORS, pgChildEnv, pgClientConfig, type DbConnection } from '../pg/connection.js';
import { PG_INSTALL_HINT, resolvePgTool } from '../pg/tools.js';
import { rolesInGlobals, scriptForPlan } from './globals.js';

/**
 * DRILL_RESTORE_OWNERS=apply-roles: creates, on the drill server, the backup's roles that it
 * lacks (from the globals dump), so pg_restore can keep owners and privileges as in production.
 * Roles the drill server already has (and the role the drill connects as) are left exactly as
 * they are: a drill never changes an existing role's password or attributes. Everything runs in
 * one transaction (psql --single-transaction): a retry after a crash finds either every missing
 * role created or none, never half of a role. Returns the roles it created.
 */
export async function createMissingRoles(
  db: DbConnection,
  globalsScript: string,
  scriptPath: string,
  options: { pgBinDir?: string; serverMajor?: number; signal?: AbortSignal },
): Promise<string[]> {
  const client = new pg.Client(pgClientConfig(db, 'postgres'));
  await client.connect();
  let existing: Set<string>;
  try {
    existing = new Set((await client.query<{ rolname: string }>('SELECT rolname FROM pg_roles')).rows.map((r) => r.rolname));
  } finally {
    await client.end();
  }
  const roles = rolesInGlobals(globalsScript);
  const create = roles.filter((role) => role !== db.user && !existing.has(role));
  if (create.length === 0) return [];
  const skipped = roles.filter((role) => !create.includes(role));
  await writeFile(scriptPath, scriptForPlan(globalsScript, { create, change: [], skipped }), { mode: 0o600 });
  const psql = await resolvePgTool('psql', { binDir: options.pgBinDir, serverMajor: options.serverMajor });
  try {
    await runTool(psql, ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '--single-transaction', '-f', scriptPath], {
      env: pgChildEnv(db, 'postgres'),
      signal: options.signal,
      permanentErrors: PERMANENT_PG_ERRORS,
      installHint: PG_INSTALL_HINT,
    });
  } catch (error) {
    throw explainPgToolFailure(error, db.settingPrefix);
  }
  return create;
}

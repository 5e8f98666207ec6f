import { writeFile } from 'node:fs/promises';
import pg from 'pg';
import { runTool } from '../child-process.js';
import { explainPgToolFailure, PERMANENT_PG_ERRORS, pgChildEnv, pgClientConfig, type DbConnection } from '../pg/connection.js';
import { PG_INSTALL_HINT, resolvePgTool } from '../pg/tools.js';
import { rolesInGlobals, scriptForPlan } from './globals.js';

/** `GRANT <roles> TO <grantee> [WITH ADMIN OPTION] [GRANTED BY <role>];`, as pg_dumpall writes a membership. */
const MEMBERSHIP = /^GRANT .+ TO ((?:"(?:[^"]|"")+")|[A-Za-z_][A-Za-z0-9_$]*)(?: WITH ADMIN OPTION)?(?: GRANTED BY .+)?;$/;

/** The script for the roles in `create` only: their CREATE/ALTER ROLE lines and the memberships granted to them. */
export function scriptForMissingRoles(globalsScript: string, roles: readonly string[], create: readonly string[]): string {
  const created = new Set(create);
  return scriptForPlan(globalsScript, { create: [...create], change: [], skipped: roles.filter((role) => !created.has(role)) })
    .split('\n')
    .filter((line) => {
      const grantee = MEMBERSHIP.exec(line)?.[1];
      return grantee === undefined || created.has(grantee.startsWith('"') ? grantee.slice(1, -1).replace(/""/g, '"') : grantee);
    })
    .join('\n');
}

/**
 * DRILL_RESTORE_OWNERS=apply-roles: creates, on the drill server, the backup's roles that it
 * lacks (from the globals dump), so pg_restore can keep owners and privileges as in production.
 * Roles the drill server already has (and the role the drill connects as) are left exactly as
 * they are: a drill never changes an existing role's password, attributes or memberships. Everything runs in
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
  await writeFile(scriptPath, scriptForMissingRoles(globalsScript, roles, create), { mode: 0o600 });
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

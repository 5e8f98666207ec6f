import { writeFile } from 'node:fs/promises';
import pg from 'pg';
import { runTool } from '../child-process.js';
import { pgChildEnv, pgClientConfig, type DbConnection } from '../pg/connection.js';
import { explainRestoreToolFailure, PERMANENT_RESTORE_ERRORS } from '../pg/restore-errors.js';
import { PG_INSTALL_HINT, resolvePgTool } from '../pg/tools.js';
import { scriptForPlan } from './globals.js';
import type { GlobalsPlan } from './report.js';

/**
 * Applies the roles of `plan` from a globals script with psql (ON_ERROR_STOP). The plan was
 * made before approval; a retry after a crash in the middle of psql meets the roles its first
 * attempt created, so the roles to create are those of the plan that do not exist NOW: the
 * others are altered to the backup's attributes, as the plan's "change" roles are, instead of
 * failing on "role already exists" attempt after attempt. `scriptPath` receives the script run.
 */
export async function applyGlobalsScript(
  db: DbConnection,
  options: { globals: string; plan: GlobalsPlan; scriptPath: string; pgBinDir?: string; serverMajor?: number; signal?: AbortSignal },
): Promise<void> {
  const existing = await existingRoles(db);
  const plan: GlobalsPlan = { ...options.plan, create: options.plan.create.filter((role) => !existing.has(role)) };
  await writeFile(options.scriptPath, scriptForPlan(options.globals, plan), { mode: 0o600 });
  const psql = await resolvePgTool('psql', { binDir: options.pgBinDir, serverMajor: options.serverMajor });
  await runTool(psql, ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', options.scriptPath], {
    env: pgChildEnv(db, 'postgres'),
    signal: options.signal,
    permanentErrors: [...PERMANENT_RESTORE_ERRORS],
    installHint: PG_INSTALL_HINT,
  }).catch((error: unknown) => {
    throw explainRestoreToolFailure(error);
  });
}

async function existingRoles(db: DbConnection): Promise<Set<string>> {
  const client = new pg.Client(pgClientConfig(db, 'postgres'));
  await client.connect();
  try {
    return new Set((await client.query<{ rolname: string }>('SELECT rolname FROM pg_roles')).rows.map((row) => row.rolname));
  } finally {
    await client.end();
  }
}

import { Context } from '@temporalio/activity';
import type { Readable } from 'node:stream';
import { startTool } from '../src/child-process.js';
import { explainPgToolFailure, PERMANENT_PG_ERRORS, pgChildEnv, type DbConnection } from '../src/pg/connection.js';
import { PG_INSTALL_HINT, resolvePgTool } from '../src/pg/tools.js';
import { progressHeartbeat } from './heartbeat.js';
import { stageStream, type StagedFile } from './staging.js';

/** `pg_dumpall --globals-only`: roles, memberships and tablespaces (S5). */
export async function dumpGlobals(
  settings: { db: DbConnection; pgBinDir?: string; serverMajor?: number; encrypt?: (plaintext: Readable) => Promise<Readable> },
  stagingPath: string,
): Promise<StagedFile> {
  const signal = Context.current().cancellationSignal;
  const pgDumpall = await resolvePgTool('pg_dumpall', { binDir: settings.pgBinDir, serverMajor: settings.serverMajor });
  const dump = startTool(pgDumpall, ['--globals-only', '--no-password'], {
    env: pgChildEnv(settings.db),
    signal,
    permanentErrors: PERMANENT_PG_ERRORS,
    installHint: PG_INSTALL_HINT,
  });
  dump.stdin.end();
  try {
    return await stageStream(dump.stdout, stagingPath, {
      encrypt: settings.encrypt,
      onProgress: progressHeartbeat('globals'),
      signal,
      producerExited: dump.exited,
    });
  } catch (error) {
    throw explainPgToolFailure(error);
  }
}

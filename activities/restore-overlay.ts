import { Context } from '@temporalio/activity';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { readCatalog } from '../src/catalog.js';
import { ToolError } from '../src/child-process.js';
import { InputError } from '../src/errors.js';
import { pgClientConfig, type DbConnection } from '../src/pg/connection.js';
import { parseRecordedTableName } from '../src/pg/table-names.js';
import { databaseOwnership, ownershipMarker, scratchDatabaseName } from '../src/restore/database.js';
import { overlayCriticalDump, type OverlayResult } from '../src/restore/overlay.js';
import { chooseOverlay } from '../src/restore/overlay-plan.js';
import type { BackupSummary, RestoreMode } from '../src/restore/report.js';
import type { Repository } from '../src/storage/repository.js';
import { progressHeartbeat, withHeartbeat } from './heartbeat.js';
import { decryptStored, downloadVerified, plainPath } from './restore-staging.js';
import { restoreServer } from './restore-runtime.js';
import type { BackupRuntime } from './runtime.js';

/** The critical backup an overlay lays over the restored daily: only names, times, keys and checksums. */
export interface OverlayPlan {
  id: string;
  kind: BackupSummary['kind'];
  generatedAt: string;
  schemaVersion: string;
  db: NonNullable<BackupSummary['artifacts']['db']>;
  dataTables: string[];
}

interface RunRef {
  workflowId: string;
  runId: string;
}

const RUN_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The 6-hour RPO path's two activities (`--overlay latest-critical`): planOverlay chooses the
 * critical backup and refuses a bad one before anything is restored; overlayCritical fetches it,
 * verifies its sha256 before decrypting, and lays its important tables over the database the
 * pipeline just restored (src/restore/overlay.ts). It runs only into a database that carries this
 * run's marker, so it never writes into a database the restore did not create.
 */
export function createOverlayActivities(runtime: BackupRuntime) {
  const settings = runtime.restore;
  const withReader = async <T>(name: string, work: (repository: Repository) => Promise<T>): Promise<T> => {
    const repository = settings.openReader(name);
    if (!repository) throw new InputError(`repository: ${JSON.stringify(name)} is not configured on this worker (have: ${settings.readerNames.join(', ')})`);
    try {
      return await work(repository);
    } finally {
      await repository.close();
    }
  };

  return {
    async planOverlay(input: RunRef & { repository: string; base: BackupSummary; overlay: string }): Promise<OverlayPlan> {
      if (typeof input.overlay !== 'string') throw new InputError(`overlay ${JSON.stringify(input.overlay)}: expected latest-critical or a backup id`);
      const catalog = await withReader(input.repository, (repository) => readCatalog(repository, runtime.layout.env));
      const base = catalog.backups.find((b) => b.id === input.base.id);
      if (!base) throw new InputError(`backup ${input.base.id} is no longer in repository ${input.repository}`);
      const chosen = chooseOverlay(base, input.overlay, catalog.backups);
      const manifest = catalog.backups.find((b) => b.id === chosen.id)!;
      const db = manifest.artifacts.db;
      if (!db) throw new InputError(`overlay: backup ${manifest.id} has no db artifact`);
      if (db.encryption === 'openpgp' && !settings.decryption) {
        throw new InputError(`backup ${manifest.id} is OpenPGP-encrypted, but GPG_PRIVATE_KEY_FILE is not set on this worker`);
      }
      return {
        id: manifest.id,
        kind: manifest.kind,
        generatedAt: manifest.generatedAt,
        schemaVersion: manifest.schemaVersion,
        db: { key: db.key, size: db.size, sha256: db.sha256, encryption: db.encryption, format: db.format },
        dataTables: manifest.database.dataTables!,
      };
    },

    async overlayCritical(input: RunRef & { mode: RestoreMode; repository: string; base: BackupSummary; overlay: OverlayPlan }): Promise<OverlayResult> {
      const { cancellationSignal: signal } = Context.current();
      if (!RUN_ID.test(input.runId)) throw new InputError(`runId ${JSON.stringify(input.runId)} is not a Temporal run id`);
      const database = input.mode === 'restore' ? settings.targetDatabase : scratchDatabaseName(input.base.id, input.workflowId);
      const server = restoreServer(runtime.db, settings, input.mode);
      if ((await databaseOwnership(server, database, ownershipMarker(input))) !== 'ours') {
        throw new InputError(`overlay: database ${JSON.stringify(database)} was not restored by this run; an overlay only goes over the daily this run restored`);
      }
      const dir = join(runtime.stagingRoot, `overlay-${input.runId}`);
      try {
        await withReader(input.repository, (repository) =>
          downloadVerified(repository, 'db', input.overlay.db, dir, { signal, onProgress: progressHeartbeat(`download:${input.repository}`) }),
        );
        if (input.overlay.db.encryption === 'openpgp') await decryptStored('db', input.overlay.db, dir, settings.decryption!.decrypt, { signal, onProgress: progressHeartbeat('decrypt') });
        return await withHeartbeat(
          'overlay',
          overlayCriticalDump(server, database, plainPath(dir, 'db', input.overlay.db), input.overlay.dataTables.map(parseRecordedTableName), {
            workDir: dir,
            pgBinDir: runtime.pgBinDir,
            serverMajor: await serverMajor(server),
            signal,
          }),
        );
      } catch (error) {
        // The transaction refused itself (an orphan in a partitioned table): the same rows refuse again.
        if (error instanceof ToolError && /overlay refused: /.test(error.message)) throw new InputError(error.message.slice(error.message.indexOf('overlay refused: ')));
        throw error;
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };

  async function serverMajor(server: DbConnection): Promise<number> {
    const client = new pg.Client(pgClientConfig(server, 'postgres'));
    await client.connect();
    try {
      return Math.floor(Number((await client.query<{ num: string }>(`SELECT current_setting('server_version_num') AS num`)).rows[0]!.num) / 10_000);
    } finally {
      await client.end();
    }
  }
}

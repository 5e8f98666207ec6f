import { Context } from '@temporalio/activity';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { findBackup } from '../src/catalog.js';
import { checkBackupKeys, describeMissingKeys } from '../src/crypto/key-availability.js';
import { MissingRecipientKeyError, messageRecipientKeyIds, missingRecipientKeyIds } from '../src/crypto/openpgp.js';
import { InputError } from '../src/errors.js';
import { ARTIFACT_NAMES, BACKUP_KINDS, isBackupId, manifestKey, type ArtifactName, type BackupKind } from '../src/layout.js';
import { parseManifest, type Manifest } from '../src/manifest.js';
import { PERMANENT_PG_ERRORS, pgChildEnv, pgClientConfig, type DbConnection } from '../src/pg/connection.js';
import { defaultRestoreJobs, restoreDump } from '../src/pg/restore.js';
import { restoreScopedDump } from '../src/pg/restore-scoped.js';
import { overlayExpectation } from '../src/restore/overlay-plan.js';
import { scopedForeignKeyChecks } from '../src/restore/scoped-checks.js';
import { PG_INSTALL_HINT, resolvePgTool } from '../src/pg/tools.js';
import { runTool } from '../src/child-process.js';
import { approvalSetupProblem } from '../src/restore/approval.js';
import { currentAllowedSigners } from './approval.js';
import { batchResumeCheck, fingerprintChecks, latestDataCheck, smokeChecks, sqlChecks } from '../src/restore/checks.js';
import { createOwnedDatabase, databaseOwnership, dropOwnedDatabase, foreignDatabaseError, ownershipMarker, scratchDatabaseName } from '../src/restore/database.js';
import { createMissingRoles } from '../src/restore/drill-roles.js';
import { planGlobals, rolesInGlobals, scriptForPlan } from '../src/restore/globals.js';
import { applyGlobalsScript } from '../src/restore/apply-globals.js';
import { renderMarkdown, reportKey, type ArtifactSummary, type BackupSummary, type CheckResult, type GlobalsPlan, type RestoreMode, type RestoreReport } from '../src/restore/report.js';
import type { Digest } from '../src/storage/hash.js';
import { ObjectNotFoundError, type Repository } from '../src/storage/repository.js';
import { progressHeartbeat, withHeartbeat } from './heartbeat.js';
import { postNotice, type Notice } from './notify.js';
import { assertEmptyOrAbsent, renamedMarker, restoreAssetArchive, unpackingDir, type RestoredFiles } from './restore-assets.js';
import { decryptStored, decryptToString, downloadVerified, plainPath, stagedSize, storedPath, type StagingOptions } from './restore-staging.js';
import { restoreServer } from './restore-runtime.js';
import { allSettledInOrder, summedProgress } from './restore-concurrency.js';
import { fetchDecrypted } from './restore-stream.js';
import type { BackupRuntime } from './runtime.js';

/** What a restore run will do, decided before anything is fetched (RestoreDrill, Restore). */
export interface RestorePlan {
  repository: string;
  backup: BackupSummary;
  /** The scratch database of a drill, or RESTORE_TARGET_DB. */
  database: string;
  /** Where the files go: RESTORE_ASSET_DIR for a Restore; a drill unpacks into its staging directory. */
  assetDir?: string;
  approvalTimeoutMs: number;
  preApproved: boolean;
  /** A drill with DRILL_DECRYPT_BEFORE_APPROVAL; never a production Restore. */
  decryptBeforeApproval: boolean;
}

/** Size and sha256 of each decrypted artifact (of the stored bytes when not encrypted). */
export type PlainDigests = Partial<Record<ArtifactName, Digest>>;

/** Identifies one run's files and databases: its workflow id and run id. */
export interface RunRef {
  workflowId: string;
  runId: string;
}

interface StagedInput extends RunRef {
  repository: string;
  backup: BackupSummary;
  plain: PlainDigests;
}

const RUN_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAX_APPROVAL_TIMEOUT_SECONDS = 30 * 86_400;

/**
 * The activities shared by RestoreDrill and Restore. Each is idempotent: downloads are verified
 * and renamed into place, a database is created only with this run's marker and a retry drops
 * its own half-restored one, reports overwrite themselves, cleanup ignores what is gone. Reads
 * use the read-only repository credentials (S15); reports are written with the writer set.
 */
export function createRestoreActivities(runtime: BackupRuntime) {
  const settings = runtime.restore;
  const runDirectory = (run: RunRef) => {
    if (!RUN_ID.test(run.runId)) throw new InputError(`runId ${JSON.stringify(run.runId)} is not a Temporal run id`);
    return join(runtime.stagingRoot, `restore-${run.runId}`);
  };
  const withReader = async <T>(name: string, work: (repository: Repository) => Promise<T>): Promise<T> => {
    const repository = settings.openReader(name);
    if (!repository) {
      throw new InputError(`repository: ${JSON.stringify(name)} is not configured on this worker (have: ${settings.readerNames.join(', ')})`);
    }
    try {
      return await work(repository);
    } finally {
      await repository.close();
    }
  };
  const artifactsOf = (backup: BackupSummary) =>
    ARTIFACT_NAMES.flatMap((name) => (backup.artifacts[name] ? [[name, backup.artifacts[name]!] as const] : []));

  /**
   * The path of an artifact's plaintext, fetching, verifying and decrypting it again when this
   * worker does not hold it (a retry elsewhere, or lost files): never restores unverified bytes.
   */
  const ensurePlain = async (input: StagedInput, name: ArtifactName, signal: AbortSignal): Promise<string> => {
    const artifact = input.backup.artifacts[name];
    const expected = input.plain[name];
    if (!artifact || !expected) throw new InputError(`backup ${input.backup.id} has no ${name} artifact`);
    const dir = runDirectory(input);
    const path = plainPath(dir, name, artifact);
    if ((await stagedSize(path)) === expected.size) return path;
    await mkdir(dir, { recursive: true, mode: 0o700 });
    if (artifact.encryption === 'openpgp' && (await stagedSize(storedPath(dir, name))) !== artifact.size) {
      await withReader(input.repository, (repository) => fetchPlain(repository, input.backup.id, name, artifact, dir, { signal }));
    } else {
      // A verified ciphertext from fetchArtifacts (a production Restore) is decrypted as it is.
      if (artifact.encryption === 'none') await withReader(input.repository, (repository) => downloadVerified(repository, name, artifact, dir, { signal }));
      if (artifact.encryption === 'openpgp') await decryptStored(name, artifact, dir, decryptor(input.backup.id), { signal });
    }
    if ((await stagedSize(path)) !== expected.size) throw new Error(`${name}: the re-fetched plaintext differs in size from the first fetch`);
    return path;
  };
  /**
   * The database a run restores into, decided by the worker's configuration alone (never taken
   * from workflow input): a drill's scratch database, or RESTORE_TARGET_DB.
   */
  const databaseFor = (mode: RestoreMode, run: { workflowId: string; backup: BackupSummary }) => {
    if (mode === 'restore') return settings.targetDatabase;
    const scratch = scratchDatabaseName(run.backup.id, run.workflowId);
    if (scratch === runtime.db.database) throw new InputError(`the scratch database name ${scratch} is DB_NAME: a drill never restores into DB_NAME`);
    return scratch;
  };
  const serverFor = (mode: RestoreMode): DbConnection => restoreServer(runtime.db, settings, mode);
  const decryptorKeys = (backupId: string) => {
    if (!settings.decryption) {
      throw new InputError(`backup ${backupId} is OpenPGP-encrypted, but GPG_PRIVATE_KEY_FILE is not set on this worker`);
    }
    return settings.decryption;
  };
  const decryptor = (backupId: string) => decryptorKeys(backupId).decrypt;
  const missingKeyError = (backupId: string, what: string) =>
    new InputError(
      `GPG_PRIVATE_KEY_FILE: backup ${backupId} cannot be decrypted on this worker: ${what}, which no configured private key holds ` +
        `(it holds ${settings.decryption?.describeKeys() ?? 'none'}, key ids ${settings.decryption?.keyIds.join(', ') ?? '-'}); add that key to GPG_PRIVATE_KEY_FILE`,
    );

  /**
   * An OpenPGP artifact's plaintext in one streaming pass (activities/restore-stream.ts): used only
   * once the stored bytes matched the manifest. A message for none of the worker's keys gives
   * the same GPG_PRIVATE_KEY_FILE error as the check of a downloaded ciphertext.
   */
  const fetchPlain = async (repository: Repository, backupId: string, name: ArtifactName, artifact: ArtifactSummary, dir: string, options: StagingOptions) => {
    try {
      return await fetchDecrypted(repository, name, artifact, dir, decryptor(backupId), options);
    } catch (error) {
      if (error instanceof MissingRecipientKeyError) throw missingKeyError(backupId, `${name} is encrypted for key id ${error.missingKeyIds.join(', ') || '(none)'}`);
      throw error;
    }
  };

  return {
    /** Selects the backup and checks everything that can be checked before a byte is fetched. */
    async planRestore(input: RunRef & { mode: RestoreMode; backupId?: unknown; repository?: unknown; kind?: unknown; approvalTimeoutSeconds?: unknown }): Promise<RestorePlan> {
      const backupId = input.backupId ?? 'latest';
      if (typeof backupId !== 'string' || (backupId !== 'latest' && !isBackupId(backupId))) {
        throw new InputError(`backupId ${JSON.stringify(backupId)}: expected a backup id like 20261126T170000Z-daily, or "latest"`);
      }
      const repository = input.repository ?? settings.readerNames[0];
      if (typeof repository !== 'string' || !settings.readerNames.includes(repository)) {
        throw new InputError(`repository ${JSON.stringify(repository)}: expected one of the configured repositories: ${settings.readerNames.join(', ')}`);
      }
      const kind = input.kind ?? 'daily';
      if (typeof kind !== 'string' || !(BACKUP_KINDS as readonly string[]).includes(kind)) {
        throw new InputError(`kind ${JSON.stringify(kind)}: expected one of ${BACKUP_KINDS.join(', ')}`);
      }
      const timeout = input.approvalTimeoutSeconds;
      if (timeout !== undefined && (typeof timeout !== 'number' || !Number.isInteger(timeout) || timeout < 1 || timeout > MAX_APPROVAL_TIMEOUT_SECONDS)) {
        throw new InputError(`approvalTimeoutSeconds ${JSON.stringify(timeout)}: expected a whole number of seconds, 1 to ${MAX_APPROVAL_TIMEOUT_SECONDS}`);
      }

      const manifest = await withReader(repository, (repo) => findBackup(repo, runtime.layout.env, backupId, backupId === 'latest' ? (kind as BackupKind) : undefined));
      const backup = summarize(manifest);
      if (artifactsOf(backup).some(([, a]) => a.encryption === 'openpgp')) {
        decryptor(backup.id);
        // Key rotation: refuse now, naming the key, rather than after the download.
        const keys = checkBackupKeys(manifest, settings.decryption!.keyIds);
        if (keys.missing.length > 0) throw missingKeyError(backup.id, describeMissingKeys(keys));
      }
      if (!backup.artifacts.db) throw new InputError(`backup ${backup.id} has no db artifact to restore`);

      const database = databaseFor(input.mode, { workflowId: input.workflowId, backup });
      if ((await databaseOwnership(serverFor(input.mode), database, ownershipMarker(input))) === 'foreign') {
        const refusal = foreignDatabaseError(database);
        throw input.mode === 'drill' ? refusal : new InputError(`RESTORE_TARGET_DB: ${refusal.message}, or set RESTORE_TARGET_DB to a new name`);
      }
      let assetDir: string | undefined;
      if (input.mode === 'restore' && backup.artifacts.assets) {
        assetDir = settings.targetAssetDir;
        if (!assetDir) throw new InputError(`RESTORE_ASSET_DIR: backup ${backup.id} holds PDF files, but there is no RESTORE_ASSET_DIR (or ASSET_DIR) to restore them into (S24)`);
        await assertEmptyOrAbsent(assetDir, 'RESTORE_ASSET_DIR');
      }

      const preApproved = input.mode === 'drill' && settings.drillPreApproved;
      const signers = settings.allowedSignersFile ? await currentAllowedSigners(settings) : undefined;
      if (typeof signers === 'string') throw new InputError(signers);
      const problem = preApproved
        ? undefined
        : approvalSetupProblem(settings.approvers, input.mode === 'drill' ? 'single' : 'dual-control', {
            ...(signers ? { allowedSigners: signers } : {}),
            acceptUnsigned: input.mode === 'drill' && settings.drillAcceptUnsigned,
          });
      if (problem) throw new InputError(problem);
      return {
        repository,
        backup,
        database,
        ...(assetDir ? { assetDir } : {}),
        approvalTimeoutMs: timeout !== undefined ? (timeout as number) * 1000 : settings.approvalTimeoutMs,
        preApproved,
        decryptBeforeApproval: input.mode === 'drill' && settings.drillDecryptBeforeApproval,
      };
    },

    /**
     * Downloads EVERY artifact, all at once, and keeps each only once its size and sha256 matched
     * the manifest; nothing is decrypted (a production Restore before approval).
     */
    async fetchArtifacts(input: RunRef & { repository: string; backup: BackupSummary }): Promise<void> {
      const { cancellationSignal } = Context.current();
      const dir = runDirectory(input);
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const progress = summedProgress(progressHeartbeat(`download:${input.repository}`));
      await withReader(input.repository, (repository) =>
        allSettledInOrder(cancellationSignal, artifactsOf(input.backup), async ([name, artifact], signal) => {
          if ((await stagedSize(storedPath(dir, name))) !== artifact.size) {
            await downloadVerified(repository, name, artifact, dir, { signal, onProgress: progress(name) });
          }
          // The verified packets say which key the artifact needs (old manifests do not record it).
          if (artifact.encryption === 'openpgp') {
            const recipients = await messageRecipientKeyIds(createReadStream(storedPath(dir, name)));
            const missing = missingRecipientKeyIds(recipients, decryptorKeys(input.backup.id).keyIds);
            if (recipients.length === 0 || missing.length > 0) {
              throw missingKeyError(input.backup.id, `${name} is encrypted for key id ${missing.join(', ') || '(none)'}`);
            }
          }
        }),
      );
    },

    /**
     * Fetches, verifies and decrypts EVERY artifact in one streaming pass each, all at once (a
     * drill with DRILL_DECRYPT_BEFORE_APPROVAL, or a run already approved). Decrypted bytes are
     * renamed into place, and so used, only after the stored bytes' size and sha256 matched the
     * manifest; a mismatch deletes them and fails non-retryably (ArtifactChecksumMismatch).
     */
    async fetchDecryptedArtifacts(input: RunRef & { repository: string; backup: BackupSummary }): Promise<PlainDigests> {
      const { cancellationSignal } = Context.current();
      const dir = runDirectory(input);
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const progress = summedProgress(progressHeartbeat(`download+decrypt:${input.repository}`));
      const digests: PlainDigests = {};
      await withReader(input.repository, (repository) =>
        allSettledInOrder(cancellationSignal, artifactsOf(input.backup), async ([name, artifact], signal) => {
          if (artifact.encryption === 'none') {
            if ((await stagedSize(storedPath(dir, name))) !== artifact.size) {
              await downloadVerified(repository, name, artifact, dir, { signal, onProgress: progress(name) });
            }
            digests[name] = { size: artifact.size, sha256: artifact.sha256 };
          } else {
            digests[name] = await fetchPlain(repository, input.backup.id, name, artifact, dir, { signal, onProgress: progress(name) });
          }
        }),
      );
      return digests;
    },

    /** Decrypts the verified artifacts with the worker's private key (never from workflow input). */
    async decryptArtifacts(input: RunRef & { repository: string; backup: BackupSummary }): Promise<PlainDigests> {
      const { cancellationSignal: signal } = Context.current();
      const dir = runDirectory(input);
      const heartbeat = progressHeartbeat('decrypt');
      const digests: PlainDigests = {};
      for (const [name, artifact] of artifactsOf(input.backup)) {
        if (artifact.encryption === 'none') {
          digests[name] = { size: artifact.size, sha256: artifact.sha256 };
        } else {
          if ((await stagedSize(storedPath(dir, name))) === undefined) {
            await withReader(input.repository, (repository) => downloadVerified(repository, name, artifact, dir, { signal }));
          }
          digests[name] = await decryptStored(name, artifact, dir, decryptor(input.backup.id), { signal, onProgress: heartbeat });
        }
      }
      return digests;
    },

    /**
     * Which roles the backup's globals would create or change in this cluster (shown before
     * approval). Before the artifacts are decrypted (a production Restore waiting for approval)
     * the verified globals artifact is decrypted in memory only: no plaintext reaches the disk.
     */
    async planGlobals(input: StagedInput): Promise<GlobalsPlan> {
      const globals = await globalsText(input, Context.current().cancellationSignal);
      const client = new pg.Client(pgClientConfig(runtime.db, 'postgres'));
      await client.connect();
      try {
        const existing = new Set((await client.query<{ rolname: string }>('SELECT rolname FROM pg_roles')).rows.map((r) => r.rolname));
        return planGlobals(rolesInGlobals(globals), existing, runtime.db.user);
      } finally {
        await client.end();
      }
    },

    /** Applies the roles of `plan` with psql (ON_ERROR_STOP); the connecting role is never touched; a retry completes what a crashed attempt began. */
    async applyGlobals(input: StagedInput & { plan: GlobalsPlan }): Promise<void> {
      const { cancellationSignal: signal } = Context.current();
      const path = await ensurePlain(input, 'globals', signal);
      await withHeartbeat(
        'globals',
        applyGlobalsScript(runtime.db, {
          globals: await readFile(path, 'utf8'),
          plan: input.plan,
          scriptPath: join(runDirectory(input), 'globals.apply.sql'),
          pgBinDir: runtime.pgBinDir,
          serverMajor: await serverMajor(),
          signal,
        }),
      );
    },

    /**
     * Creates the database EMPTY, marked as this run's (S21), and pg_restores the dump into it
     * with parallel jobs. A retry (worker crash mid-restore) drops its own half-restored
     * database and starts clean; a database it did not create is refused.
     */
    async restoreDatabase(input: StagedInput & { mode: RestoreMode; keepOwners: boolean }): Promise<void> {
      const { cancellationSignal: signal } = Context.current();
      const database = databaseFor(input.mode, input);
      const dump = await ensurePlain(input, 'db', signal);
      const server = serverFor(input.mode);
      const major = await serverMajor(server);
      // A drill on the drill server: its owners follow DRILL_RESTORE_OWNERS, whatever the workflow asked.
      const drillServer = input.mode === 'drill' ? settings.drillServer : undefined;
      let owners = { keepOwners: input.keepOwners, noPrivileges: false };
      if (drillServer?.restoreOwners === 'apply-roles') {
        const globals = await ensurePlain(input, 'globals', signal);
        const script = join(runDirectory(input), 'drill-roles.sql');
        const created = await createMissingRoles(server, await readFile(globals, 'utf8'), script, { pgBinDir: runtime.pgBinDir, serverMajor: major, signal });
        Context.current().log.info('drill server: created the backup\'s missing roles', { roles: created.join(',') || '-' });
        owners = { keepOwners: true, noPrivileges: false };
      } else if (drillServer?.restoreOwners === 'skip') {
        owners = { keepOwners: false, noPrivileges: true };
      }
      await createOwnedDatabase(server, database, ownershipMarker(input));
      const jobs = settings.restoreJobs ?? defaultRestoreJobs();
      Context.current().log.info('pg_restore starts', { database, jobs });
      const restoreOptions = { pgBinDir: runtime.pgBinDir, serverMajor: major, jobs, ...owners, signal };
      await withHeartbeat(
        'pg_restore',
        // A critical/weekly-full backup's foreign keys into tables it holds no rows of are restored NOT VALID.
        input.backup.dataTables
          ? restoreScopedDump(server, database, dump, { ...restoreOptions, workDir: runDirectory(input) }).then(() => undefined)
          : restoreDump(server, database, dump, restoreOptions),
      );
    },

    /** Unpacks the PDF files: a drill into its staging directory, a Restore into RESTORE_ASSET_DIR. */
    async restoreAssets(input: StagedInput & { mode: RestoreMode }): Promise<RestoredFiles> {
      const archive = await ensurePlain(input, 'assets', Context.current().cancellationSignal);
      const target = input.mode === 'drill' ? join(runDirectory(input), 'assets') : settings.targetAssetDir;
      if (!target) throw new InputError('RESTORE_ASSET_DIR: no directory to restore the PDF files into');
      return withHeartbeat('assets', restoreAssetArchive(archive, target, input.runId));
    },

    /** S26/S27 (and S21/S25 smoke): every check on the restored database, each with expected and actual. */
    async runRestoreChecks(input: RunRef & { mode: RestoreMode; repository: string; backup: BackupSummary; files?: RestoredFiles; overlayBackupId?: string }): Promise<CheckResult[]> {
      const { cancellationSignal: signal } = Context.current();
      const manifest = await withReader(input.repository, (repository) => readManifest(repository, input.backup.id));
      // After an overlay the important tables must equal the critical backup's fingerprint, the rest the daily's.
      const overlay = input.overlayBackupId ? await withReader(input.repository, (repository) => readManifest(repository, input.overlayBackupId!)) : undefined;
      const checks = settings.checks;
      const results: CheckResult[] = [];
      if (manifest.assets) {
        const expected = `${manifest.assets.fileCount} files, ${manifest.assets.bytes} bytes`;
        const actual = input.files ? `${input.files.fileCount} files, ${input.files.bytes} bytes` : 'not restored';
        results.push({ kind: 'assets', name: 'PDF files restored', expected, actual, passed: expected === actual });
      }
      const client = new pg.Client(pgClientConfig(serverFor(input.mode), databaseFor(input.mode, input)));
      await client.connect();
      try {
        await withHeartbeat(
          'checks',
          (async () => {
            results.push(...(await fingerprintChecks(client, overlay ? overlayExpectation(manifest, overlay) : manifest)));
            if (manifest.database.dataTables && !overlay) results.push(...(await scopedForeignKeyChecks(client, manifest.database)));
            if (checks.latestDataQuery) results.push(await latestDataCheck(client, checks.latestDataQuery, manifest.generatedAt, checks.rpoMs[manifest.kind]));
            results.push(...(await sqlChecks(client, checks.sqlChecks)));
            if (checks.batchResumeQuery) results.push(await batchResumeCheck(client, checks.batchResumeQuery));
          })(),
        );
      } finally {
        await client.end();
      }
      results.push(...(await smokeChecks(input.mode === 'drill' ? checks.drillSmokeUrls : checks.restoreSmokeUrls, signal)));
      return results;
    },

    /** The report as JSON and Markdown, in the repository read from and the local one; returns `repo:key`s. */
    async writeRestoreReport(input: { report: RestoreReport }): Promise<string[]> {
      const { report } = input;
      const names = [...new Set([report.repository, 'local'].filter((n): n is string => n !== undefined && runtime.repositories.has(n)))];
      const written: string[] = [];
      for (const name of names) {
        const repository = runtime.repositories.get(name)!;
        for (const [extension, body] of [
          ['json', JSON.stringify(report, null, 2) + '\n'],
          ['md', renderMarkdown(report)],
        ] as const) {
          const key = reportKey(runtime.layout, report.mode, report.backup?.id, report.id, extension);
          await repository.putBytes(key, Buffer.from(body, 'utf8'), {
            metadata: { env: runtime.layout.env, generated_at: report.finishedAt, schema_version: report.backup?.schemaVersion ?? 'unknown' },
          });
          written.push(`${name}:${key}`);
        }
      }
      return written;
    },

    /**
     * Drops the run's database when asked (only if it carries this run's marker) and removes its
     * files unless kept. Returns whether a database was dropped.
     */
    async cleanUpRestore(input: RunRef & { mode: RestoreMode; backup: BackupSummary; dropDatabase: boolean; keepFiles: boolean }): Promise<{ databaseDropped: boolean }> {
      const databaseDropped = input.dropDatabase ? await dropOwnedDatabase(serverFor(input.mode), databaseFor(input.mode, input), ownershipMarker(input)) : false;
      if (input.mode === 'restore' && settings.targetAssetDir) {
        await rm(unpackingDir(settings.targetAssetDir, input.runId), { recursive: true, force: true });
        await rm(renamedMarker(settings.targetAssetDir, input.runId), { force: true });
      }
      if (!input.keepFiles) await rm(runDirectory(input), { recursive: true, force: true });
      return { databaseDropped };
    },

    async notifyRestore(input: { event: Notice['event']; summary: string; fields: Record<string, string> }): Promise<void> {
      await postNotice(runtime.notifyWebhookUrl, { event: input.event, env: runtime.layout.env, summary: input.summary, fields: input.fields });
    },
  };

  /** The globals script: from its plaintext file once decrypted, else from the verified ciphertext, decrypted in memory. */
  async function globalsText(input: StagedInput, signal: AbortSignal): Promise<string> {
    const artifact = input.backup.artifacts.globals;
    if (!artifact) throw new InputError(`backup ${input.backup.id} has no globals artifact`);
    if (input.plain.globals || artifact.encryption === 'none') {
      const plainInput = input.plain.globals ? input : { ...input, plain: { ...input.plain, globals: { size: artifact.size, sha256: artifact.sha256 } } };
      return readFile(await ensurePlain(plainInput, 'globals', signal), 'utf8');
    }
    const dir = runDirectory(input);
    if ((await stagedSize(storedPath(dir, 'globals'))) !== artifact.size) {
      await withReader(input.repository, (repository) => downloadVerified(repository, 'globals', artifact, dir, { signal }));
    }
    return decryptToString(createReadStream(storedPath(dir, 'globals')), decryptor(input.backup.id));
  }

  async function serverMajor(server: DbConnection = runtime.db): Promise<number> {
    const client = new pg.Client(pgClientConfig(server, 'postgres'));
    await client.connect();
    try {
      const row = (await client.query<{ num: string }>(`SELECT current_setting('server_version_num') AS num`)).rows[0]!;
      return Math.floor(Number(row.num) / 10_000);
    } finally {
      await client.end();
    }
  }

  /** The manifest by its key; by the catalog when the key's prefix (BACKUP_PREFIX) changed since. */
  async function readManifest(repository: Repository, backupId: string): Promise<Manifest> {
    try {
      const manifest = parseManifest(await repository.getBytes(manifestKey(runtime.layout, backupId)), `${repository.name}:${backupId}`);
      if (manifest.id === backupId && manifest.env === runtime.layout.env) return manifest;
    } catch (error) {
      if (!(error instanceof ObjectNotFoundError)) throw error;
    }
    return findBackup(repository, runtime.layout.env, backupId);
  }
}

function summarize(manifest: Manifest): BackupSummary {
  const artifacts: BackupSummary['artifacts'] = {};
  for (const name of ARTIFACT_NAMES) {
    const a = manifest.artifacts[name];
    if (a) artifacts[name] = { key: a.key, size: a.size, sha256: a.sha256, encryption: a.encryption, format: a.format };
  }
  return {
    id: manifest.id,
    env: manifest.env,
    kind: manifest.kind,
    generatedAt: manifest.generatedAt,
    schemaVersion: manifest.schemaVersion,
    artifacts,
    ...(manifest.assets ? { assets: manifest.assets } : {}),
    ...(manifest.database.dataTables ? { dataTables: manifest.database.dataTables } : {}),
  };
}

import { rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { artifactKey, isBackupId, manifestKey, type BackupKind } from '../src/layout.js';
import { serializeManifest, type Manifest, type ManifestArtifact } from '../src/manifest.js';
import { InputError } from '../src/errors.js';
import { checkCriticalTables } from '../src/pg/critical-scope.js';
import { archiveAssets } from './archive.js';
import { refuseCompleteBackupId } from './backup-id-guard.js';
import { dumpDatabase } from './dump.js';
import { dumpGlobals } from './globals.js';
import { postNotice } from './notify.js';
import type { BackupRuntime } from './runtime.js';
import { uploadArtifacts, type StagedArtifactRef } from './transfer.js';

/** An artifact staged on the worker's disk, described as the manifest will record it. */
export interface StagedArtifact extends StagedArtifactRef {
  encryption: ManifestArtifact['encryption'];
  format: ManifestArtifact['format'];
  /** OpenPGP artifacts: the keys it is encrypted to (the manifest records them). */
  recipients?: ManifestArtifact['recipients'];
}

export interface BackupPlan {
  env: string;
  repositories: string[];
  withAssets: boolean;
}

/**
 * The activities of NightlyBackup. Every one is idempotent: staged files get their final name
 * only when complete, uploads skip content already stored, deletes ignore missing keys.
 */
export function createBackupActivities(runtime: BackupRuntime) {
  const encryption = runtime.encryption ? ('openpgp' as const) : ('none' as const);
  const encrypt = runtime.encryption?.encrypt.bind(runtime.encryption);
  const recipients = runtime.encryption ? { recipients: [...runtime.encryption.recipients] } : {};
  const staged = (backupId: string, key: string) => join(runtime.stagingRoot, backupId, basename(key));
  const repository = (name: string) => {
    const repo = runtime.repositories.get(name);
    if (!repo) throw new InputError(`no repository named ${JSON.stringify(name)} is configured (have: ${[...runtime.repositories.keys()].join(', ')})`);
    return repo;
  };
  const checkBackupId = (backupId: string) => {
    if (!isBackupId(backupId)) throw new InputError(`backupId ${JSON.stringify(backupId)} is not a backup id like 20261126T170000Z-daily`);
  };

  return {
    async planBackup(input: { backupId: string; kind: BackupKind; label?: string }): Promise<BackupPlan> {
      checkBackupId(input.backupId);
      if (input.kind === 'manual' && !input.label) throw new InputError('label: a manual backup needs a label saying why it was taken (--label)');
      if (input.label !== undefined && !/^[\p{L}\p{N} ._:/#+-]{1,200}$/u.test(input.label)) {
        throw new InputError('label: use 1-200 letters, digits, spaces and . _ : / # + -');
      }
      await refuseCompleteBackupId(runtime, input.backupId);
      if (input.kind === 'critical' || input.kind === 'weekly-full') await checkCriticalTables(runtime.db, runtime.criticalTables, input.kind);
      return { env: runtime.layout.env, repositories: [...runtime.repositories.keys()], withAssets: runtime.assetDir !== undefined };
    },

    async dumpDatabase(input: { backupId: string; kind: BackupKind }) {
      checkBackupId(input.backupId);
      const key = artifactKey(runtime.layout, 'db', input.backupId, encryption !== 'none');
      const dump = await dumpDatabase(
        { db: runtime.db, pgBinDir: runtime.pgBinDir, criticalTables: runtime.criticalTables, fingerprintTables: runtime.fingerprintTables, schemaVersionQuery: runtime.schemaVersionQuery, lockTimeoutMs: runtime.lockTimeoutMs, encrypt },
        input.kind,
        staged(input.backupId, key),
      );
      const { file, ...facts } = dump;
      const artifact: StagedArtifact = { key, ...file, encryption, format: 'pg_dump-custom', ...recipients };
      return { artifact, databaseName: runtime.db.database, ...facts };
    },

    async dumpGlobals(input: { backupId: string }): Promise<StagedArtifact> {
      checkBackupId(input.backupId);
      const key = artifactKey(runtime.layout, 'globals', input.backupId, encryption !== 'none');
      const file = await dumpGlobals({ db: runtime.db, pgBinDir: runtime.pgBinDir, encrypt }, staged(input.backupId, key));
      return { key, ...file, encryption, format: 'sql', ...recipients };
    },

    async archiveAssets(input: { backupId: string }) {
      checkBackupId(input.backupId);
      if (!runtime.assetDir) throw new InputError('assets: PDF_PROVIDER is not local, there is no ASSET_DIR to archive');
      const key = artifactKey(runtime.layout, 'assets', input.backupId, encryption !== 'none');
      const archive = await archiveAssets({ assetDir: runtime.assetDir, encrypt }, staged(input.backupId, key));
      const artifact: StagedArtifact = { key, ...archive.file, encryption, format: 'tar', ...recipients };
      return { artifact, fileCount: archive.fileCount, bytes: archive.bytes };
    },

    async uploadArtifacts(input: { repository: string; artifacts: StagedArtifactRef[]; metadata: Record<string, string> }): Promise<void> {
      await uploadArtifacts(repository(input.repository), input.artifacts, input.metadata);
    },

    /** Written LAST: from this moment the backup exists for readers of this repository. */
    async writeManifest(input: { repository: string; manifest: Manifest }): Promise<string> {
      const key = manifestKey(runtime.layout, input.manifest.id);
      await repository(input.repository).putBytes(key, serializeManifest(input.manifest), {
        metadata: { env: input.manifest.env, generated_at: input.manifest.generatedAt, schema_version: input.manifest.schemaVersion },
      });
      return key;
    },

    async removeStaging(input: { backupId: string }): Promise<void> {
      checkBackupId(input.backupId);
      await rm(join(runtime.stagingRoot, input.backupId), { recursive: true, force: true });
    },

    async notifyBackupFailure(input: { backupId: string; kind: BackupKind; failedStep: string; error: string }): Promise<void> {
      await postNotice(runtime.notifyWebhookUrl, {
        event: 'backup-failed',
        env: runtime.layout.env,
        summary: `NightlyBackup ${input.kind} ${input.backupId} failed at ${input.failedStep}`,
        fields: { kind: input.kind, backup_id: input.backupId, failed_step: input.failedStep, error: input.error },
      });
    },
  };
}

import { ApplicationFailure, CancellationScope, log, proxyActivities, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { Activities, StagedArtifact } from '../activities/index.js';
import { backupIdFor } from '../src/layout.js';
import type { Manifest, ManifestArtifact } from '../src/manifest.js';
import { MANIFEST_FORMAT } from '../src/manifest.js';
import {
  backupEnvSearchAttribute,
  backupIdSearchAttribute,
  backupKindSearchAttribute,
  progressQuery,
  type BackupPhase,
  type BackupProgress,
  type NightlyBackupInput,
  type NightlyBackupResult,
} from './messages.js';
import { heartbeatTimeoutSeconds } from './heartbeat-timeout.js';

const DEFAULT_HEARTBEAT_TIMEOUT_SECONDS = 30;

/**
 * Long work (dump, upload) heartbeats; a worker that dies or stalls is noticed within the
 * heartbeat timeout and the activity is retried on a live worker. Short work sends no
 * heartbeats: its start-to-close timeout bounds how long a lost one blocks the backup.
 * With the default of 30 s: retries from 10 s up to 5 min apart; short steps within 2 min.
 */
function activitiesFor(heartbeatSeconds: number) {
  const longWork = proxyActivities<Activities>({
    startToCloseTimeout: '12h',
    heartbeatTimeout: heartbeatSeconds * 1000,
    retry: { initialInterval: (heartbeatSeconds * 1000) / 3, backoffCoefficient: 2, maximumInterval: heartbeatSeconds * 10_000, maximumAttempts: 10 },
  });
  const shortWork = proxyActivities<Activities>({
    startToCloseTimeout: heartbeatSeconds * 4000,
    retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 10 },
  });
  return { longWork, shortWork };
}

/**
 * NightlyBackup (S1-S20, S29): dump the database and its roles, archive the PDF files, put
 * every artifact into every configured repository (in parallel, each verified), and only then
 * write the manifest to each: a backup without a manifest does not exist for readers. On
 * failure an operator notice names the failed step before the workflow fails.
 */
export async function NightlyBackup(input: NightlyBackupInput): Promise<NightlyBackupResult> {
  const { longWork, shortWork } = activitiesFor(heartbeatTimeoutSeconds(input.heartbeatTimeoutSeconds, DEFAULT_HEARTBEAT_TIMEOUT_SECONDS));
  const backupId = input.backupId ?? backupIdFor(input.kind, workflowInfo().runStartTime);
  const startedAt = Date.now();
  const progress: BackupProgress = {
    backupId,
    kind: input.kind,
    phase: 'planning',
    artifacts: {},
    repositoriesDone: [],
    startedAt: new Date(startedAt).toISOString(),
    elapsedMs: 0,
  };
  setHandler(progressQuery, () => ({ ...progress, elapsedMs: Date.now() - startedAt }));
  const enter = (phase: BackupPhase) => {
    progress.phase = phase;
  };

  try {
    const plan = await shortWork.planBackup({ backupId, kind: input.kind, label: input.label });
    // Visible in the Web UI's filters, and to Prune: the artifacts of a running backup are not abandoned.
    upsertSearchAttributes([
      { key: backupIdSearchAttribute, value: backupId },
      { key: backupEnvSearchAttribute, value: plan.env },
      { key: backupKindSearchAttribute, value: input.kind },
    ]);

    enter('dumping');
    const [db, globals, assets] = await Promise.all([
      longWork.dumpDatabase({ backupId, kind: input.kind }),
      longWork.dumpGlobals({ backupId }),
      plan.withAssets ? longWork.archiveAssets({ backupId }) : Promise.resolve(undefined),
    ]);
    const staged: StagedArtifact[] = [db.artifact, globals, ...(assets ? [assets.artifact] : [])];
    for (const artifact of staged) progress.artifacts[artifactName(artifact)] = { bytes: artifact.size, sha256: artifact.sha256 };

    enter('transferring');
    const metadata = { env: plan.env, generated_at: db.generatedAt, schema_version: db.schemaVersion };
    await Promise.all(
      plan.repositories.map(async (repository) => {
        await longWork.uploadArtifacts({ repository, artifacts: staged, metadata });
        progress.repositoriesDone.push(repository);
      }),
    );

    enter('writing-manifest');
    const manifest: Manifest = {
      format: MANIFEST_FORMAT,
      id: backupId,
      env: plan.env,
      kind: input.kind,
      ...(input.label !== undefined ? { label: input.label } : {}),
      pinned: input.pin ?? false,
      generatedAt: db.generatedAt,
      schemaVersion: db.schemaVersion,
      database: {
        name: db.databaseName,
        serverVersion: db.serverVersion,
        pgDumpVersion: db.pgDumpVersion,
        ...(db.tables ? { tables: db.tables } : {}),
        ...(db.dataTables ? { dataTables: db.dataTables } : {}),
      },
      artifacts: Object.fromEntries(staged.map((a) => [artifactName(a), manifestEntry(a)])),
      ...(assets ? { assets: { fileCount: assets.fileCount, bytes: assets.bytes } } : {}),
      fingerprint: db.fingerprint,
      fingerprintScope: db.fingerprintScope,
    };
    const manifestKeys = await Promise.all(plan.repositories.map((repository) => shortWork.writeManifest({ repository, manifest })));

    enter('cleaning-up');
    await shortWork.removeStaging({ backupId });
    enter('completed');
    return {
      backupId,
      kind: input.kind,
      generatedAt: db.generatedAt,
      repositories: plan.repositories,
      manifestKey: manifestKeys[0]!,
      totalBytes: staged.reduce((sum, a) => sum + a.size, 0),
    };
  } catch (error) {
    const failedStep = progress.phase;
    progress.phase = 'failed';
    progress.error = errorMessage(error);
    // Cleanup and the notice must run even when the workflow itself was cancelled.
    await CancellationScope.nonCancellable(async () => {
      await shortWork.removeStaging({ backupId }).catch(() => undefined);
      // A notice that cannot be sent must not replace the backup's own error, which is rethrown below.
      await shortWork
        .notifyBackupFailure({ backupId, kind: input.kind, failedStep, error: progress.error! })
        .catch((noticeError: unknown) => log.warn('the failure notice could not be sent', { backupId, error: errorMessage(noticeError) }));
    });
    throw error;
  }
}

function artifactName(artifact: StagedArtifact): string {
  // Keys look like `<env>/<artifact>/<file>`.
  return artifact.key.split('/')[1] ?? artifact.key;
}

function manifestEntry(artifact: StagedArtifact): ManifestArtifact {
  return {
    key: artifact.key,
    size: artifact.size,
    sha256: artifact.sha256,
    encryption: artifact.encryption,
    format: artifact.format,
    ...(artifact.recipients ? { recipients: artifact.recipients } : {}),
  };
}

function errorMessage(error: unknown): string {
  if (error instanceof ApplicationFailure || error instanceof Error) {
    const cause = (error as { cause?: unknown }).cause;
    return cause instanceof Error ? `${error.message}: ${cause.message}` : error.message;
  }
  return String(error);
}

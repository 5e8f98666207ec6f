import { ApplicationFailure, CancellationScope, log, patched, proxyActivities, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { Activities, HostClaim, StagedArtifact } from '../activities/index.js';
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
import { allSettledOrThrow, hostTimeoutSeconds, isHostLost, onOneHost } from './on-one-host.js';
import { dumpAndUploadAsStaged, UPLOAD_AS_STAGED } from './upload-as-staged.js';

/** The repository that lives on the host's own disk (BACKUP_DIR): each host has its own. */
const LOCAL = 'local';

const DEFAULT_HEARTBEAT_TIMEOUT_SECONDS = 30;

/**
 * Long work (dump, upload) heartbeats; a worker that dies or stalls is noticed within the
 * heartbeat timeout and the activity is retried on a live worker. Short work sends no
 * heartbeats: its start-to-close timeout bounds how long a lost one blocks the backup.
 * With the default of 30 s: retries from 10 s up to 5 min apart; short steps within 2 min.
 */
function activitiesFor(heartbeatSeconds: number, host?: { taskQueue: string; timeoutSeconds: number }) {
  // On a host queue a lost host shows as a schedule-to-start timeout (workflows/on-one-host.ts).
  const queue = host ? { taskQueue: host.taskQueue, scheduleToStartTimeout: host.timeoutSeconds * 1000 } : {};
  const longWork = proxyActivities<Activities>({
    ...queue,
    startToCloseTimeout: '12h',
    heartbeatTimeout: heartbeatSeconds * 1000,
    retry: { initialInterval: (heartbeatSeconds * 1000) / 3, backoffCoefficient: 2, maximumInterval: heartbeatSeconds * 10_000, maximumAttempts: 10 },
  });
  const shortWork = proxyActivities<Activities>({
    ...queue,
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
 *
 * Planning runs on the shared task queue; everything from the dump to the cleanup runs on ONE
 * host (workflows/on-one-host.ts), whose staging holds the artifacts and whose local repository
 * receives them. The manifests of the remote repositories need no disk: they are written from
 * the shared queue. A host lost on the way: the manifests already written are withdrawn and the
 * chain starts again from the dump on a live host.
 */
export async function NightlyBackup(input: NightlyBackupInput): Promise<NightlyBackupResult> {
  const heartbeatSeconds = heartbeatTimeoutSeconds(input.heartbeatTimeoutSeconds, DEFAULT_HEARTBEAT_TIMEOUT_SECONDS);
  const hostSeconds = hostTimeoutSeconds(input.hostTimeoutSeconds);
  const { shortWork } = activitiesFor(heartbeatSeconds);
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
    hostsLost: [],
  };
  setHandler(progressQuery, () => ({ ...progress, elapsedMs: Date.now() - startedAt }));
  const enter = (phase: BackupPhase) => {
    progress.phase = phase;
  };
  let current: { host: HostClaim; shortWork: ReturnType<typeof activitiesFor>['shortWork'] } | undefined;

  try {
    const plan = await shortWork.planBackup({ backupId, kind: input.kind, label: input.label });
    // Visible in the Web UI's filters, and to Prune: the artifacts of a running backup are not abandoned.
    upsertSearchAttributes([
      { key: backupIdSearchAttribute, value: backupId },
      { key: backupEnvSearchAttribute, value: plan.env },
      { key: backupKindSearchAttribute, value: input.kind },
    ]);

    let manifestsTouched = false;
    const done = await onOneHost({
      claim: () => shortWork.claimHost(),
      onHostLost: async (lost) => {
        progress.hostsLost.push(lost.hostId);
        current = undefined;
        // The next attempt rewrites the artifacts: no manifest may point at them meanwhile. The
        // lost host's own local repository is out of reach; it holds a whole backup or none.
        if (manifestsTouched) {
          await Promise.all(plan.repositories.filter((r) => r !== LOCAL).map((repository) => shortWork.withdrawManifest({ repository, backupId })));
        }
      },
      chain: async (host, attempt) => {
        const onHost = activitiesFor(heartbeatSeconds, { taskQueue: host.taskQueue, timeoutSeconds: hostSeconds });
        current = { host, shortWork: onHost.shortWork };
        progress.host = host.hostId;
        progress.artifacts = {};
        progress.repositoriesDone = [];
        // This host may have run an earlier attempt of this backup and written its local manifest.
        if (attempt > 1 && plan.repositories.includes(LOCAL)) await onHost.shortWork.withdrawManifest({ repository: LOCAL, backupId });

        enter('dumping');
        let db: Awaited<ReturnType<typeof onHost.longWork.dumpDatabase>>;
        let staged: StagedArtifact[];
        let assets: Awaited<ReturnType<typeof onHost.longWork.archiveAssets>> | undefined;
        if (patched(UPLOAD_AS_STAGED)) {
          ({ db, staged, assets } = await dumpAndUploadAsStaged(onHost.longWork, { backupId, kind: input.kind, ...plan, progress, artifactName }));
        } else {
          let globals: StagedArtifact;
          [db, globals, assets] = await Promise.all([
            onHost.longWork.dumpDatabase({ backupId, kind: input.kind }),
            onHost.longWork.dumpGlobals({ backupId }),
            plan.withAssets ? onHost.longWork.archiveAssets({ backupId }) : Promise.resolve(undefined),
          ]);
          staged = [db.artifact, globals, ...(assets ? [assets.artifact] : [])];
          for (const artifact of staged) progress.artifacts[artifactName(artifact)] = { bytes: artifact.size, sha256: artifact.sha256 };

          enter('transferring');
          const metadata = { env: plan.env, generated_at: db.generatedAt, schema_version: db.schemaVersion };
          await allSettledOrThrow(
            plan.repositories.map(async (repository) => {
              await onHost.longWork.uploadArtifacts({ repository, artifacts: staged, metadata });
              progress.repositoriesDone.push(repository);
            }),
          );
        }

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
        manifestsTouched = true;
        // The local repository is this host's; the others are reached from any worker.
        const manifestKeys = await allSettledOrThrow(
          plan.repositories.map((repository) => (repository === LOCAL ? onHost.shortWork : shortWork).writeManifest({ repository, manifest })),
        );
        return { db, staged, manifestKeys, host };
      },
    });

    enter('cleaning-up');
    // The backup is complete: a host lost now only leaves its staging behind (see README).
    await current?.shortWork.removeStaging({ backupId }).catch((error: unknown) => {
      if (!isHostLost(error)) throw error;
    });
    enter('completed');
    return {
      backupId,
      kind: input.kind,
      generatedAt: done.db.generatedAt,
      repositories: plan.repositories,
      manifestKey: done.manifestKeys[0]!,
      totalBytes: done.staged.reduce((sum, a) => sum + a.size, 0),
      host: done.host.hostId,
    };
  } catch (error) {
    const failedStep = progress.phase;
    progress.phase = 'failed';
    progress.error = errorMessage(error);
    // Cleanup and the notice must run even when the workflow itself was cancelled. The staging
    // is on the host of the chain; a lost host keeps its own (nothing to reach it with).
    await CancellationScope.nonCancellable(async () => {
      await current?.shortWork.removeStaging({ backupId }).catch(() => undefined);
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

import type { Activities, StagedArtifact } from '../activities/index.js';
import type { BackupKind } from '../src/layout.js';
import type { BackupProgress } from './messages.js';
import { allSettledOrThrow } from './on-one-host.js';

/** The patch id (docs/DEPLOYS.md) of the change from "upload once all are staged" to this. */
export const UPLOAD_AS_STAGED = 'nightly-backup-upload-as-staged';

type LongWork = Pick<Activities, 'dumpDatabase' | 'dumpGlobals' | 'archiveAssets' | 'uploadArtifacts'>;
type DatabaseDump = Awaited<ReturnType<Activities['dumpDatabase']>>;
type AssetsArchive = Awaited<ReturnType<Activities['archiveAssets']>>;

export interface UploadAsStagedInput {
  backupId: string;
  kind: BackupKind;
  env: string;
  repositories: readonly string[];
  withAssets: boolean;
  /** Updated as the work goes: each staged artifact, each repository holding them all, the phase. */
  progress: BackupProgress;
  artifactName: (artifact: StagedArtifact) => string;
}

/**
 * Stages the backup's artifacts (database dump, globals, PDF archive: in parallel) and puts each
 * into every repository as soon as it is staged: the database goes up while the PDF archive is
 * still being written, and the other way round. One uploadArtifacts activity per (repository,
 * artifact), one at a time per repository, so each repository still retries alone; the caller
 * writes the manifests after this returns, i.e. once every repository holds every artifact.
 *
 * Every object carries the database snapshot's time and schema version as metadata (README), which
 * the dump returns when it ends: globals and the PDF archive go up once they are staged AND the dump
 * has ended.
 *
 * After a failure no further upload starts; once every step in flight has ended, the failure is
 * rethrown, a lost host preferred: that decides a restart on another host (workflows/on-one-host.ts),
 * which must not meet a step of this attempt still running.
 */
export async function dumpAndUploadAsStaged(
  longWork: LongWork,
  input: UploadAsStagedInput,
): Promise<{ db: DatabaseDump; staged: StagedArtifact[]; assets: AssetsArchive | undefined }> {
  const { backupId, kind, progress } = input;
  const artifactCount = input.withAssets ? 3 : 2;
  const uploaded = new Map(input.repositories.map((repository) => [repository, 0]));

  // One upload at a time per repository, in the order the artifacts are staged. Side by side they
  // were no faster (1 GB bench: the db and the PDF archive went to S3 in 17.2 s and 20.0 s at the
  // same time; moto and sshd are CPU-bound on this machine), and each S3 upload buffers up to
  // queueSize + 1 parts (40 MiB at 8 MiB parts) in the worker.
  const queues = new Map<string, Promise<unknown>>(input.repositories.map((repository) => [repository, Promise.resolve()]));
  /** True once `work` ran; false when it was not started because an upload had failed meanwhile. */
  const enqueue = (repository: string, work: () => Promise<void>): Promise<boolean> => {
    const next = queues.get(repository)!.then(async () => {
      if (failed) return false;
      await work();
      return true;
    });
    queues.set(repository, next.catch(() => undefined));
    return next;
  };
  const upload = async (artifact: StagedArtifact, db: DatabaseDump): Promise<void> => {
    const metadata = { env: input.env, generated_at: db.generatedAt, schema_version: db.schemaVersion };
    await allSettledOrThrow(
      input.repositories.map(async (repository) => {
        if (!(await enqueue(repository, () => longWork.uploadArtifacts({ repository, artifacts: [artifact], metadata })))) return;
        const count = (uploaded.get(repository) ?? 0) + 1;
        uploaded.set(repository, count);
        if (count === artifactCount) progress.repositoriesDone.push(repository);
      }),
    );
  };
  const staged = <T>(artifact: StagedArtifact, value: T): T => {
    progress.artifacts[input.artifactName(artifact)] = { bytes: artifact.size, sha256: artifact.sha256 };
    return value;
  };

  // After a failure no upload starts; the steps in flight finish (a dump still writing its staging
  // file must not meet the failure's cleanup) before the failure is rethrown.
  let failed = false;
  const uploadUnlessFailed = async (artifact: StagedArtifact, db: DatabaseDump): Promise<void> => {
    if (!failed) await upload(artifact, db);
  };
  let dumping = artifactCount;
  const dumped = <T>(value: T): T => {
    if (--dumping === 0 && progress.phase === 'dumping') progress.phase = 'transferring';
    return value;
  };
  const dbDump = longWork.dumpDatabase({ backupId, kind }).then((db) => dumped(staged(db.artifact, db)));
  const globals = longWork.dumpGlobals({ backupId }).then((artifact) => dumped(staged(artifact, artifact)));
  const assets = input.withAssets
    ? longWork.archiveAssets({ backupId }).then((archive) => dumped(staged(archive.artifact, archive)))
    : Promise.resolve(undefined);
  const pipelines = [
    dbDump.then((db) => uploadUnlessFailed(db.artifact, db)),
    globals.then(async (artifact) => uploadUnlessFailed(artifact, await dbDump)),
    assets.then(async (archive) => (archive ? uploadUnlessFailed(archive.artifact, await dbDump) : undefined)),
  ];
  for (const pipeline of pipelines) pipeline.catch(() => (failed = true));
  await allSettledOrThrow(pipelines);
  const [db, globalsArtifact, archive] = await Promise.all([dbDump, globals, assets]);
  return { db, staged: [db.artifact, globalsArtifact, ...(archive ? [archive.artifact] : [])], assets: archive };
}

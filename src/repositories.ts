import { ConfigError, type Config, type ConfigIssue, type Credentials } from './config.js';
import { objectTagsForKey } from './lifecycle.js';
import { objectLockPolicy, objectLockRetainUntil } from './object-lock.js';
import { LocalRepository } from './storage/local.js';
import type { Repository } from './storage/repository.js';
import { S3Repository } from './storage/s3.js';
import { SftpRepository } from './storage/sftp.js';

/** The off-site copy's repository name (S8): a second S3 bucket, in another account or region. */
export const OFFSITE_COPY_REPOSITORY = 's3-copy';

/**
 * Which credentials a repository is opened with (S15): backups write with S3_WRITER_*,
 * restores read with S3_READER_*, prune deletes with S3_PRUNER_*; unset means the SDK's
 * default chain. The off-site copy `s3-copy` uses its own account's credentials for every role.
 */
export type RepositoryRole = 'writer' | 'reader' | 'pruner';

/** The configured repositories' names, in the order they are made: local, s3, s3-copy, sftp. */
export function repositoryNames(config: Config): string[] {
  return [...repositoryFactories(config, 'reader').keys()];
}

/** Every configured repository, opened with `role`'s credentials. The caller closes them. */
export function createRepositories(config: Config, role: RepositoryRole): Map<string, Repository> {
  return new Map([...repositoryFactories(config, role)].map(([name, open]) => [name, open()]));
}

/** One configured repository opened with `role`'s credentials; undefined for a name not configured. The caller closes it. */
export function openRepository(config: Config, role: RepositoryRole, name: string): Repository | undefined {
  return repositoryFactories(config, role).get(name)?.();
}

function repositoryFactories(config: Config, role: RepositoryRole): Map<string, () => Repository> {
  const factories = new Map<string, () => Repository>();
  factories.set('local', () => new LocalRepository({ root: config.local.backupDir }));
  const s3 = config.s3;
  // Immutable backups: each object is locked for as long as S3_RETENTION may keep it (src/object-lock.ts).
  const lockPolicy = objectLockPolicy(config.prune.s3Retention);
  const objectLock = (mode: 'GOVERNANCE' | 'COMPLIANCE' | undefined) =>
    mode === undefined ? undefined : { mode, retainUntil: (key: string) => objectLockRetainUntil(lockPolicy, key, new Date()) };
  if (s3) {
    const credentials = s3[role];
    factories.set(
      's3',
      () =>
        new S3Repository({
          bucket: s3.bucket,
          prefix: s3.prefix,
          region: s3.region,
          endpoint: s3.endpointUrl,
          forcePathStyle: s3.forcePathStyle,
          credentials: credentials ? sdkCredentials(credentials) : undefined,
          // A dedicated writer role cannot read back what it wrote (deploy/iam/writer.json).
          writeOnly: role === 'writer' && credentials !== undefined,
          sse: s3.sse.serverSideEncryption === 'aws:kms' ? { kind: 'aws:kms', kmsKeyId: s3.sse.kmsKeyId } : { kind: 'AES256' },
          partSizeBytes: s3.partSizeBytes,
          objectTags: objectTagsForKey,
          objectLock: objectLock(s3.objectLock),
        }),
    );
    const copy = config.s3Copy;
    if (copy) {
      // The off-site copy (S8): one more repository, so every backup is uploaded there too.
      factories.set(
        OFFSITE_COPY_REPOSITORY,
        () =>
          new S3Repository({
            name: OFFSITE_COPY_REPOSITORY,
            bucket: copy.bucket,
            prefix: copy.prefix,
            region: copy.region,
            endpoint: copy.endpointUrl,
            forcePathStyle: copy.forcePathStyle,
            credentials: copy.credentials ? sdkCredentials(copy.credentials) : undefined,
            sse: copy.sse.serverSideEncryption === 'aws:kms' ? { kind: 'aws:kms', kmsKeyId: copy.sse.kmsKeyId } : { kind: 'AES256' },
            partSizeBytes: s3.partSizeBytes,
            objectTags: objectTagsForKey,
            objectLock: objectLock(copy.objectLock),
          }),
      );
    }
  }
  const remote = config.remote;
  if (remote) {
    factories.set(
      'sftp',
      () =>
        new SftpRepository({
          host: remote.host,
          port: remote.port,
          username: remote.user,
          privateKey: remote.privateKeyFile,
          hostKey: remote.hostKey.fingerprint,
          root: remote.dir,
        }),
    );
  }
  return factories;
}

/**
 * Refuses Object Lock settings on a bucket created without Object Lock (S3 would reject every
 * locked put, or worse, a store might ignore the lock): checked at worker start, naming the setting.
 */
export async function assertObjectLockBuckets(config: Config, repositories: ReadonlyMap<string, Repository>): Promise<void> {
  const issues: ConfigIssue[] = [];
  for (const [name, variable, bucket] of [
    ['s3', 'S3_OBJECT_LOCK_MODE', config.s3?.bucket],
    [OFFSITE_COPY_REPOSITORY, 'S3_COPY_OBJECT_LOCK_MODE', config.s3Copy?.bucket],
  ] as const) {
    const repository = repositories.get(name);
    if (!(repository instanceof S3Repository) || !repository.immutable) continue;
    if (!(await repository.bucketHasObjectLock())) {
      issues.push({
        variable,
        message: `is set, but the bucket ${bucket} was created without Object Lock; expected a bucket created with Object Lock enabled (aws s3api create-bucket --object-lock-enabled-for-bucket), or ${variable} unset`,
      });
    }
  }
  if (issues.length > 0) throw new ConfigError(issues);
}

function sdkCredentials(credentials: Credentials) {
  return { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey.reveal() };
}

import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { BackupRuntime } from '../activities/runtime.js';
import type { Config, Credentials } from './config.js';
import { encryptStream, loadRecipientKeys } from './crypto/openpgp.js';
import { objectTagsForKey } from './lifecycle.js';
import { createPruneRuntime, OFFSITE_COPY_REPOSITORY } from './prune-policy.js';
import { createRestoreSettings } from './restore/settings.js';
import { LocalRepository } from './storage/local.js';
import type { Repository } from './storage/repository.js';
import { S3Repository } from './storage/s3.js';
import { SftpRepository } from './storage/sftp.js';

/**
 * Builds the worker's runtime from its configuration: the repositories (local always, S3 and
 * the SFTP host when configured) and the recipient keys. Keys are loaded and checked here, at
 * worker start, so an expired or missing GPG_RECIPIENT key stops the worker with a clear
 * message instead of failing the first backup at 02:00.
 */
export async function createBackupRuntime(config: Config): Promise<BackupRuntime> {
  const encryption = config.gpg?.encryption;
  const recipientKeys = encryption ? await loadRecipientKeys(encryption.publicKeyFile, encryption.recipient) : undefined;
  return {
    layout: { env: config.env, prefix: config.local.prefix },
    db: {
      host: config.db.host,
      port: config.db.port,
      user: config.db.user,
      password: config.db.password?.reveal(),
      database: config.db.database,
    },
    pgBinDir: config.db.pgBinDir,
    stagingRoot: join(config.local.backupDir, '.staging'),
    criticalTables: config.backup.criticalTables,
    schemaVersionQuery: config.backup.schemaVersionQuery,
    fingerprintTables: config.backup.fingerprintTables,
    assetDir: config.assets.provider === 'local' ? config.assets.dir : undefined,
    encryption:
      encryption && recipientKeys
        ? { recipient: encryption.recipient, encrypt: (plaintext: Readable) => encryptStream(plaintext, recipientKeys) }
        : undefined,
    repositories: createRepositories(config, 'writer'),
    notifyWebhookUrl: config.notify.webhookUrl?.reveal(),
    freshness: config.freshness,
    restore: await createRestoreSettings(config),
    prune: createPruneRuntime(config),
  };
}

/**
 * The configured repositories by name. `role` picks the S3 credentials (S15): backups write
 * with S3_WRITER_*, restores read with S3_READER_*; unset means the SDK's default chain.
 * The off-site copy `s3-copy` (S3_COPY_*) uses its own account's credentials for every role.
 */
export function createRepositories(config: Config, role: 'writer' | 'reader' | 'pruner'): Map<string, Repository> {
  const repositories = new Map<string, Repository>();
  repositories.set('local', new LocalRepository({ root: config.local.backupDir }));
  if (config.s3) {
    const credentials = config.s3[role];
    repositories.set(
      's3',
      new S3Repository({
        bucket: config.s3.bucket,
        prefix: config.s3.prefix,
        region: config.s3.region,
        endpoint: config.s3.endpointUrl,
        forcePathStyle: config.s3.forcePathStyle,
        credentials: credentials ? sdkCredentials(credentials) : undefined,
        // A dedicated writer role cannot read back what it wrote (deploy/iam/writer.json).
        writeOnly: role === 'writer' && credentials !== undefined,
        sse:
          config.s3.sse.serverSideEncryption === 'aws:kms'
            ? { kind: 'aws:kms', kmsKeyId: config.s3.sse.kmsKeyId }
            : { kind: 'AES256' },
        partSizeBytes: config.s3.partSizeBytes,
        objectTags: objectTagsForKey,
      }),
    );
  }
  if (config.s3 && config.s3Copy) {
    // The off-site copy (S8): one more repository, so every backup is uploaded there too.
    const copy = config.s3Copy;
    repositories.set(
      OFFSITE_COPY_REPOSITORY,
      new S3Repository({
        name: OFFSITE_COPY_REPOSITORY,
        bucket: copy.bucket,
        prefix: copy.prefix,
        region: copy.region,
        endpoint: copy.endpointUrl,
        forcePathStyle: copy.forcePathStyle,
        credentials: copy.credentials ? sdkCredentials(copy.credentials) : undefined,
        sse: copy.sse.serverSideEncryption === 'aws:kms' ? { kind: 'aws:kms', kmsKeyId: copy.sse.kmsKeyId } : { kind: 'AES256' },
        partSizeBytes: config.s3.partSizeBytes,
        objectTags: objectTagsForKey,
      }),
    );
  }
  if (config.remote) {
    repositories.set(
      'sftp',
      new SftpRepository({
        host: config.remote.host,
        port: config.remote.port,
        username: config.remote.user,
        privateKey: config.remote.privateKeyFile,
        hostKey: config.remote.hostKey.fingerprint,
        root: config.remote.dir,
      }),
    );
  }
  return repositories;
}

function sdkCredentials(credentials: Credentials) {
  return { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey.reveal() };
}

import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { BackupRuntime } from '../activities/runtime.js';
import type { Config } from './config.js';
import { encryptStream, loadRecipientKeys, recipientKeyRefs } from './crypto/openpgp.js';
import { hostTaskQueue } from './host.js';
import { createPruneRuntime } from './prune-policy.js';
import { assertObjectLockBuckets, createRepositories, openRepository, repositoryNames } from './repositories.js';
import { createRestoreSettings } from './restore/settings.js';

/**
 * The composition root: the one place that builds the worker's runtime from its configuration
 * and hands each part what it needs (repositories opened per role, keys, settings); nothing
 * below it reads the configuration to build things of its own. Keys are loaded and checked
 * here, at worker start, so an expired or missing GPG_RECIPIENT key stops the worker with a
 * clear message instead of failing the first backup at 02:00.
 */
export async function createBackupRuntime(config: Config): Promise<BackupRuntime> {
  const encryption = config.gpg?.encryption;
  const recipientKeys = encryption ? await loadRecipientKeys(encryption.publicKeyFile, encryption.recipient) : undefined;
  const repositories = createRepositories(config, 'writer');
  try {
    await assertObjectLockBuckets(config, repositories);
  } catch (error) {
    await Promise.all([...repositories.values()].map((repository) => repository.close()));
    throw error;
  }
  return {
    host: { id: config.host.id, taskQueue: hostTaskQueue(config.temporal.taskQueue, config.host.id), sharedTaskQueue: config.temporal.taskQueue },
    layout: { env: config.env, prefix: config.local.prefix },
    db: {
      host: config.db.host,
      port: config.db.port,
      user: config.db.user,
      password: config.db.password?.reveal(),
      database: config.db.database,
      tls: config.db.tls,
    },
    pgBinDir: config.db.pgBinDir,
    stagingRoot: join(config.local.backupDir, '.staging'),
    criticalTables: config.backup.criticalTables,
    schemaVersionQuery: config.backup.schemaVersionQuery,
    lockTimeoutMs: config.backup.lockTimeoutMs,
    fingerprintTables: config.backup.fingerprintTables,
    assetDir: config.assets.provider === 'local' ? config.assets.dir : undefined,
    encryption:
      encryption && recipientKeys
        ? {
            recipient: encryption.recipient,
            recipients: await recipientKeyRefs(recipientKeys),
            encrypt: (plaintext: Readable) => encryptStream(plaintext, recipientKeys),
          }
        : undefined,
    repositories,
    notifyWebhookUrl: config.notify.webhookUrl?.reveal(),
    freshness: config.freshness,
    restore: await createRestoreSettings(config, {
      names: repositoryNames(config),
      openReader: (name) => openRepository(config, 'reader', name),
    }),
    prune: createPruneRuntime(config, (name) => openRepository(config, 'pruner', name)),
  };
}

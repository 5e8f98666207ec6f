import { readFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { RestoreSettings } from '../../activities/restore-runtime.js';
import type { Config } from '../config.js';
import { decryptStream, loadDecryptionKeys } from '../crypto/openpgp.js';
import type { Repository } from '../storage/repository.js';

/** DRILL_DB_*: the connection drills use instead of the production one (its maintenance database). */
function drillServer(config: Config): RestoreSettings['drillServer'] {
  const server = config.drill.server;
  if (!server) return undefined;
  return {
    db: {
      host: server.host,
      port: server.port,
      user: server.user,
      password: server.password?.reveal(),
      database: 'postgres',
      tls: server.tls,
      settingPrefix: 'DRILL_DB_',
    },
    restoreOwners: server.restoreOwners,
  };
}

/** The order a restore picks a repository in when none is named: the off-site copies first. */
const PREFERENCE = ['s3', 'sftp', 'local'];

/**
 * The restore part of the worker's runtime. The private keys (GPG_PRIVATE_KEY_FILE: a file or a
 * directory of them, old and new after a rotation) are unlocked here, at worker start, so a
 * wrong passphrase stops the worker with a clear message instead of failing the first drill;
 * keys and passphrases never leave this process.
 */
export async function createRestoreSettings(
  config: Config,
  repositories: { names: readonly string[]; openReader(name: string): Repository | undefined },
): Promise<RestoreSettings> {
  const decryption = config.gpg?.decryption;
  const readPassphrase = async (file: string) => (await readFile(file, 'utf8')).replace(/\r?\n$/, '');
  const keys = decryption
    ? await loadDecryptionKeys(
        await Promise.all(
          decryption.keyFiles.map(async ({ file, passphraseFile }) =>
            passphraseFile !== undefined
              ? { file, passphrase: await readPassphrase(passphraseFile), passphraseFrom: `the passphrase file ${passphraseFile}` }
              : decryption.passphraseFile !== undefined
                ? { file, passphrase: await readPassphrase(decryption.passphraseFile), passphraseFrom: 'GPG_PASSPHRASE_FILE' }
                : { file, passphrase: decryption.passphrase?.reveal() ?? '', passphraseFrom: 'GPG_PASSPHRASE' },
          ),
        ),
        decryption.privateKeyFile,
      )
    : undefined;
  return {
    openReader: repositories.openReader,
    readerNames: PREFERENCE.filter((name) => repositories.names.includes(name)),
    decryption: keys
      ? { keyIds: keys.keyIds, describeKeys: keys.describe, decrypt: (ciphertext: Readable) => decryptStream(ciphertext, keys) }
      : undefined,
    approvers: config.restore.approvers,
    approvalTimeoutMs: config.restore.approvalTimeoutMs,
    drillPreApproved: config.drill.preApproved,
    ...(config.restore.allowedSigners ? { allowedSignersFile: config.restore.allowedSigners.file } : {}),
    drillAcceptUnsigned: config.drill.acceptUnsignedApprovals,
    drillDecryptBeforeApproval: config.drill.decryptBeforeApproval,
    targetDatabase: config.restore.targetDatabase,
    ...(config.restore.jobs !== undefined ? { restoreJobs: config.restore.jobs } : {}),
    targetAssetDir: config.restore.assetDir,
    drillServer: drillServer(config),
    checks: {
      latestDataQuery: config.drill.latestDataQuery,
      sqlChecks: config.drill.checks?.queries ?? [],
      batchResumeQuery: config.drill.batchResumeQuery,
      drillSmokeUrls: config.drill.smokeUrls,
      restoreSmokeUrls: config.restore.smokeUrls,
      rpoMs: {
        daily: config.freshness.rpoDailyMs,
        manual: config.freshness.rpoDailyMs,
        critical: config.freshness.rpoCriticalMs,
        'weekly-full': config.freshness.rpoCriticalMs,
      },
    },
  };
}

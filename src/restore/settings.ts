import { readFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { RestoreSettings } from '../../activities/restore-runtime.js';
import type { Config } from '../config.js';
import { decryptStream, loadPrivateKey } from '../crypto/openpgp.js';
import type { Repository } from '../storage/repository.js';

/** The order a restore picks a repository in when none is named: the off-site copies first. */
const PREFERENCE = ['s3', 'sftp', 'local'];

/**
 * The restore part of the worker's runtime. The private key (GPG_PRIVATE_KEY_FILE) is unlocked
 * here, at worker start, so a wrong passphrase stops the worker with a clear message instead of
 * failing the first drill; key and passphrase never leave this process.
 */
export async function createRestoreSettings(
  config: Config,
  repositories: { names: readonly string[]; openReader(name: string): Repository | undefined },
): Promise<RestoreSettings> {
  const decryption = config.gpg?.decryption;
  const privateKey = decryption
    ? await loadPrivateKey(
        decryption.privateKeyFile,
        decryption.passphraseFile !== undefined
          ? (await readFile(decryption.passphraseFile, 'utf8')).replace(/\r?\n$/, '')
          : (decryption.passphrase?.reveal() ?? ''),
      )
    : undefined;
  return {
    openReader: repositories.openReader,
    readerNames: PREFERENCE.filter((name) => repositories.names.includes(name)),
    decryption: privateKey ? { decrypt: (ciphertext: Readable) => decryptStream(ciphertext, privateKey) } : undefined,
    approvers: config.restore.approvers,
    approvalTimeoutMs: config.restore.approvalTimeoutMs,
    drillPreApproved: config.drill.preApproved,
    drillDecryptBeforeApproval: config.drill.decryptBeforeApproval,
    targetDatabase: config.restore.targetDatabase,
    targetAssetDir: config.restore.assetDir,
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

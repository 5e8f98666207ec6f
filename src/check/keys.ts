import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import type { Config } from '../config.js';
import type { Catalog } from '../catalog.js';
import { checkBackupKeys } from '../crypto/key-availability.js';
import { encryptStream, loadRecipientKeys, privateKeyIds, recipientKeyRefs } from '../crypto/openpgp.js';
import { createRestoreSettings } from '../restore/settings.js';
import { critical, ok, unknown, within, type ProbeResult } from './probe.js';

/**
 * The OpenPGP keys (S12, S13): the public key encrypts a short text as every backup would; the
 * private key(s), where this host has them (restore hosts), are unlocked and must decrypt it;
 * and every backup of the catalogs must be encrypted to a key this host holds (after a key
 * rotation, a backup whose key was dropped cannot be restored).
 */

const TIMEOUT_MS = 30_000;
const PLAINTEXT = 'erp4-backup check: a text encrypted as the backups are\n';

/** The encryption probe; its ciphertext, when it worked, for the decryption probe. */
export async function probeEncryptionKey(config: Config): Promise<{ result: ProbeResult; ciphertext?: Buffer }> {
  const name = 'gpg: encrypt';
  const encryption = config.gpg?.encryption;
  if (!encryption) return { result: ok(name, 'GPG_RECIPIENT is not set: backups are not OpenPGP-encrypted') };
  try {
    const keys = await loadRecipientKeys(encryption.publicKeyFile, encryption.recipient);
    const ciphertext = await within(TIMEOUT_MS, 'OpenPGP encryption', encryptStream(Readable.from([Buffer.from(PLAINTEXT)]), keys).then(buffer));
    const refs = await recipientKeyRefs(keys);
    return {
      result: ok(name, `GPG_PUBLIC_KEY_FILE encrypts to ${refs.map((ref) => `key id ${ref.keyId} (primary ${ref.primaryFingerprint})`).join(', ')}`),
      ciphertext,
    };
  } catch (error) {
    return { result: critical(name, error, { fallback: ['GPG_PUBLIC_KEY_FILE', 'GPG_RECIPIENT'] }) };
  }
}

export async function probeDecryptionKeys(config: Config, ciphertext: Buffer | undefined): Promise<ProbeResult> {
  const name = 'gpg: decrypt';
  if (!config.gpg?.decryption) return ok(name, 'GPG_PRIVATE_KEY_FILE is not set: this host cannot restore encrypted backups (needed on restore hosts only)');
  try {
    // The worker's own key loading: passphrases from GPG_PASSPHRASE, GPG_PASSPHRASE_FILE or per-key files.
    const { decryption } = await createRestoreSettings(config, { names: [], openReader: () => undefined });
    if (!decryption) throw new Error('GPG_PRIVATE_KEY_FILE holds no key');
    if (!ciphertext) return ok(name, `unlocked ${decryption.describeKeys()}; nothing to decrypt (no public key configured, or its probe failed)`);
    const plaintext = await within(TIMEOUT_MS, 'OpenPGP decryption', decryption.decrypt(Readable.from([ciphertext])).then(buffer));
    if (plaintext.toString('utf8') !== PLAINTEXT) throw new Error('the decrypted text differs from the encrypted one');
    return ok(name, `GPG_PRIVATE_KEY_FILE decrypts what GPG_PUBLIC_KEY_FILE encrypts (${decryption.describeKeys()})`);
  } catch (error) {
    return critical(name, error, { fallback: ['GPG_PRIVATE_KEY_FILE'] });
  }
}

/** Backups no configured private key decrypts, per readable catalog (the `keys` command's judgement). */
export async function probeBackupKeys(config: Config, catalogs: ReadonlyMap<string, Catalog | Error>): Promise<ProbeResult> {
  const name = 'gpg: keys of the backups';
  const decryption = config.gpg?.decryption;
  if (!decryption) return ok(name, 'GPG_PRIVATE_KEY_FILE is not set: not compared with the backups');
  try {
    const { keyIds } = await privateKeyIds(decryption.keyFiles.map((keyFile) => keyFile.file));
    const missing = new Set<string>();
    let encrypted = 0;
    let read = 0;
    for (const catalog of catalogs.values()) {
      if (catalog instanceof Error) continue;
      read += 1;
      for (const manifest of catalog.backups) {
        const check = checkBackupKeys(manifest, keyIds);
        if (check.encrypted > 0) encrypted += 1;
        if (check.missing.length > 0) missing.add(manifest.id);
      }
    }
    if (read === 0) return unknown(name, 'no repository could be read');
    if (missing.size > 0) {
      const ids = [...missing].sort();
      return {
        name,
        status: 'WARNING',
        detail: `${ids.length} backup(s) are encrypted to a key GPG_PRIVATE_KEY_FILE does not hold and cannot be restored here: ${ids.slice(0, 5).join(', ')}${ids.length > 5 ? ', ...' : ''}`,
        settings: ['GPG_PRIVATE_KEY_FILE'],
        remedy: 'erp4-backup keys --repo <name> lists them with the keys they need',
      };
    }
    return ok(name, encrypted === 0 ? 'no backup is OpenPGP-encrypted yet' : `each of the ${encrypted} encrypted backups is encrypted to a key GPG_PRIVATE_KEY_FILE holds`);
  } catch (error) {
    return critical(name, error, { fallback: ['GPG_PRIVATE_KEY_FILE'] });
  }
}

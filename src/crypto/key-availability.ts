import { ARTIFACT_NAMES, type ArtifactName } from '../layout.js';
import type { Manifest } from '../manifest.js';
import { missingRecipientKeyIds } from './openpgp.js';

/**
 * Which backups the configured private keys (GPG_PRIVATE_KEY_FILE) can decrypt, from the
 * manifests alone: after a key rotation, a backup whose key is no longer configured can only
 * be restored once that key is configured again. Used by restores (fail before touching any
 * database) and by `erp4-backup keys` (and any `check` built on it).
 */
export interface BackupKeyCheck {
  backupId: string;
  /** Encrypted artifacts that no configured key decrypts, with the key ids they need. */
  missing: { artifact: ArtifactName; keyIds: string[]; primaryFingerprints: string[] }[];
  /** Encrypted artifacts whose manifest records no key (written before recipients were recorded): read from the artifact at restore. */
  unrecorded: ArtifactName[];
  /** Number of OpenPGP-encrypted artifacts. */
  encrypted: number;
}

/** `availableKeyIds`: upper-case hex key ids of every configured private (sub)key; empty when none is configured. */
export function checkBackupKeys(manifest: Manifest, availableKeyIds: readonly string[]): BackupKeyCheck {
  const check: BackupKeyCheck = { backupId: manifest.id, missing: [], unrecorded: [], encrypted: 0 };
  for (const name of ARTIFACT_NAMES) {
    const artifact = manifest.artifacts[name];
    if (!artifact || artifact.encryption !== 'openpgp') continue;
    check.encrypted += 1;
    if (!artifact.recipients) {
      check.unrecorded.push(name);
      continue;
    }
    const missing = missingRecipientKeyIds(
      artifact.recipients.map((recipient) => recipient.keyId),
      availableKeyIds,
    );
    if (missing.length > 0) {
      check.missing.push({ artifact: name, keyIds: missing, primaryFingerprints: artifact.recipients.map((recipient) => recipient.primaryFingerprint) });
    }
  }
  return check;
}

/** One sentence naming what is missing, e.g. for a restore's refusal. */
export function describeMissingKeys(check: BackupKeyCheck): string {
  return check.missing
    .map(({ artifact, keyIds, primaryFingerprints }) => `${artifact} is encrypted for key id ${keyIds.join(', ')} (primary key ${[...new Set(primaryFingerprints)].join(', ')})`)
    .join('; ');
}

import { describe, expect, it } from 'vitest';
import { checkBackupKeys, describeMissingKeys } from '../../src/crypto/key-availability.js';
import { missingRecipientKeyIds } from '../../src/crypto/openpgp.js';
import { MANIFEST_FORMAT, type Manifest, type ManifestArtifact } from '../../src/manifest.js';

const OLD = { keyId: '1111111111111111', primaryFingerprint: 'A'.repeat(40) };
const NEW = { keyId: '2222222222222222', primaryFingerprint: 'B'.repeat(40) };

function backup(id: string, artifacts: Manifest['artifacts']): Manifest {
  return {
    format: MANIFEST_FORMAT,
    id,
    env: 'prod',
    kind: 'daily',
    pinned: false,
    generatedAt: '2026-11-26T17:00:00.000Z',
    schemaVersion: 'x',
    database: { name: 'erp4', serverVersion: '15', pgDumpVersion: '15' },
    artifacts,
    fingerprint: [],
    fingerprintScope: 'every-table',
  };
}

const artifact = (extra: Partial<ManifestArtifact>): ManifestArtifact => ({
  key: 'prod/db/erp4-x.dump.gpg',
  size: 1,
  sha256: 'a'.repeat(64),
  encryption: 'openpgp',
  format: 'pg_dump-custom',
  ...extra,
});

describe('checkBackupKeys', () => {
  it('finds the backups no configured key decrypts, naming key id and primary key', () => {
    const oldBackup = backup('20261101T170000Z-daily', { db: artifact({ recipients: [OLD] }), globals: artifact({ format: 'sql', recipients: [OLD] }) });
    const newBackup = backup('20261126T170000Z-daily', { db: artifact({ recipients: [NEW] }) });
    const onlyNewKey = [NEW.keyId, 'CCCCCCCCCCCCCCCC'];

    expect(checkBackupKeys(newBackup, onlyNewKey)).toEqual({ backupId: newBackup.id, missing: [], unrecorded: [], encrypted: 1 });
    const check = checkBackupKeys(oldBackup, onlyNewKey);
    expect(check.missing.map((m) => m.artifact)).toEqual(['db', 'globals']);
    expect(describeMissingKeys(check)).toContain(`db is encrypted for key id ${OLD.keyId} (primary key ${OLD.primaryFingerprint})`);
    expect(checkBackupKeys(oldBackup, [OLD.keyId, NEW.keyId]).missing).toEqual([]);
  });

  it('one held key of several recipients suffices; no configured key misses every encrypted artifact', () => {
    const both = backup('20261126T170000Z-daily', { db: artifact({ recipients: [OLD, NEW] }) });
    expect(checkBackupKeys(both, [NEW.keyId]).missing).toEqual([]);
    expect(checkBackupKeys(both, []).missing).toHaveLength(1);
  });

  it('reports old manifests (no recipients) as unrecorded and unencrypted artifacts not at all', () => {
    const old = backup('20261001T170000Z-daily', { db: artifact({}), assets: artifact({ encryption: 'none', format: 'tar' }) });
    expect(checkBackupKeys(old, [])).toEqual({ backupId: old.id, missing: [], unrecorded: ['db'], encrypted: 1 });
  });
});

describe('missingRecipientKeyIds', () => {
  it('accepts an anonymous recipient (gpg --throw-keyids): decryption tries the keys', () => {
    expect(missingRecipientKeyIds(['0000000000000000'], [NEW.keyId])).toEqual([]);
    expect(missingRecipientKeyIds([OLD.keyId.toLowerCase()], [NEW.keyId])).toEqual([OLD.keyId]);
  });
});

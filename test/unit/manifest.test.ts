import { describe, expect, it } from 'vitest';
import { MANIFEST_FORMAT, ManifestError, parseManifest, serializeManifest, type Manifest } from '../../src/manifest.js';

const manifest: Manifest = {
  format: MANIFEST_FORMAT,
  id: '20261126T170000Z-daily',
  env: 'prod',
  kind: 'daily',
  pinned: false,
  generatedAt: '2026-11-26T17:00:00.000Z',
  schemaVersion: '20261101000000_init',
  database: { name: 'erp4', serverVersion: '15.18', pgDumpVersion: '15.18' },
  artifacts: {
    db: { key: 'prod/db/erp4-20261126T170000Z-daily.dump', size: 10, sha256: 'a'.repeat(64), encryption: 'none', format: 'pg_dump-custom' },
  },
  fingerprint: [{ table: 'public.invoices', rowCount: '3', sums: { amount: '12.50' } }],
  fingerprintScope: 'every-table',
};

describe('manifest', () => {
  it('round-trips through its JSON form', () => {
    expect(parseManifest(serializeManifest(manifest), 'm')).toEqual(manifest);
  });

  it('reads an imported backup with its imported section, and a manifest without one as before', () => {
    const imported: Manifest = {
      ...manifest,
      kind: 'manual',
      fingerprint: [],
      fingerprintScope: 'configured',
      imported: { file: 'erp4-old.dump', size: 10, sha256: 'b'.repeat(64), importedAt: '2026-11-29T18:00:00.000Z' },
    };
    expect(parseManifest(serializeManifest(imported), 'm')).toEqual(imported);
    expect(parseManifest(serializeManifest(manifest), 'm').imported).toBeUndefined();
    const edited = serializeManifest(imported).toString('utf8').replace('b'.repeat(64), 'nope');
    expect(() => parseManifest(edited, 'm')).toThrow('imported.sha256');
  });

  it.each([
    ['a truncated file', (json: string) => json.slice(0, 40), 'not JSON'],
    ['a wrong checksum', (json: string) => json.replace('a'.repeat(64), 'xyz'), 'artifacts.db.sha256'],
    ['a negative size', (json: string) => json.replace('"size": 10', '"size": -1'), 'artifacts.db.size'],
    ['an unknown kind', (json: string) => json.replace('"kind": "daily"', '"kind": "hourly"'), 'kind'],
    ['a float money total', (json: string) => json.replace('"rowCount": "3"', '"rowCount": 3'), 'fingerprint.0.rowCount'],
  ])('refuses %s, naming the field', (_what, edit, field) => {
    const edited = edit(serializeManifest(manifest).toString('utf8'));
    expect(() => parseManifest(edited, 'prod/meta/x.manifest.json')).toThrow(ManifestError);
    expect(() => parseManifest(edited, 'prod/meta/x.manifest.json')).toThrow(field);
  });
});

describe('manifest: recipient keys of encrypted artifacts (key rotation)', () => {
  const keyId = '0123456789ABCDEF';
  const primaryFingerprint = 'F'.repeat(40);
  const encrypted: Manifest = {
    ...manifest,
    artifacts: { db: { ...manifest.artifacts.db!, encryption: 'openpgp', recipients: [{ keyId, primaryFingerprint }] } },
  };

  it('records them, and still reads a manifest written before they were recorded', () => {
    expect(parseManifest(serializeManifest(encrypted), 'm').artifacts.db?.recipients).toEqual([{ keyId, primaryFingerprint }]);
    const old = { ...encrypted, artifacts: { db: { ...encrypted.artifacts.db!, recipients: undefined } } };
    expect(parseManifest(JSON.stringify(old), 'old').artifacts.db?.recipients).toBeUndefined();
  });

  it('refuses a key id that is not 16 upper-case hex digits', () => {
    const edited = serializeManifest(encrypted).toString('utf8').replace(keyId, 'not-a-key-id');
    expect(() => parseManifest(edited, 'm')).toThrow('artifacts.db.recipients.0.keyId');
  });
});

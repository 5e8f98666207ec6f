import { describe, expect, it } from 'vitest';
import { artifactKey, backupIdFor, backupIdTime, isBackupId, manifestKey } from '../../src/layout.js';

describe('backup ids', () => {
  it('are UTC timestamps plus the kind, sortable as strings', () => {
    const id = backupIdFor('daily', new Date('2026-11-26T17:00:00.123Z'));
    expect(id).toBe('20261126T170000Z-daily');
    expect(isBackupId(id)).toBe(true);
    expect(backupIdTime(id).toISOString()).toBe('2026-11-26T17:00:00.000Z');
    const later = backupIdFor('critical', new Date('2026-11-26T23:00:00Z'));
    expect([later, id].sort()).toEqual([id, later]);
  });

  it.each(['20261126T170000Z-hourly', '20261126T170000-daily', '../20261126T170000Z-daily', ''])('rejects %j', (value) => {
    expect(isBackupId(value)).toBe(false);
  });
});

describe('keys (S14 layout)', () => {
  const layout = { env: 'prod', prefix: 'erp4' };
  it('puts each artifact under <env>/<artifact>/ and the manifest under <env>/meta/', () => {
    const id = '20261126T170000Z-daily';
    expect(artifactKey(layout, 'db', id, false)).toBe('prod/db/erp4-20261126T170000Z-daily.dump');
    expect(artifactKey(layout, 'db', id, true)).toBe('prod/db/erp4-20261126T170000Z-daily.dump.gpg');
    expect(artifactKey(layout, 'globals', id, false)).toBe('prod/globals/erp4-20261126T170000Z-daily.sql');
    expect(artifactKey(layout, 'assets', id, true)).toBe('prod/assets/erp4-20261126T170000Z-daily.tar.gpg');
    expect(manifestKey(layout, id)).toBe('prod/meta/erp4-20261126T170000Z-daily.manifest.json');
  });
});

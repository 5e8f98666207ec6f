import { describe, expect, it } from 'vitest';
import { objectLockDays, objectLockPolicy, objectLockRetainUntil } from '../../src/object-lock.js';

const gfs = objectLockPolicy({ kind: 'gfs' });
const id = '20261126T170000Z';

describe('object lock retention, from S3_RETENTION', () => {
  it('locks a GFS daily backup for as long as GFS may keep it (12 months of 31 days), manifest and artifacts alike', () => {
    expect(objectLockDays(gfs, `prod/db/erp4-${id}-daily.dump.gpg`)).toBe(372);
    expect(objectLockDays(gfs, `prod/meta/erp4-${id}-daily.manifest.json`)).toBe(372);
    expect(objectLockDays(gfs, `prod/db/erp4-${id}-weekly-full.dump`)).toBe(372);
    expect(objectLockDays(gfs, `prod/db/erp4-${id}-critical.dump`)).toBe(2);
  });

  it('locks what the policy keeps forever (manual) and objects outside the layout for the longest span', () => {
    expect(objectLockDays(gfs, `prod/db/erp4-${id}-manual.dump`)).toBe(372);
    expect(objectLockDays(gfs, `prod/meta/drills/${id}-daily/x.json`)).toBe(372);
    const days = objectLockPolicy({ kind: 'days', days: 30 });
    expect(objectLockDays(days, `prod/db/erp4-${id}-daily.dump`)).toBe(30);
    expect(objectLockDays(days, `prod/db/erp4-${id}-manual.dump`)).toBe(30);
  });

  it('counts from the put', () => {
    const now = new Date('2026-11-29T00:00:00Z');
    expect(objectLockRetainUntil(gfs, `prod/db/erp4-${id}-critical.dump`, now).toISOString()).toBe('2026-12-01T00:00:00.000Z');
  });
});

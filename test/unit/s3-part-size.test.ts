import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { partSizeFor } from '../../src/storage/s3.js';

const MiB = 1024 * 1024;

describe('partSizeFor', () => {
  it('keeps the configured part size while 10,000 parts hold the object', () => {
    expect(partSizeFor(0, 16 * MiB)).toBe(16 * MiB);
    expect(partSizeFor(10_000 * 16 * MiB, 16 * MiB)).toBe(16 * MiB);
  });

  it('grows the part size, in whole MiB, for a larger object', () => {
    expect(partSizeFor(10_000 * 16 * MiB + 1, 16 * MiB)).toBe(17 * MiB);
    // A 1 TiB dump: 105 MiB parts (10,000 x 104 MiB would be 2.4 GiB short).
    expect(partSizeFor(1024 ** 4, 16 * MiB)).toBe(105 * MiB);
  });

  it('refuses what S3 cannot hold (over 10,000 parts of 5 GiB), naming the size', () => {
    expect(() => partSizeFor(10_000 * 5 * 1024 * MiB + 1, 16 * MiB)).toThrow(/53687091200001 bytes exceed S3's limit/);
  });

  it('always fits the object in at most 10,000 parts of at least the configured size', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10_000 * 5 * 1024 * MiB }), fc.integer({ min: 5, max: 5120 }), (size, configuredMiB) => {
        const partSize = partSizeFor(size, configuredMiB * MiB);
        expect(partSize).toBeGreaterThanOrEqual(configuredMiB * MiB);
        expect(partSize % MiB).toBe(0);
        expect(Math.ceil(size / partSize)).toBeLessThanOrEqual(10_000);
      }),
    );
  });
});

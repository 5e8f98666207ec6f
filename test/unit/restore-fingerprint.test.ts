import { describe, expect, it } from 'vitest';
import type { FingerprintEntry } from '../../src/manifest.js';
import { compareFingerprints } from '../../src/restore/checks.js';

describe('compareFingerprints (S26: exact equality)', () => {
  const backup: FingerprintEntry[] = [
    { table: 'public.invoices', rowCount: '1000', sums: { amount: '123456.78' } },
    { table: 'public.customers', rowCount: '200', sums: {} },
  ];

  it('passes only when every row count and every sum is equal, digit for digit', () => {
    const restored: FingerprintEntry[] = [
      { table: 'public.customers', rowCount: '200', sums: {} },
      { table: 'public.invoices', rowCount: '1000', sums: { amount: '123456.780' } },
    ];
    expect(compareFingerprints(backup, restored)).toEqual([
      { kind: 'fingerprint', name: 'public.invoices', expected: 'rows 1000; sum(amount) 123456.78', actual: 'rows 1000; sum(amount) 123456.780', passed: false },
      { kind: 'fingerprint', name: 'public.customers', expected: 'rows 200', actual: 'rows 200', passed: true },
    ]);
  });

  it('fails a missing and an extra table', () => {
    const results = compareFingerprints(backup, [
      { table: 'public.invoices', rowCount: '1000', sums: { amount: '123456.78' } },
      { table: 'public.stray', rowCount: '1', sums: {} },
    ]);
    expect(results.map((r) => [r.name, r.actual, r.passed])).toEqual([
      ['public.invoices', 'rows 1000; sum(amount) 123456.78', true],
      ['public.customers', 'table missing', false],
      ['public.stray', 'rows 1', false],
    ]);
  });
});

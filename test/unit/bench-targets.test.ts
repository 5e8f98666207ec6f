import { describe, expect, it } from 'vitest';
import { capacityGb, formatCapacity, formatRatio, linearRate, medianOf, verdict } from '../../bench/targets.js';

describe('bench targets: verdicts', () => {
  it('meets a limit it equals (<=) and says by how much and what share a value over it misses', () => {
    expect(verdict(1.5, 1.5, 'x')).toBe('met');
    expect(verdict(1.2, 1.5, 'x')).toBe('met');
    expect(verdict(2.9, 1.5, 'x')).toBe('**missed** by 1.40x (93%)');
    expect(verdict(352, 300, ' MB')).toBe('**missed** by 52 MB (17%)');
  });

  it('misses a strict limit (< 1 s) it equals', () => {
    expect(verdict(1, 1, ' s', true)).toBe('**missed** by 0.00 s (0%)');
    expect(verdict(0.99, 1, ' s', true)).toBe('met');
  });

  it('never calls a value that was not measured met', () => {
    expect(verdict(Number.NaN, 1.1, 'x')).toBe('**not measured**');
    expect(verdict(medianOf([]) / 2, 1.1, 'x')).toBe('**not measured**');
  });

  it('formats ratios, and none against nothing', () => {
    expect(formatRatio(29.7, 10.4)).toBe('2.86x');
    expect(formatRatio(1, 0)).toBe('-');
  });

  it('takes the median of odd and even counts', () => {
    expect(medianOf([3, 1, 2])).toBe(2);
    expect(medianOf([4, 1, 3, 2])).toBe(2.5);
  });
});

describe('bench capacity: linear in database size', () => {
  it('splits a run into the fixed part (the empty run) and a per-GB part', () => {
    // 1 GB backed up in 36 s, the empty database in 1 s: 35 s per GB.
    expect(linearRate(36_000, 1_000, 1e9)).toEqual({ fixedMs: 1_000, msPerGb: 35_000 });
    // 5 GB in 101 s: 20 s per GB.
    expect(linearRate(101_000, 1_000, 5e9).msPerGb).toBe(20_000);
  });

  it('fits (window - fixed) / per-GB into a 4 h window', () => {
    const window = 4 * 3_600_000;
    expect(capacityGb({ fixedMs: 0, msPerGb: 36_000 }, window)).toBe(400);
    expect(capacityGb({ fixedMs: 3_600_000, msPerGb: 36_000 }, window)).toBe(300);
    expect(formatCapacity(capacityGb({ fixedMs: 1_000, msPerGb: 30_000 }, window))).toBe('479 GB');
  });

  it('says a run without size-dependent time cannot bound the size, and a fixed part over the window fits nothing', () => {
    expect(capacityGb({ fixedMs: 1_000, msPerGb: 0 }, 1e7)).toBe(Number.POSITIVE_INFINITY);
    expect(capacityGb({ fixedMs: 1_000, msPerGb: -5 }, 1e7)).toBe(Number.POSITIVE_INFINITY);
    expect(formatCapacity(Number.POSITIVE_INFINITY)).toMatch(/^not bounded by this run/);
    expect(capacityGb({ fixedMs: 2e7, msPerGb: 10 }, 1e7)).toBe(0);
  });
});

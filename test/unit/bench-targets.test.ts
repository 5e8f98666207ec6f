import { describe, expect, it } from 'vitest';
import { capacityLines, targetRows, type BenchResults } from '../../bench/report.js';
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

describe('bench report: the targets table is issue 16', () => {
  const sample = (wallMs: number, peakRssBytes = 0, treePeakRssBytes?: number) => ({ wallMs, cpuMs: 0, peakRssBytes, treePeakRssBytes });
  const results: BenchResults = {
    command: 'npm run bench',
    startedAt: '2026-11-29T22:00:00.000Z',
    machine: {},
    repetitions: 1,
    dataset: { databaseBytes: 1e9, rows: {}, assetFiles: 10, assetBytes: 5e8 },
    pipelines: {
      baselineA: { median: sample(54_800), runs: [] },
      floor: { median: sample(4_100), runs: [] },
      nightlyBackup: { median: sample(27_400, 250e6, 400e6), runs: [] },
      nightlyBackupLocalSftp: { median: sample(12_300), runs: [] },
      plainRestore: { median: sample(10_400), runs: [] },
      baselineB: { median: sample(40_000), runs: [] },
      restoreDrill: { median: sample(30_000, 370e6, 420e6), runs: [] },
    },
    sizes: { pgDumpDefaultBytes: 300e6, baselineStoredBytes: 0, oursDbBytes: 310e6, oursStoredBytes: 0 },
    restore: { plainJobs: 2, drillRestorePhaseMs: [10_000], drillRtoMs: [15_000], emptyDrillRtoMs: [1_000] },
    s3Overhead: { oursMs: [1_100, 1_000, 1_200], plainMs: [1_000, 1_000, 1_000] },
    emptyBackupWallMs: [900],
    workerRestingRssBytes: 200e6,
    restorable: {},
    profile: [],
    drillPhases: [],
    drillProfile: [],
    emptyProfile: [],
  };

  it('has one row per target of the issue, each computed from its own measurements', () => {
    const rows = targetRows(results).map((row) => [row.measure, row.measured, row.limit, row.verdict]);
    expect(rows).toEqual([
      ['drill RTO (its report) / plain pg_restore -j 2 of the decrypted local dump', '1.44x (15.00 s / 10.40 s)', '<= 1.5x', 'met'],
      ['drill RTO / baseline B', '0.38x (15.00 s / 40.00 s)', '<= 0.6x', 'met'],
      ['NightlyBackup to local + SFTP (OpenPGP) / floor', '3.00x (12.30 s / 4.10 s)', '<= 3x', 'met'],
      ['NightlyBackup to local + S3 + SFTP / baseline A', '0.50x (27.40 s / 54.80 s)', '<= 0.5x', 'met'],
      ['our S3 upload of the db artifact / plain lib-storage upload of the same bytes', '1.10x (1.10 s / 1.00 s, median of 3)', '<= 1.1x', 'met'],
      ['db artifact size / pg_dump -Fc default', '1.03x (310.0 MB / 300.0 MB)', '<= 1.1x', 'met'],
      ['worker peak RSS, backup (VmHWM)', '250.0 MB (process tree 400.0 MB); at rest 200.0 MB', '<= 300 MB', 'met'],
      ['worker peak RSS, drill (VmHWM)', '370.0 MB (process tree 420.0 MB)', '<= 300 MB', '**missed** by 70 MB (23%)'],
      ['NightlyBackup of an empty database, end to end', '0.90 s', '< 1 s', 'met'],
    ]);
  });

  it('states the capacity from the run and the empty database, both for the backup window and the RTO', () => {
    const text = capacityLines(results).join('\n');
    // Backup: 0.9 s fixed + 26.5 s per GB -> (14,400 - 0.9) / 26.5 = 543 GB.
    expect(text).toContain('0.90 s fixed + 26.50 s per GB: the largest database backed up within a 4 h window is 543 GB.');
    // Restore: 1 s fixed + 14 s per GB -> (14,400 - 1) / 14 = 1,028 GB.
    expect(text).toContain('1.00 s fixed + 14.00 s per GB: the largest database restored within the 4 h RTO (S9) is 1,028 GB.');
  });
});

import { cpus, release, totalmem } from 'node:os';
import type { Sample } from './measure.js';

/** Everything one benchmark run measured, as written to the JSON results and BENCHMARKS.md. */
export interface BenchResults {
  command: string;
  startedAt: string;
  machine: Record<string, string>;
  repetitions: number;
  dataset: { databaseBytes: number; rows: Record<string, number>; assetFiles: number; assetBytes: number };
  /** Median of the repetitions, and every repetition. */
  pipelines: Record<PipelineName, { median: Sample; runs: Sample[] }>;
  sizes: { pgDumpDefaultBytes: number; baselineStoredBytes: number; oursDbBytes: number; oursStoredBytes: number };
  restore: { plainJobs: number; drillRestorePhaseMs: number[]; drillRtoMs: number[] };
  emptyBackupWallMs: number[];
  /** The worker's RSS at rest, before the first backup (what the peak grows from). */
  workerRestingRssBytes: number;
  /** Per pipeline: how its output was shown to be restorable. */
  restorable: Record<string, string>;
  /** Where the product's time went (from the workflow history), for the last repetition. */
  profile: string[];
}

export type PipelineName = 'baselineA' | 'floor' | 'nightlyBackup' | 'plainRestore' | 'restoreDrill';

const MB = 1e6;

export function describeMachine(versions: Record<string, string>): Record<string, string> {
  return {
    cpu: `${cpus()[0]?.model ?? 'unknown'} (${cpus().length} logical cores)`,
    ram: `${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    kernel: `Linux ${release()}`,
    node: process.version,
    ...versions,
  };
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const mb = (bytes: number) => `${(bytes / MB).toFixed(1)} MB`;
const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}x`;
const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const half = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[half]! : (sorted[half - 1]! + sorted[half]!) / 2;
};

function verdict(value: number, limit: number, higherIsWorse = true): string {
  const met = higherIsWorse ? value <= limit : value >= limit;
  return met ? 'met' : `**missed** by ${(((value - limit) / limit) * 100).toFixed(0)}%`;
}

/** The Markdown section for one run: machine, command, table, ratios against the targets. */
export function renderMarkdown(r: BenchResults): string {
  const p = r.pipelines;
  const inputBytes = r.dataset.databaseBytes + r.dataset.assetBytes;
  const row = (name: string, s: Sample, output: string, throughputBytes: number) =>
    `| ${name} | ${seconds(s.wallMs)} | ${seconds(s.cpuMs)} | ${mb(s.peakRssBytes)} | ${(throughputBytes / MB / (s.wallMs / 1000)).toFixed(1)} MB/s | ${output} |`;
  const ours = p.nightlyBackup.median;
  const restorePhase = median(r.restore.drillRestorePhaseMs);
  const emptyWall = median(r.emptyBackupWallMs);
  const lines = [
    `### ${(r.dataset.databaseBytes / 1e9).toFixed(2)} GB database + ${mb(r.dataset.assetBytes)} of PDF files (${r.startedAt})`,
    '',
    `Command: \`${r.command}\``,
    '',
    `Machine: ${Object.entries(r.machine).map(([k, v]) => `${k} ${v}`).join('; ')}.`,
    '',
    `Dataset: database ${mb(r.dataset.databaseBytes)} on disk (${Object.entries(r.dataset.rows).map(([t, n]) => `${t} ${n.toLocaleString('en-US')}`).join(', ')}); ` +
      `${r.dataset.assetFiles.toLocaleString('en-US')} PDF-like files, ${mb(r.dataset.assetBytes)}. Median of ${r.repetitions} repetition(s).`,
    '',
    '| Pipeline | Wall | CPU (user+sys) | Peak RSS | Throughput (input) | Output |',
    '|---|---|---|---|---|---|',
    row('Baseline A: pg_dump -Fc, pg_dumpall, tar, gpg, S3 upload, scp (one after another)', p.baselineA.median, `${mb(r.sizes.baselineStoredBytes)} per repository`, inputBytes),
    row('Floor: pg_dump -Fc -Z0 --no-sync -f /dev/null', p.floor.median, '-', r.dataset.databaseBytes),
    row('**NightlyBackup** (Temporal, OpenPGP, local + S3 + SFTP; worker process)', ours, `${mb(r.sizes.oursStoredBytes)} per repository (db ${mb(r.sizes.oursDbBytes)})`, inputBytes),
    row(`Plain restore: createdb + pg_restore -j ${r.restore.plainJobs} of the same dump`, p.plainRestore.median, '-', r.sizes.oursDbBytes),
    row('**RestoreDrill** from S3 (download, verify, decrypt, restore, checks, report; worker process)', p.restoreDrill.median, `restore phase ${seconds(restorePhase)}`, r.sizes.oursDbBytes),
    '',
    'CPU and peak RSS: GNU time for the plain pipelines (peak = the largest single process); for the product, the worker',
    "process (`node dist/src/cli.js worker`) from /proc: its CPU plus that of the pg_dump/pg_dumpall it ran, and its own VmHWM",
    '(reset before each repetition). The PostgreSQL server\'s CPU (the same work in every pipeline) is in neither.',
    '',
    '| Target | Measured | Limit | Verdict |',
    '|---|---|---|---|',
    `| NightlyBackup wall / baseline A | ${ratio(ours.wallMs, p.baselineA.median.wallMs)} | <= 0.8x | ${verdict(ours.wallMs / p.baselineA.median.wallMs, 0.8)} |`,
    `| NightlyBackup wall / floor | ${ratio(ours.wallMs, p.floor.median.wallMs)} | <= 1.5x | ${verdict(ours.wallMs / p.floor.median.wallMs, 1.5)} |`,
    `| db artifact size / pg_dump -Fc default | ${ratio(r.sizes.oursDbBytes, r.sizes.pgDumpDefaultBytes)} (${mb(r.sizes.oursDbBytes)} / ${mb(r.sizes.pgDumpDefaultBytes)}) | <= 1.1x | ${verdict(r.sizes.oursDbBytes / r.sizes.pgDumpDefaultBytes, 1.1)} |`,
    `| worker peak RSS (backup) | ${mb(ours.peakRssBytes)} (at rest: ${mb(r.workerRestingRssBytes)}) | <= 300 MB | ${verdict(ours.peakRssBytes / MB, 300)} |`,
    `| worker peak RSS (drill) | ${mb(p.restoreDrill.median.peakRssBytes)} | (flat) | - |`,
    `| RestoreDrill restore phase / plain pg_restore | ${ratio(restorePhase, p.plainRestore.median.wallMs)} | <= 1.2x | ${verdict(restorePhase / p.plainRestore.median.wallMs, 1.2)} |`,
    `| NightlyBackup of an empty database, end to end | ${seconds(emptyWall)} | < 3 s | ${verdict(emptyWall / 1000, 3)} |`,
    '',
    'Every pipeline\'s result was checked to be restorable:',
    '',
    ...Object.entries(r.restorable).map(([name, how]) => `- ${name}: ${how}`),
    '',
    'Where the NightlyBackup\'s time went (activities of the last repetition, from the workflow history):',
    '',
    ...r.profile.map((line) => `- ${line}`),
    '',
  ];
  return lines.join('\n');
}

import { cpus, release, totalmem } from 'node:os';
import type { Sample } from './measure.js';
import { capacityGb, formatCapacity, formatRatio, linearRate, medianOf, verdict, type TargetRow } from './targets.js';

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
  /** drillRtoMs: the RTO each drill's report measured (every phase but the approval wait and the bookkeeping after it). */
  restore: { plainJobs: number; drillRestorePhaseMs: number[]; drillRtoMs: number[]; emptyDrillRtoMs: number[] };
  /** The product's S3 put and a plain lib-storage upload of the db artifact, back to back, every measurement. */
  s3Overhead: { oursMs: number[]; plainMs: number[] };
  emptyBackupWallMs: number[];
  /** The worker's RSS at rest, before the first backup (what the peak grows from). */
  workerRestingRssBytes: number;
  /** Per pipeline: how its output was shown to be restorable. */
  restorable: Record<string, string>;
  /** Where the product's time went (from the workflow history), for the last repetition. */
  profile: string[];
  /** The last drill's phases as its report measured them, and its activities from the workflow history. */
  drillPhases: Array<{ phase: string; durationMs: number }>;
  drillProfile: string[];
  /** The empty-database NightlyBackup's activities (last repetition): the fixed cost of a run. */
  emptyProfile: string[];
}

export type PipelineName = 'baselineA' | 'floor' | 'nightlyBackup' | 'nightlyBackupLocalSftp' | 'plainRestore' | 'baselineB' | 'restoreDrill';

/** The backup window and the RTO (S9, normal data) the capacity statement is computed for. */
const WINDOW_MS = 4 * 3_600_000;

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

/** Issue 16's targets, each with its measured value and verdict. */
export function targetRows(r: BenchResults): TargetRow[] {
  const p = r.pipelines;
  const rto = medianOf(r.restore.drillRtoMs);
  const plainRestore = p.plainRestore.median.wallMs;
  const ours = p.nightlyBackup.median;
  const localSftp = p.nightlyBackupLocalSftp.median;
  const oursPut = medianOf(r.s3Overhead.oursMs);
  const plainPut = medianOf(r.s3Overhead.plainMs);
  const emptyWall = medianOf(r.emptyBackupWallMs);
  const drill = p.restoreDrill.median;
  const rss = (s: Sample) => `${mb(s.peakRssBytes)} (process tree ${s.treePeakRssBytes === undefined ? '-' : mb(s.treePeakRssBytes)})`;
  const ratioRow = (measure: string, a: number, b: number, limit: number, detail: string): TargetRow => ({
    measure,
    measured: `${formatRatio(a, b)} (${detail})`,
    limit: `<= ${limit}x`,
    verdict: verdict(a / b, limit, 'x'),
  });
  return [
    ratioRow(`drill RTO (its report) / plain pg_restore -j ${r.restore.plainJobs} of the decrypted local dump`, rto, plainRestore, 1.5, `${seconds(rto)} / ${seconds(plainRestore)}`),
    ratioRow('drill RTO / baseline B', rto, p.baselineB.median.wallMs, 0.6, `${seconds(rto)} / ${seconds(p.baselineB.median.wallMs)}`),
    ratioRow('NightlyBackup to local + SFTP (OpenPGP) / floor', localSftp.wallMs, p.floor.median.wallMs, 3, `${seconds(localSftp.wallMs)} / ${seconds(p.floor.median.wallMs)}`),
    ratioRow('NightlyBackup to local + S3 + SFTP / baseline A', ours.wallMs, p.baselineA.median.wallMs, 0.5, `${seconds(ours.wallMs)} / ${seconds(p.baselineA.median.wallMs)}`),
    ratioRow('our S3 upload of the db artifact / plain lib-storage upload of the same bytes', oursPut, plainPut, 1.1, `${seconds(oursPut)} / ${seconds(plainPut)}, median of ${r.s3Overhead.oursMs.length}`),
    ratioRow('db artifact size / pg_dump -Fc default', r.sizes.oursDbBytes, r.sizes.pgDumpDefaultBytes, 1.1, `${mb(r.sizes.oursDbBytes)} / ${mb(r.sizes.pgDumpDefaultBytes)}`),
    { measure: 'worker peak RSS, backup (VmHWM)', measured: `${rss(ours)}; at rest ${mb(r.workerRestingRssBytes)}`, limit: '<= 300 MB', verdict: verdict(ours.peakRssBytes / MB, 300, ' MB') },
    { measure: 'worker peak RSS, drill (VmHWM)', measured: rss(drill), limit: '<= 300 MB', verdict: verdict(drill.peakRssBytes / MB, 300, ' MB') },
    { measure: 'NightlyBackup of an empty database, end to end', measured: seconds(emptyWall), limit: '< 1 s', verdict: verdict(emptyWall / 1000, 1, ' s', true) },
  ];
}

/**
 * S9's capacity at this run's rates: time = fixed + per-GB x database size, the fixed part
 * being the empty database's run (backup wall; drill RTO), the per-GB part the rest of this
 * run's time over its database size (the PDF files growing in the same proportion).
 */
export function capacityLines(r: BenchResults): string[] {
  const gb = r.dataset.databaseBytes / 1e9;
  const backup = linearRate(r.pipelines.nightlyBackup.median.wallMs, medianOf(r.emptyBackupWallMs), r.dataset.databaseBytes);
  const restore = linearRate(medianOf(r.restore.drillRtoMs), medianOf(r.restore.emptyDrillRtoMs), r.dataset.databaseBytes);
  const rate = (rate: ReturnType<typeof linearRate>) => `${seconds(rate.fixedMs)} fixed + ${seconds(rate.msPerGb)} per GB`;
  return [
    `Capacity at this run's rates (linear in database size: this run's time minus the empty database's is the per-GB part, ` +
      `measured at ${gb.toFixed(2)} GB with ${mb((r.dataset.assetBytes / gb) || 0)} of PDF files per GB; the empty database's time is the fixed part):`,
    '',
    `- NightlyBackup (local + S3 + SFTP), ${rate(backup)}: the largest database backed up within a 4 h window is ${formatCapacity(capacityGb(backup, WINDOW_MS))}.`,
    `- RestoreDrill RTO from S3, ${rate(restore)}: the largest database restored within the 4 h RTO (S9) is ${formatCapacity(capacityGb(restore, WINDOW_MS))}.`,
  ];
}

/** The Markdown section for one run: machine, command, table, ratios against the targets. */
export function renderMarkdown(r: BenchResults): string {
  const p = r.pipelines;
  const inputBytes = r.dataset.databaseBytes + r.dataset.assetBytes;
  const rss = (s: Sample) => (s.treePeakRssBytes === undefined ? mb(s.peakRssBytes) : `${mb(s.peakRssBytes)} (tree ${mb(s.treePeakRssBytes)})`);
  // The whole machine's CPU over the run, as a share of all its cores: ~100% = CPU-bound.
  const busy = (s: Sample) => (s.machineBusyMs === undefined ? '-' : `${seconds(s.machineBusyMs)} (${Math.round((100 * s.machineBusyMs) / (s.wallMs * cpus().length))}%)`);
  const row = (name: string, s: Sample, output: string, throughputBytes: number) =>
    `| ${name} | ${seconds(s.wallMs)} | ${seconds(s.cpuMs)} | ${busy(s)} | ${rss(s)} | ${(throughputBytes / MB / (s.wallMs / 1000)).toFixed(1)} MB/s | ${output} |`;
  const ours = p.nightlyBackup.median;
  const restorePhase = medianOf(r.restore.drillRestorePhaseMs);
  const rto = medianOf(r.restore.drillRtoMs);
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
    '| Pipeline | Wall | CPU (user+sys) | Machine CPU busy | Peak RSS | Throughput (input) | Output |',
    '|---|---|---|---|---|---|---|',
    row('Baseline A: pg_dump -Fc, pg_dumpall, tar, gpg, S3 upload, scp (one after another)', p.baselineA.median, `${mb(r.sizes.baselineStoredBytes)} per repository`, inputBytes),
    row('Floor: pg_dump -Fc -Z0 --no-sync -f /dev/null', p.floor.median, '-', r.dataset.databaseBytes),
    row('**NightlyBackup** (Temporal, OpenPGP, local + S3 + SFTP; worker process)', ours, `${mb(r.sizes.oursStoredBytes)} per repository (db ${mb(r.sizes.oursDbBytes)})`, inputBytes),
    row('**NightlyBackup** to local + SFTP only (OpenPGP, no S3; a third worker)', p.nightlyBackupLocalSftp.median, '-', inputBytes),
    row(`Plain restore: createdb + pg_restore -j ${r.restore.plainJobs} of the same dump (decrypted beforehand, untimed)`, p.plainRestore.median, '-', r.sizes.oursDbBytes),
    row(`Baseline B: S3 download of db + assets, gpg --decrypt of both, createdb, pg_restore -j ${r.restore.plainJobs}, tar -x (one after another)`, p.baselineB.median, '-', inputBytes),
    row('**RestoreDrill** from S3 (download, verify, decrypt, restore, checks, report; worker process)', p.restoreDrill.median, `RTO ${seconds(rto)}, restore phase ${seconds(restorePhase)}`, inputBytes),
    '',
    'CPU and peak RSS: GNU time for the plain pipelines (peak = the largest single process); for the product, the worker',
    "process (`node dist/src/cli.js worker`) from /proc: its CPU plus that of the children it reaped (pg_dump, pg_restore...),",
    'its own VmHWM (reset before each repetition) and, as "tree", the largest sum of the RSS of the worker and all its',
    'descendants, sampled every 100 ms. The PostgreSQL server\'s CPU (the same work in every pipeline) is in neither.',
    `Machine CPU busy: every process\'s CPU time during the run (/proc/stat: PostgreSQL, moto, sshd and the Temporal server too), and its share of wall x ${cpus().length} cores.`,
    '',
    '| Target | Measured | Limit | Verdict |',
    '|---|---|---|---|',
    ...targetRows(r).map((t) => `| ${t.measure} | ${t.measured} | ${t.limit} | ${t.verdict} |`),
    '',
    `S3 overhead, every measurement (alternating order, db artifact of ${mb(r.sizes.oursDbBytes)}): ours ${r.s3Overhead.oursMs.map(seconds).join(', ')}; ` +
      `plain lib-storage ${r.s3Overhead.plainMs.map(seconds).join(', ')}.`,
    '',
    ...capacityLines(r),
    '',
    'Every pipeline\'s result was checked to be restorable:',
    '',
    ...Object.entries(r.restorable).map(([name, how]) => `- ${name}: ${how}`),
    '',
    'Where the NightlyBackup\'s time went (activities of the last repetition, from the workflow history):',
    '',
    ...r.profile.map((line) => `- ${line}`),
    '',
    'Where the RestoreDrill\'s time went (last repetition): the phases of its report (the RTO is their sum without ' +
      'awaiting-approval, reporting and cleaning-up), then its activities from the workflow history:',
    '',
    ...r.drillPhases.map((phase) => `- phase ${phase.phase}: ${seconds(phase.durationMs)}`),
    ...r.drillProfile.map((line) => `- ${line}`),
    '',
    'Where the empty-database NightlyBackup\'s time went (last repetition; the fixed cost of every run):',
    '',
    ...r.emptyProfile.map((line) => `- ${line}`),
    '',
  ];
  return lines.join('\n');
}

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCommand } from '../src/dev/processes.js';
import { sampleTreePeak } from './process-tree.js';
import { medianOf } from './targets.js';

/** One measured run: wall and CPU time (user + system, children included) and peak RSS. */
export interface Sample {
  wallMs: number;
  cpuMs: number;
  peakRssBytes: number;
  /** For the product: the largest summed RSS of the worker and its children (pg_dump, pg_restore...), sampled from /proc. */
  treePeakRssBytes?: number;
  /**
   * CPU time of the WHOLE machine while it ran (/proc/stat: every process, the PostgreSQL server,
   * moto, sshd, the Temporal server included): near wall x cores means the run was CPU-bound.
   */
  machineBusyMs?: number;
}

/** Non-idle CPU time of all cores since boot (/proc/stat's first line: user nice system idle iowait irq softirq steal). */
export async function machineBusyMs(): Promise<number> {
  const [user, nice, system, , , irq, softirq, steal] = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return ((user! + nice! + system! + irq! + softirq! + (steal ?? 0)) * 1000) / CLOCK_TICKS;
}

const GNU_TIME = '/usr/bin/time';

/**
 * GNU time reports the CPU time and peak RSS of a whole shell pipeline (every process it
 * waited for). Installed from Debian when missing and we are root; otherwise the error says how.
 */
export async function ensureGnuTime(): Promise<void> {
  if (existsSync(GNU_TIME)) return;
  if (process.getuid?.() === 0) {
    const install = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'time'], { stdio: 'inherit' });
    if (install.status === 0 && existsSync(GNU_TIME)) return;
  }
  throw new Error(`${GNU_TIME} is missing: install it with \`apt-get install time\` (the benchmark measures the plain tools with it)`);
}

/** Runs `script` with bash under GNU time; fails with its stderr when it fails. */
export async function timeShell(script: string, env: NodeJS.ProcessEnv): Promise<Sample> {
  const dir = await mkdtemp(join(tmpdir(), 'erp4-bench-time-'));
  const report = join(dir, 'time.txt');
  const scriptPath = join(dir, 'script.sh');
  await writeFile(scriptPath, `set -euo pipefail\n${script}\n`);
  try {
    const busyBefore = await machineBusyMs();
    await runCommand(GNU_TIME, ['-f', '%e %U %S %M', '-o', report, 'bash', scriptPath], { env });
    const machine = (await machineBusyMs()) - busyBefore;
    const [wall, user, system, maxRssKb] = (await readFile(report, 'utf8')).trim().split('\n').pop()!.split(' ').map(Number);
    return { wallMs: wall! * 1000, cpuMs: (user! + system!) * 1000, peakRssBytes: maxRssKb! * 1024, machineBusyMs: machine };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** utime + stime + cutime + cstime of a live process (its own CPU and that of the children it reaped). */
async function cpuMsOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces; the fields after its closing parenthesis are fixed.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = [11, 12, 13, 14].reduce((sum, index) => sum + Number(fields[index]), 0);
  return (ticks * 1000) / CLOCK_TICKS;
}

async function statusBytes(pid: number, field: 'VmHWM' | 'VmRSS'): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1];
  if (kb === undefined) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(kb) * 1024;
}

/** The resident set size of a live process now (e.g. a worker at rest). */
export function residentBytes(pid: number): Promise<number> {
  return statusBytes(pid, 'VmRSS');
}

/**
 * Measures work done by a long-running process (the worker) while `work` runs: the CPU time
 * it and its reaped children (pg_dump, pg_dumpall) used, and its peak RSS, reset before the
 * run (clear_refs 5 resets VmHWM) so each repetition gets its own peak; and the peak of the
 * whole process tree (worker + children), sampled every 100 ms.
 */
export async function measureProcess<T>(pid: number, work: () => Promise<T>): Promise<{ sample: Sample; result: T }> {
  await writeFile(`/proc/${pid}/clear_refs`, '5');
  const cpuBefore = await cpuMsOf(pid);
  const busyBefore = await machineBusyMs();
  const tree = sampleTreePeak(pid);
  const started = performance.now();
  let result: T;
  try {
    result = await work();
  } catch (error) {
    await tree.stop();
    throw error;
  }
  const wallMs = performance.now() - started;
  const machine = (await machineBusyMs()) - busyBefore;
  // As sampled: 100 ms apart, it can miss a short peak that the worker's own VmHWM holds (then it is below VmHWM).
  const treePeakRssBytes = await tree.stop();
  const sample = { wallMs, cpuMs: (await cpuMsOf(pid)) - cpuBefore, peakRssBytes: await statusBytes(pid, 'VmHWM'), treePeakRssBytes, machineBusyMs: machine };
  return { sample, result };
}

/** The median of each measure over repetitions (each measure on its own). */
export function median(samples: readonly Sample[]): Sample {
  const mid = medianOf;
  return {
    wallMs: mid(samples.map((s) => s.wallMs)),
    cpuMs: mid(samples.map((s) => s.cpuMs)),
    peakRssBytes: mid(samples.map((s) => s.peakRssBytes)),
    ...(samples.every((s) => s.treePeakRssBytes !== undefined) && samples.length > 0
      ? { treePeakRssBytes: mid(samples.map((s) => s.treePeakRssBytes!)) }
      : {}),
    ...(samples.every((s) => s.machineBusyMs !== undefined) && samples.length > 0 ? { machineBusyMs: mid(samples.map((s) => s.machineBusyMs!)) } : {}),
  };
}

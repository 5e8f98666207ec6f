import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Shared by the reliability suite: how many trials to run, a reproducible source of random
 * moments, and the record of each fault's outcome that docs/RELIABILITY.md is made from.
 *
 * `npm test` runs the CI-sized suite (few trials, results to a temporary directory);
 * `npm run test:chaos` sets CHAOS=1 (many trials) and RELIABILITY_RESULTS_DIR, then
 * scripts/reliability-table.mjs turns the results into the table.
 */
export const CHAOS = process.env.CHAOS === '1';

/** Trials of one fault: `ci` in `npm test`, `chaos` under CHAOS=1; CHAOS_TRIALS overrides both. */
export function trialCount(sizes: { ci: number; chaos: number }): number {
  const override = Number(process.env.CHAOS_TRIALS);
  if (Number.isInteger(override) && override > 0) return override;
  return CHAOS ? sizes.chaos : sizes.ci;
}

/** The seed of this run's random moments: CHAOS_SEED reproduces a run, else a fresh one (printed in the results). */
export const CHAOS_SEED = Number(process.env.CHAOS_SEED) || Math.floor(Math.random() * 2 ** 31);

/** mulberry32: a small seeded PRNG, so a failing trial can be replayed with CHAOS_SEED. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One row of docs/RELIABILITY.md. */
export interface FaultResult {
  /** Stable identifier; also the results file name and the table's sort key. */
  id: string;
  fault: string;
  trials: number;
  /** Trials that ended as the fault's row promises (a complete verified backup, or a clear refusal). */
  survived: number;
  /** Trials that ended with a lost or corrupt backup visible to readers: must be 0. */
  dataLost: number;
  /** What the trials saw: where kills landed, which faults the proxy injected, messages. */
  notes: string;
  /** The test file that reproduces it. */
  test: string;
}

export const RESULTS_DIR = process.env.RELIABILITY_RESULTS_DIR ?? join(tmpdir(), 'erp4-reliability-results');

/** Writes one fault's outcome (called also when trials failed, so the table shows the failure). */
export function recordResult(result: FaultResult): void {
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(join(RESULTS_DIR, `${result.id}.json`), `${JSON.stringify({ ...result, seed: CHAOS_SEED, chaos: CHAOS }, null, 2)}\n`);
}

/** Counts of labels, as `a 3, b 1`, for the notes column. */
export function tally(labels: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const label of labels) counts.set(label, (counts.get(label) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1]).map(([label, n]) => `${label} ${n}`).join(', ');
}

export async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 60_000, intervalMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

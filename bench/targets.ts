/**
 * The benchmark's targets (issue 16's table) and the arithmetic behind its verdicts and its
 * capacity statement: pure functions, so the report's numbers are unit-tested
 * (test/unit/bench-targets.test.ts) apart from the services that produce them.
 */

/** One row of the targets table: a measured value against its limit. */
export interface TargetRow {
  measure: string;
  /** The measured value as shown (a ratio, MB, seconds), with what it was computed from. */
  measured: string;
  limit: string;
  verdict: string;
}

/**
 * `met`, or `**missed** by <how much> (<percent>)` for a value over its limit. `strict`: the
 * limit itself misses (`< 1 s`); otherwise it meets (`<= 1.5x`). NaN (nothing measured) is
 * never met.
 */
export function verdict(value: number, limit: number, unit: string, strict = false): string {
  if (Number.isNaN(value)) return '**not measured**';
  const met = strict ? value < limit : value <= limit;
  if (met) return 'met';
  const over = value - limit;
  return `**missed** by ${formatNumber(over)}${unit} (${((over / limit) * 100).toFixed(0)}%)`;
}

function formatNumber(value: number): string {
  return Math.abs(value) >= 10 ? value.toFixed(0) : value.toFixed(2);
}

/** `a / b` as `1.23x`; `-` when b is not a positive number. */
export function formatRatio(a: number, b: number): string {
  return b > 0 ? `${(a / b).toFixed(2)}x` : '-';
}

export function medianOf(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const half = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[half]! : (sorted[half - 1]! + sorted[half]!) / 2;
}

/**
 * A linear model of a pipeline's time in the size of what it processes, from one run at one
 * size and a run of the same pipeline on an empty database: time = fixedMs + msPerGb * GB.
 */
export interface LinearRate {
  /** The time spent whatever the size (Temporal round trips, process starts, checks): the empty database's run. */
  fixedMs: number;
  /** (the run's time - fixedMs) / the run's size in GB (10^9 bytes). */
  msPerGb: number;
}

export function linearRate(measuredMs: number, fixedMs: number, sizeBytes: number): LinearRate {
  return { fixedMs, msPerGb: (measuredMs - fixedMs) / (sizeBytes / 1e9) };
}

/**
 * The largest size (GB) that fits `windowMs` under `rate`: (window - fixed) / per-GB. Infinity
 * when the run measured no size-dependent time (too small a dataset to tell), 0 when the fixed
 * part alone exceeds the window.
 */
export function capacityGb(rate: LinearRate, windowMs: number): number {
  if (rate.fixedMs >= windowMs) return 0;
  if (!(rate.msPerGb > 0)) return Number.POSITIVE_INFINITY;
  return (windowMs - rate.fixedMs) / rate.msPerGb;
}

/** `1,234 GB`, or a sentence for a size the run could not bound. */
export function formatCapacity(gb: number): string {
  if (gb === Number.POSITIVE_INFINITY) return 'not bounded by this run (no size-dependent time measured; the dataset is too small)';
  return `${Math.floor(gb).toLocaleString('en-US')} GB`;
}

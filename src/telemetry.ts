import { DefaultLogger, makeTelemetryFilterString, Runtime, type LogEntry } from '@temporalio/worker';
import type { Config, LogFormat } from './config.js';

/**
 * Temporal's Runtime for this process: the worker's log (LOG_LEVEL, LOG_FORMAT) and, with
 * METRICS_BIND_ADDRESS, its Prometheus endpoint `/metrics` — Temporal's own SDK metrics (task
 * latencies, failures, schedule-to-start, ...) and ours (workflows/outcome-metrics.ts, the
 * Freshness workflow), every series tagged with `env` so several environments can feed one
 * Prometheus. The SDK's messages, the core's (forwarded from Rust) and ours share one logger.
 *
 * The Runtime is a per-process singleton: this must run before the first connection, once.
 */
export function installTelemetry(config: Pick<Config, 'env' | 'log' | 'metrics'>, write: (line: string) => void = (line) => process.stderr.write(line)): void {
  const { level, format } = config.log;
  Runtime.install({
    logger: new DefaultLogger(level, (entry) => write(formatLogEntry(entry, format) + '\n')),
    telemetryOptions: {
      logging: { filter: makeTelemetryFilterString({ core: level }), forward: {} },
      ...(config.metrics.bindAddress
        ? { metrics: { prometheus: { bindAddress: config.metrics.bindAddress, useSecondsForDurations: true }, globalTags: { env: config.env } } }
        : {}),
    },
  });
}

/**
 * Writes one log line at once, in LOG_FORMAT, bypassing the Runtime's logger: for the last words
 * before `process.exit` (a second SIGTERM), which a buffered logger would lose.
 */
export function logNow(config: Pick<Config, 'log'>, level: LogEntry['level'], message: string): void {
  process.stderr.write(formatLogEntry({ level, message, timestampNanos: BigInt(Date.now()) * 1_000_000n }, config.log.format) + '\n');
}

/** `text`: `<ISO time> <LEVEL> <message> <meta as JSON>`; `json`: one object per line with time, level, message and the meta's fields. */
export function formatLogEntry(entry: LogEntry, format: LogFormat): string {
  const time = new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString();
  if (format === 'json') return JSON.stringify({ time, level: entry.level, message: entry.message, ...entry.meta }, jsonSafe);
  const meta = entry.meta && Object.keys(entry.meta).length > 0 ? ` ${JSON.stringify(entry.meta, jsonSafe)}` : '';
  return `${time} ${entry.level} ${entry.message}${meta}`;
}

/** Log metadata may hold errors and bigints, which JSON.stringify drops or refuses. */
function jsonSafe(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Error) return { name: value.name, message: value.message, stack: value.stack };
  return value;
}

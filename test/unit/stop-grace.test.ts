import fs from 'node:fs';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config.js';
import { CANCELLATION_MARGIN_MS } from '../../src/temporal/graceful-shutdown.js';

// A stop that kills the worker before WORKER_SHUTDOWN_GRACE (plus the time cancelled activities
// get to stop) cuts off the work in flight that the grace exists to let finish.
const root = path.resolve(import.meta.dirname, '../..');

/** A compose duration (`11m`, `1m30s`, `90s`, `1h`); compose's default is 10 s. */
function composeDurationMs(text: string | undefined): number {
  if (text === undefined) return 10_000;
  const match = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(text);
  if (!match || text === '') throw new Error(`unreadable stop_grace_period ${text}`);
  return ((Number(match[1] ?? 0) * 60 + Number(match[2] ?? 0)) * 60 + Number(match[3] ?? 0)) * 1000;
}

/** A systemd time span (`660`, `11min`, `10min 30s`, `infinity`); systemd's default is 90 s. */
function systemdSpanMs(text: string | undefined): number {
  if (text === undefined) return 90_000;
  if (text === 'infinity') return Number.POSITIVE_INFINITY;
  const units: Record<string, number> = { h: 3600, hr: 3600, hour: 3600, hours: 3600, min: 60, m: 60, minute: 60, minutes: 60, s: 1, sec: 1, second: 1, seconds: 1, '': 1 };
  let seconds = 0;
  for (const part of text.trim().split(/\s+/)) {
    const match = /^(\d+)([a-z]*)$/.exec(part);
    if (!match || units[match[2]!] === undefined) throw new Error(`unreadable time span ${text}`);
    seconds += Number(match[1]) * units[match[2]!]!;
  }
  return seconds * 1000;
}

/** The grace a worker started with `env` gets (WORKER_SHUTDOWN_GRACE, else the default). */
const graceMs = (env: Record<string, string>) => loadConfig({ DB_NAME: 'erp4', ...env }).worker.shutdownGraceMs;

describe('stopping the worker waits for WORKER_SHUTDOWN_GRACE', () => {
  it("docker-compose.temporal.yml: the worker's stop_grace_period covers the grace and the cancellation margin", () => {
    const compose = parse(fs.readFileSync(path.join(root, 'docker-compose.temporal.yml'), 'utf8'), { merge: true }) as {
      services: { worker: { stop_grace_period?: string; environment?: Record<string, string> } };
    };
    const worker = compose.services.worker;
    // The worker's environment: .env (started from .env.example), then the compose file's own.
    const env = { ...parseEnv(fs.readFileSync(path.join(root, '.env.example'), 'utf8')), ...worker.environment } as Record<string, string>;
    const grace = graceMs(env.WORKER_SHUTDOWN_GRACE ? { WORKER_SHUTDOWN_GRACE: env.WORKER_SHUTDOWN_GRACE } : {});
    expect(grace).toBe(10 * 60_000);
    expect(composeDurationMs(worker.stop_grace_period)).toBeGreaterThanOrEqual(grace + CANCELLATION_MARGIN_MS);
  });

  const unitsDir = path.join(root, 'deploy', 'systemd');
  const units = fs.existsSync(unitsDir) ? fs.readdirSync(unitsDir).filter((name) => name.endsWith('.service')) : [];
  // One check per unit file that exists (none today: then there is nothing to compare).
  for (const name of units) {
    it(`systemd unit ${name}: TimeoutStopSec covers the grace, SIGTERM reaches the worker alone`, () => {
      const text = fs.readFileSync(path.join(unitsDir, name), 'utf8');
      const setting = (key: string) => [...text.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].at(-1)?.[1]?.trim();
      const graceSetting = /^Environment=.*\bWORKER_SHUTDOWN_GRACE=(\S+)/m.exec(text)?.[1];
      const grace = graceMs(graceSetting ? { WORKER_SHUTDOWN_GRACE: graceSetting.replace(/"$/, '') } : {});
      expect(systemdSpanMs(setting('TimeoutStopSec'))).toBeGreaterThanOrEqual(grace + CANCELLATION_MARGIN_MS);
      // KillMode=control-group (the default) would SIGTERM pg_dump and gpg with the worker: the dump in flight dies.
      expect(setting('KillMode')).toBe('mixed');
    });
  }
});

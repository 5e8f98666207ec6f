import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Freshness, NightlyBackup } from '../../workflows/index.js';
import { METRICS } from '../../workflows/outcome-metrics.js';
import { freePort } from '../../src/dev/processes.js';
import { productEnv } from '../helpers/product.js';
import { services } from '../helpers/services.js';
import { startWorkerProcess, type WorkerProcess } from '../helpers/worker-process.js';

/** The value of the one series of `name` whose labels include every one of `labels`. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\} (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const present = Object.entries(labels).every(([key, value]) => match[2]!.split(',').includes(`${key}="${value}"`));
    if (present) return Number(match[3]);
  }
  return undefined;
}

// The worker as operators run it (`erp4-backup worker`, its own process and Runtime), with its
// Prometheus endpoint and a JSON log at DEBUG level.
describe('the worker Prometheus endpoint and log', () => {
  const s = services();
  let env: Record<string, string>;
  let worker: WorkerProcess;
  let connection: Connection;
  let client: Client;
  let endpoint: string;

  beforeAll(async () => {
    const bindAddress = `127.0.0.1:${await freePort()}`;
    env = await productEnv(s, 'metrics', { assets: false, env: { METRICS_BIND_ADDRESS: bindAddress, LOG_FORMAT: 'json', LOG_LEVEL: 'DEBUG' } });
    endpoint = `http://${bindAddress}/metrics`;
    worker = await startWorkerProcess(s, env, `metrics-worker-${process.pid}`);
    connection = await Connection.connect({ address: s.temporal.address });
    client = new Client({ connection, namespace: s.temporal.namespace });
  });
  afterAll(async () => {
    await worker?.stop();
    await connection?.close();
  });

  /** Scrapes until `name` with `labels` appears: metrics leave the workflow when its last task ends. */
  async function scrapeFor(name: string, labels: Record<string, string>): Promise<{ text: string; value: number }> {
    let text = '';
    for (let attempt = 0; attempt < 50; attempt++) {
      text = await (await fetch(endpoint)).text();
      const value = sample(text, name, labels);
      if (value !== undefined) return { text, value };
      await sleep(100);
    }
    throw new Error(`${name} ${JSON.stringify(labels)} never appeared on ${endpoint}:\n${text.slice(0, 3000)}`);
  }

  it('shows the last-success gauge, size and duration after a daily backup, tagged with the env and kind', async () => {
    const before = Date.now() / 1000;
    const result = await client.workflow.execute(NightlyBackup, {
      taskQueue: env.TEMPORAL_TASK_QUEUE!,
      workflowId: `metrics-backup-${process.pid}`,
      args: [{ kind: 'daily' }],
    });
    const labels = { env: 'test', kind: 'daily', workflowType: 'NightlyBackup' };
    const { value: lastSuccess, text } = await scrapeFor(METRICS.backupLastSuccess, labels);
    expect(lastSuccess).toBeGreaterThanOrEqual(before - 1);
    expect(lastSuccess).toBeLessThanOrEqual(Date.now() / 1000 + 1);
    expect(sample(text, METRICS.backupSize, labels)).toBe(result.totalBytes);
    expect(sample(text, METRICS.backupDuration, labels)).toBeGreaterThan(0);
    expect(sample(text, METRICS.backupRuns, { ...labels, outcome: 'completed' })).toBe(1);
    // Temporal's own SDK metrics share the endpoint.
    expect((await scrapeFor('temporal_workflow_completed', { workflow_type: 'NightlyBackup' })).value).toBe(1);
  });

  it("shows the watchdog's open incidents and the catalog's newest backup per repository", async () => {
    await client.workflow.execute(Freshness, {
      taskQueue: env.TEMPORAL_TASK_QUEUE!,
      workflowId: `metrics-freshness-${process.pid}`,
      args: [{}],
    });
    // No drill has run in this repository: one incident (drill-stale).
    expect((await scrapeFor('erp4_freshness_open_incidents', { env: 'test' })).value).toBe(1);
    const { value } = await scrapeFor('erp4_backup_newest_timestamp_seconds', { env: 'test', kind: 'daily', repository: 'local' });
    expect(value).toBeGreaterThan(Date.now() / 1000 - 600);
  });

  it("logs one JSON object per line at LOG_LEVEL=DEBUG (LOG_FORMAT=json), Temporal's own messages included", () => {
    const lines = readFileSync(worker.process.logPath, 'utf8').split('\n').filter((line) => line.trim() !== '');
    const entries = lines.map((line) => JSON.parse(line) as { time: string; level: string; message: string });
    expect(entries.length).toBeGreaterThan(3);
    for (const entry of entries) expect(entry).toMatchObject({ time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/), level: expect.stringMatching(/^(TRACE|DEBUG|INFO|WARN|ERROR)$/) });
    expect(entries.some((e) => e.message.startsWith('erp4-backup worker:'))).toBe(true);
    expect(entries.some((e) => e.level === 'DEBUG')).toBe(true);
  });
});

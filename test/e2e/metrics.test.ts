import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Freshness, NightlyBackup, RestoreDrill } from '../../workflows/index.js';
import { METRICS } from '../../workflows/outcome-metrics.js';
import { FRESHNESS_METRICS } from '../../workflows/freshness-metrics.js';
import { freePort } from '../../src/dev/processes.js';
import { dashboardExpressions, exposedMetricNames, metricNamesIn, ruleExpressions } from '../helpers/promql.js';
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
// Prometheus endpoint and a JSON log at DEBUG level; an off-site repository (SFTP) and
// pre-approved drills, so every series the alert rules and the dashboard use can appear.
describe('the worker Prometheus endpoint and log', () => {
  const s = services();
  let env: Record<string, string>;
  let worker: WorkerProcess;
  let connection: Connection;
  let client: Client;
  let endpoint: string;

  beforeAll(async () => {
    const bindAddress = `127.0.0.1:${await freePort()}`;
    env = await productEnv(s, 'metrics', {
      assets: false,
      sftp: true,
      env: { METRICS_BIND_ADDRESS: bindAddress, LOG_FORMAT: 'json', LOG_LEVEL: 'DEBUG', DRILL_PREAPPROVED: 'true' },
    });
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

  it('exports every metric the alert rules and the Grafana dashboard use, after a drill and a Freshness run', async () => {
    const drill = await client.workflow.execute(RestoreDrill, {
      taskQueue: env.TEMPORAL_TASK_QUEUE!,
      workflowId: `metrics-drill-${process.pid}`,
      args: [{ repository: 'local' }],
    });
    expect(drill.outcome).toBe('passed');
    await client.workflow.execute(Freshness, { taskQueue: env.TEMPORAL_TASK_QUEUE!, workflowId: `metrics-freshness-2-${process.pid}`, args: [{}] });
    expect((await scrapeFor(METRICS.drillRuns, { env: 'test', outcome: 'passed' })).value).toBe(1);
    expect((await scrapeFor(FRESHNESS_METRICS.drillLastPassed, { env: 'test' })).value).toBe(1);
    expect((await scrapeFor(FRESHNESS_METRICS.drillRto, { env: 'test' })).value).toBeGreaterThan(0);
    // SFTP holds every backup: nothing missing since the catalog read.
    expect((await scrapeFor(FRESHNESS_METRICS.offsiteMissingSince, { env: 'test', repository: 'sftp' })).value).toBeGreaterThan(Date.now() / 1000 - 60);
    const { text } = await scrapeFor(FRESHNESS_METRICS.objective, { env: 'test', objective: 'rpo_daily' });

    const exported = exposedMetricNames(text);
    const used = new Map<string, string>();
    for (const [where, expr] of [...ruleExpressions(), ...dashboardExpressions()]) for (const name of metricNamesIn(expr)) used.set(name, where);
    expect(used.size).toBeGreaterThan(8);
    const unknown = [...used].filter(([name]) => !exported.has(name)).map(([name, where]) => `${name} (${where})`);
    expect(unknown).toEqual([]);
  });

  it("logs one JSON object per line at LOG_LEVEL=DEBUG (LOG_FORMAT=json), Temporal's own messages included", () => {
    const lines = readFileSync(worker.process.logPath, 'utf8').split('\n').filter((line) => line.trim() !== '');
    const entries = lines.map((line) => JSON.parse(line) as { time: string; level: string; message: string });
    expect(entries.length).toBeGreaterThan(3);
    for (const entry of entries) expect(entry).toMatchObject({ time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/), level: expect.stringMatching(/^(TRACE|DEBUG|INFO|WARN|ERROR)$/) });
    expect(entries.some((e) => e.message.startsWith('erp4-backup worker:'))).toBe(true);
    expect(entries.some((e) => e.level === 'DEBUG')).toBe(true);
  });

  it('has the freshness gauges right after a restart, from the catalog, as the series Freshness sets', async () => {
    await worker.stop();
    worker = await startWorkerProcess(s, env, `metrics-worker-${process.pid}`);
    // No workflow has run on this worker: the catalog read at its start set them.
    const freshnessSeries = { env: 'test', workflowType: 'Freshness', namespace: s.temporal.namespace, taskQueue: env.TEMPORAL_TASK_QUEUE! };
    const { text, value: newest } = await scrapeFor(FRESHNESS_METRICS.newestBackup, { ...freshnessSeries, kind: 'daily', repository: 'sftp' });
    expect(sample(text, FRESHNESS_METRICS.newestBackup, { ...freshnessSeries, kind: 'daily', repository: 'local' })).toBe(newest);
    expect(newest).toBeGreaterThan(Date.now() / 1000 - 600);
    expect(sample(text, FRESHNESS_METRICS.objective, { ...freshnessSeries, objective: 'rpo_daily' })).toBe(86_400);
    expect(sample(text, FRESHNESS_METRICS.objective, { ...freshnessSeries, objective: 'offsite_max_lag' })).toBe(7_200);
    expect(sample(text, FRESHNESS_METRICS.objective, { objective: 'rpo_critical' }), 'no RPO_CRITICAL without CRITICAL_TABLES').toBeUndefined();
    expect(sample(text, FRESHNESS_METRICS.drillLastPassed, freshnessSeries)).toBe(1);
    expect(sample(text, FRESHNESS_METRICS.drillRto, freshnessSeries)).toBeGreaterThan(0);
    expect(sample(text, FRESHNESS_METRICS.offsiteMissingSince, { ...freshnessSeries, repository: 'sftp' })).toBeGreaterThan(Date.now() / 1000 - 60);
    expect(sample(text, FRESHNESS_METRICS.openIncidents, freshnessSeries)).toBe(0);
    expect(sample(text, METRICS.backupRuns, { env: 'test' }), 'counted by the workflows this worker runs, not from the catalog').toBeUndefined();

    // A Freshness run on this worker updates the same series instead of adding one: the time
    // of its catalog read replaces that of the worker's.
    const readAtStart = sample(text, FRESHNESS_METRICS.offsiteMissingSince, { ...freshnessSeries, repository: 'sftp' })!;
    await client.workflow.execute(Freshness, { taskQueue: env.TEMPORAL_TASK_QUEUE!, workflowId: `metrics-freshness-3-${process.pid}`, args: [{}] });
    await expect
      .poll(async () => sample(await (await fetch(endpoint)).text(), FRESHNESS_METRICS.offsiteMissingSince, { ...freshnessSeries, repository: 'sftp' }), { timeout: 5_000 })
      .toBeGreaterThan(readAtStart);
    const after = await (await fetch(endpoint)).text();
    expect(after.split('\n').filter((line) => line.startsWith(`${FRESHNESS_METRICS.offsiteMissingSince}{`))).toHaveLength(1);
  });
});

import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { installMetrics } from '../../src/metrics.js';
import { Freshness, NightlyBackup } from '../../workflows/index.js';
import { METRICS } from '../../workflows/outcome-metrics.js';
import { freePort } from '../../src/dev/processes.js';
import { productEnv, startProduct, type RunningProduct } from '../helpers/product.js';
import { services } from '../helpers/services.js';

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

// Temporal's Runtime (and so the Prometheus endpoint) is one per process: this file has its
// own (vitest runs each file in its own forked process) and installs it as `worker` does.
describe('the worker Prometheus endpoint', () => {
  const s = services();
  let product: RunningProduct;
  let endpoint: string;

  beforeAll(async () => {
    const env = await productEnv(s, 'metrics', { assets: false, env: { METRICS_BIND_ADDRESS: `127.0.0.1:${await freePort()}` } });
    const config = loadConfig(env);
    installMetrics(config.metrics.bindAddress!, config.env);
    endpoint = `http://${config.metrics.bindAddress}/metrics`;
    product = await startProduct(s, env);
  });
  afterAll(async () => {
    await product?.close();
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
    const result = await product.client.workflow.execute(NightlyBackup, {
      taskQueue: product.config.temporal.taskQueue,
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
    expect(text).toMatch(/^temporal_workflow_completed\{[^}]*workflow_type="NightlyBackup"[^}]*\} 1$/m);
  });

  it("shows the watchdog's open incidents and the catalog's newest backup per repository", async () => {
    await product.client.workflow.execute(Freshness, {
      taskQueue: product.config.temporal.taskQueue,
      workflowId: `metrics-freshness-${process.pid}`,
      args: [{}],
    });
    // No drill has run in this repository: one incident (drill-stale).
    expect((await scrapeFor('erp4_freshness_open_incidents', { env: 'test' })).value).toBe(1);
    const { value } = await scrapeFor('erp4_backup_newest_timestamp_seconds', { env: 'test', kind: 'daily', repository: 'local' });
    expect(value).toBeGreaterThan(Date.now() / 1000 - 600);
  });
});

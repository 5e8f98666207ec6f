import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { productEnv } from '../helpers/product.js';
import { services } from '../helpers/services.js';
import { startWorkerProcess, type WorkerProcess } from '../helpers/worker-process.js';

// The compose file's worker healthcheck, run as the container runs it: the built CLI with the worker's environment.
describe('erp4-backup healthcheck', () => {
  const s = services();
  let env: Record<string, string>;
  let worker: WorkerProcess;

  beforeAll(async () => {
    env = await productEnv(s, 'healthcheck', { assets: false });
    worker = await startWorkerProcess(s, env, `healthcheck-worker-${process.pid}`);
  });
  afterAll(async () => worker?.stop());

  it("exits 0 while this host's worker polls its own task queue", async () => {
    const result = await runCli(['healthcheck'], env);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^healthy: \\d+@\\S+ polls ${env.TEMPORAL_TASK_QUEUE}/host/\\S+-[0-9a-f]{8}$`, 'm'));
  });

  it('exits 1, naming the queue, for a host whose worker does not run (another BACKUP_DIR is another host)', async () => {
    const result = await runCli(['healthcheck'], { ...env, BACKUP_DIR: await mkdtemp(join(tmpdir(), 'erp4-healthcheck-other-')) });
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(`UNHEALTHY: no worker has polled ${env.TEMPORAL_TASK_QUEUE}/host/`);
  });
});

import { readFileSync } from 'node:fs';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { workerIdentity } from '../../src/host.js';
import { backupIdFor } from '../../src/layout.js';
import type { NightlyBackup } from '../../workflows/index.js';
import { activityRetries } from '../chaos/backup-checks.js';
import { waitFor } from '../chaos/reliability.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { productEnv } from '../helpers/product.js';
import { services } from '../helpers/services.js';
import { startWorkerProcess, type WorkerProcess } from '../helpers/worker-process.js';

// SIGTERM to the built worker (`erp4-backup worker`, as docker stop or systemd send it) while a
// NightlyBackup's S3 upload is in flight, slowed down by a proxy in front of moto.
const s = services();
const firstSecond = Date.now() - 60_000;

describe('stopping the worker with SIGTERM', () => {
  let env: Record<string, string>;
  let s3Proxy: FaultProxy;
  let connection: Connection;
  let client: Client;
  const workers: WorkerProcess[] = [];
  let runs = 0;

  beforeAll(async () => {
    const moto = new URL(s.s3.endpoint);
    s3Proxy = await startFaultProxy({ host: moto.hostname, port: Number(moto.port) });
    env = await productEnv(s, 'shutdown', { s3: true, env: { BACKUP_ENV: 'shutdown', S3_ENDPOINT_URL: `http://${s3Proxy.address}` } });
    connection = await Connection.connect({ address: s.temporal.address });
    client = new Client({ connection, namespace: s.temporal.namespace });
  });
  afterAll(async () => {
    await Promise.all(workers.filter((worker) => !worker.process.hasExited()).map((worker) => worker.kill()));
    await s3Proxy?.close();
    await connection?.close();
  });

  const startWorker = async (extra: Record<string, string> = {}) => {
    const worker = await startWorkerProcess(s, { ...env, ...extra }, `shutdown-worker-${process.pid}-${workers.length}`);
    workers.push(worker);
    return worker;
  };
  const logOf = (worker: WorkerProcess) => readFileSync(worker.process.logPath, 'utf8');

  /** A NightlyBackup whose S3 upload crawls (each chunk the worker sends to S3 waits `delayMs`), once that upload runs. */
  async function backupWithUploadInFlight(delayMs: number): Promise<WorkflowHandle<typeof NightlyBackup>> {
    s3Proxy.setMode({ kind: 'delay', ms: delayMs });
    runs += 1;
    const handle = await client.workflow.start<typeof NightlyBackup>('NightlyBackup', {
      taskQueue: env.TEMPORAL_TASK_QUEUE!,
      workflowId: `shutdown-${process.pid}-${runs}-${Date.now()}`,
      args: [{ kind: 'daily', backupId: backupIdFor('daily', new Date(firstSecond + runs * 1000)) }],
    });
    await waitFor('the S3 upload in flight', async () => {
      const pending = (await handle.describe()).raw.pendingActivities ?? [];
      return pending.some((activity) => activity.activityType?.name === 'uploadArtifacts' && Number(activity.state) === 2) && s3Proxy.openConnections() > 0;
    });
    return handle;
  }

  it('lets the upload in flight finish, then exits; a new worker completes the backup with no activity run twice', async () => {
    const first = await startWorker();
    const handle = await backupWithUploadInFlight(400);
    const signalledAt = Date.now();
    process.kill(first.process.pid, 'SIGTERM');
    const exit = await first.process.exited;
    const exitedAt = Date.now();
    expect(exit).toEqual({ code: 0, signal: null });

    // The S3 upload, in flight (slowed by the proxy) when the signal came, completed on the first worker.
    const history = (await handle.fetchHistory()).events ?? [];
    const s3Upload = history.find((event) => {
      const scheduled = event.activityTaskScheduledEventAttributes;
      const input = scheduled?.input?.payloads?.[0]?.data;
      return scheduled?.activityType?.name === 'uploadArtifacts' && input && (JSON.parse(Buffer.from(input).toString('utf8')) as { repository: string }).repository === 's3';
    });
    expect(s3Upload, 'the S3 upload was scheduled').toBeDefined();
    const completed = history.find((event) => String(event.activityTaskCompletedEventAttributes?.scheduledEventId) === String(s3Upload!.eventId));
    expect(completed?.activityTaskCompletedEventAttributes?.identity).toBe(workerIdentity(first.process.pid, loadConfig(env).host.id));
    expect(exitedAt - signalledAt).toBeGreaterThan(300);
    expect(logOf(first)).toMatch(/SIGTERM: stopped polling; [1-9]\d* activit(y|ies) in flight may finish within 600 s/);

    s3Proxy.setMode({ kind: 'pass' });
    const second = await startWorker();
    const result = await handle.result();
    expect(result.repositories.sort()).toEqual(['local', 's3']);
    expect(await activityRetries(handle)).toEqual([]);
  });

  it('exits at once on a second SIGTERM, with the upload still in flight', async () => {
    // The second worker of the test before (default grace), idle again.
    const worker = workers.at(-1)!;
    const handle = await backupWithUploadInFlight(1000);
    process.kill(worker.process.pid, 'SIGTERM');
    await waitFor('the first SIGTERM to be taken', () => logOf(worker).includes('SIGTERM: stopped polling'), 10_000);
    const signalledAt = Date.now();
    process.kill(worker.process.pid, 'SIGTERM');
    const exit = await worker.process.exited;
    expect(Date.now() - signalledAt).toBeLessThan(3_000);
    expect(exit).toEqual({ code: 143, signal: null });
    expect(logOf(worker)).toContain('SIGTERM again: exiting now');
    const pending = (await handle.describe()).raw.pendingActivities ?? [];
    expect(pending.map((activity) => activity.activityType?.name)).toContain('uploadArtifacts');
    await handle.terminate('test: cut off by the second SIGTERM');
    s3Proxy.setMode({ kind: 'pass' });
  });

  it('cancels the activities still in flight when WORKER_SHUTDOWN_GRACE ends, then exits', async () => {
    const worker = await startWorker({ WORKER_SHUTDOWN_GRACE: '2s' });
    const handle = await backupWithUploadInFlight(1500);
    const signalledAt = Date.now();
    process.kill(worker.process.pid, 'SIGTERM');
    const exit = await worker.process.exited;
    // 2 s of grace, then the upload takes the cancellation at its next chunk (a 1.5 s delay here).
    expect(Date.now() - signalledAt).toBeGreaterThan(1_900);
    expect(Date.now() - signalledAt).toBeLessThan(15_000);
    expect(exit.code).toBe(0);
    expect(logOf(worker)).toMatch(/in flight may finish within 2 s/);
    await waitFor('the cut-off upload to be retried', async () => {
      const upload = ((await handle.describe()).raw.pendingActivities ?? []).find((activity) => activity.activityType?.name === 'uploadArtifacts');
      return (upload?.attempt ?? 0) >= 2;
    }, 10_000);
    await handle.terminate('test: cut off at the end of the grace');
    s3Proxy.setMode({ kind: 'pass' });
  });
});

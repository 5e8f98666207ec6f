import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCatalog, verifyBackup } from '../../src/catalog.js';
import { loadConfig } from '../../src/config.js';
import { backupIdFor, MANIFEST_SUFFIX, manifestKey } from '../../src/layout.js';
import { createBackupRuntime } from '../../src/runtime.js';
import type { Repository } from '../../src/storage/repository.js';
import { bundleWorkflows, createBackupWorkers, runWorkers } from '../../src/temporal/worker.js';
import type { BackupRuntime } from '../../activities/index.js';
import { NightlyBackup } from '../../workflows/index.js';
import { progressQuery } from '../../workflows/messages.js';
import { productEnv } from '../helpers/product.js';
import { services } from '../helpers/services.js';

// A host lost after the S3 manifest of a backup was written but before its own local manifest:
// the S3 manifest is withdrawn before the chain runs again on the other host (which rewrites the
// artifacts), so no manifest ever points at artifacts of another attempt.
describe('NightlyBackup whose host is lost while the manifests are written', () => {
  const s = services();
  let bundle: WorkflowBundleWithSourceMap;
  let connection: Connection;
  let client: Client;
  const started: Array<{ workers: Worker[]; running: Promise<void>; native: NativeConnection; runtime: BackupRuntime }> = [];
  const dirs: string[] = [];

  async function startHost(env: Record<string, string>, wrap: (runtime: BackupRuntime) => BackupRuntime = (r) => r) {
    const runtime = wrap(await createBackupRuntime(loadConfig(env)));
    const native = await NativeConnection.connect({ address: s.temporal.address });
    const workers = await createBackupWorkers({ connection: native, namespace: s.temporal.namespace, runtime, workflowBundle: bundle });
    const host = { workers, running: runWorkers(workers), native, runtime };
    started.push(host);
    return host;
  }
  async function stopHost(host: (typeof started)[number]) {
    for (const worker of host.workers) if (worker.getState() === 'RUNNING') worker.shutdown();
    await host.running.catch(() => undefined);
    await host.native.close();
    await Promise.all([...host.runtime.repositories.values()].map((r) => r.close()));
  }

  beforeAll(async () => {
    bundle = await bundleWorkflows();
    connection = await Connection.connect({ address: s.temporal.address });
    client = new Client({ connection, namespace: s.temporal.namespace });
  });
  afterAll(async () => {
    for (const host of started) if (host.workers.some((w) => w.getState() === 'RUNNING')) await stopHost(host);
    await connection?.close();
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it('withdraws the S3 manifest, runs the chain again on the other host, and ends with one whole backup', async () => {
    const base = await productEnv(s, 'host-lost', {
      s3: true,
      assets: false,
      env: { S3_PRUNER_ACCESS_KEY_ID: s.s3.accessKeyId, S3_PRUNER_SECRET_ACCESS_KEY: s.s3.secretAccessKey },
    });
    const envA: Record<string, string> = { ...base, WORKER_HOST_ID: 'host-a' };
    const envB: Record<string, string> = { ...base, WORKER_HOST_ID: 'host-b', BACKUP_DIR: await mkdtemp(join(tmpdir(), 'erp4-host-lost-b-')) };
    dirs.push(envA.BACKUP_DIR!, envB.BACKUP_DIR!);

    // Host A's disk stops answering when the local manifest is written; meanwhile the S3 manifest
    // (written from the shared queue) goes through.
    let reached!: () => void;
    const reachedManifest = new Promise<void>((resolve) => (reached = resolve));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const hostA = await startHost(envA, (runtime) => {
      const local = runtime.repositories.get('local')!;
      const hanging = new Proxy(local, {
        get(target, property, receiver) {
          if (property === 'putBytes') {
            return async (key: string, ...rest: unknown[]) => {
              if (!key.endsWith(MANIFEST_SUFFIX)) return (target.putBytes as (...args: unknown[]) => Promise<void>).call(target, key, ...rest);
              reached();
              await released;
              throw new Error('host-a is gone (simulated)');
            };
          }
          const value: unknown = Reflect.get(target, property, receiver);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      }) as Repository;
      return { ...runtime, repositories: new Map([...runtime.repositories, ['local', hanging]]) };
    });

    const backupId = backupIdFor('daily', new Date());
    const handle = await client.workflow.start(NightlyBackup, {
      taskQueue: base.TEMPORAL_TASK_QUEUE!,
      workflowId: `host-lost-${process.pid}-${Date.now()}`,
      args: [{ kind: 'daily', backupId, heartbeatTimeoutSeconds: 5, hostTimeoutSeconds: 5 }],
    });
    await reachedManifest;
    const s3 = hostA.runtime.restore.openReader('s3')!;
    try {
      await expect.poll(async () => (await readCatalog(s3, 'test')).backups.map((b) => b.id), { timeout: 30_000 }).toEqual([backupId]);
      const firstAttempt = (await readCatalog(s3, 'test')).backups[0]!;

      // Host B comes up, host A goes away for good.
      await startHost(envB);
      const stopping = stopHost(hostA);
      release();
      await stopping;

      const result = await handle.result();
      expect(result.host).toBe('host-b');
      expect((await handle.query(progressQuery)).hostsLost).toEqual(['host-a']);
      const withdrawn = (await handle.fetchHistory()).events!.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'withdrawManifest');
      expect(withdrawn.length).toBeGreaterThanOrEqual(1);

      // One backup in S3: the second attempt's, whole; the first attempt's artifacts were rewritten under it.
      const [manifest] = (await readCatalog(s3, 'test')).backups;
      expect(manifest!.id).toBe(backupId);
      expect(manifest!.generatedAt).not.toBe(firstAttempt.generatedAt);
      expect((await verifyBackup(s3, manifest!)).every((check) => check.ok)).toBe(true);
      // Host B's local repository holds it; host A's never got its manifest.
      const localB = started[1]!.runtime.repositories.get('local')!;
      expect((await readCatalog(localB, 'test')).backups.map((b) => b.id)).toEqual([backupId]);
      expect(await hostA.runtime.prune.openRepository('local')!.stat(manifestKey(hostA.runtime.layout, backupId))).toBeUndefined();
    } finally {
      await s3.close();
    }
  }, 120_000);
});

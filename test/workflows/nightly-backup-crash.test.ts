import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { Client, Connection } from '@temporalio/client';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { readCatalog, verifyBackup } from '../../src/catalog.js';
import { pgClientConfig } from '../../src/pg/connection.js';
import { dropDatabase } from '../../src/pg/restore.js';
import { createRepositories } from '../../src/runtime.js';
import type { Repository } from '../../src/storage/repository.js';
import type { NightlyBackup } from '../../workflows/index.js';
import { createSampleDatabase, productEnv } from '../helpers/product.js';
import { testS3Client } from '../helpers/s3-server.js';
import { services } from '../helpers/services.js';
import { startWorkerProcess, type WorkerProcess } from '../helpers/worker-process.js';

const s = services();

// Durable execution, shown with real processes and real signals: the worker is SIGKILLed in
// the middle of the dump and again in the middle of the S3 upload. After each restart the
// same workflow completes the same backup; until then no manifest (so no backup) is visible.
describe('NightlyBackup survives its worker being killed', () => {
  const database = `crash_${process.pid}`;
  let env: Record<string, string>;
  let repositories: Map<string, Repository>;
  let connection: Connection;
  let client: Client;
  let worker: WorkerProcess | undefined;

  beforeAll(async () => {
    await createSampleDatabase(s, database);
    // ~120 MiB of incompressible rows: long enough a dump and upload to kill them midway.
    const admin = new pg.Client({ host: s.postgres.host, port: s.postgres.port, user: s.postgres.user, password: s.postgres.password, database });
    await admin.connect();
    await admin.query(`CREATE TABLE attachments (id int PRIMARY KEY, body bytea NOT NULL)`);
    await admin.query(`ALTER TABLE attachments ALTER COLUMN body SET STORAGE EXTERNAL`);
    await admin.query(`
      INSERT INTO attachments
      SELECT g, decode(string_agg(md5(g::text || ':' || h::text || random()::text), ''), 'hex')
        FROM generate_series(1, 120) g, generate_series(1, 65536) h GROUP BY g`);
    await admin.end();
    env = await productEnv(s, 'crash', { s3: true, sftp: true, gpg: true, env: { DB_NAME: database } });
    repositories = createRepositories(loadConfig(env), 'reader');
    connection = await Connection.connect({ address: s.temporal.address });
    client = new Client({ connection, namespace: s.temporal.namespace });
  }, 300_000);
  afterAll(async () => {
    await worker?.stop();
    await Promise.all([...(repositories?.values() ?? [])].map((r) => r.close()));
    await connection?.close();
    await dropDatabase({ host: s.postgres.host, port: s.postgres.port, user: s.postgres.user, password: s.postgres.password, database }, database);
  });

  const manifests = async () => {
    const counts: Record<string, number> = {};
    for (const [name, repository] of repositories) counts[name] = (await readCatalog(repository, 'test')).backups.length;
    return counts;
  };
  const noBackups = { local: 0, s3: 0, sftp: 0 };

  it('completes the same backup after SIGKILL during the dump and during the S3 upload', async () => {
    worker = await startWorkerProcess(s, env, 'crash-worker');
    const handle = await client.workflow.start<typeof NightlyBackup>('NightlyBackup', {
      taskQueue: env.TEMPORAL_TASK_QUEUE!,
      workflowId: `crash-${Date.now()}`,
      args: [{ kind: 'daily' }],
    });

    // 1. Kill while pg_dump streams into the staging file.
    const staging = join(env.BACKUP_DIR!, '.staging');
    await waitFor('the db dump to be half-way', () => partialBytes(staging, '.dump.gpg.partial') > 20 * 1024 * 1024);
    await worker.kill();
    expect(await manifests()).toEqual(noBackups);
    worker = await startWorkerProcess(s, env, 'crash-worker');

    // 2. Kill while the S3 multipart upload is in flight.
    const s3 = testS3Client(s.s3);
    await waitFor('an S3 multipart upload to be in flight', async () => {
      const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: s.s3.bucket, Prefix: env.S3_PREFIX }));
      return (uploads.Uploads ?? []).length > 0;
    }, 180_000);
    await worker.kill();
    expect(await manifests()).toEqual(noBackups);
    worker = await startWorkerProcess(s, env, 'crash-worker');

    const result = await handle.result();
    expect(await manifests()).toEqual({ local: 1, s3: 1, sftp: 1 });
    for (const [name, repository] of repositories) {
      const [manifest] = (await readCatalog(repository, 'test')).backups;
      expect(manifest!.id).toBe(result.backupId);
      const checks = await verifyBackup(repository, manifest!);
      expect(checks.every((c) => c.ok), `${name}: ${JSON.stringify(checks)}`).toBe(true);
    }
    expect(existsSync(join(staging, result.backupId))).toBe(false);
  }, 600_000);
});

function partialBytes(dir: string, suffix: string): number {
  if (!existsSync(dir)) return 0;
  let total = 0;
  for (const entry of readdirSync(dir, { recursive: true }) as string[]) {
    if (entry.endsWith(suffix)) total += statSync(join(dir, entry)).size;
  }
  return total;
}

async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { loadConfig, type Config } from '../../src/config.js';
import { createBackupRuntime } from '../../src/runtime.js';
import { createBackupWorkers, runWorkers } from '../../src/temporal/worker.js';
import type { BackupRuntime } from '../../activities/index.js';
import { seedSampleDatabase } from '../../src/dev/postgres.js';
import type { Services } from './services.js';

/**
 * The product configured against the harness services, as an operator would configure it:
 * environment variables in, `loadConfig` -> runtime -> worker out. Each call gets its own
 * BACKUP_DIR, S3 prefix, SFTP directory and task queue, so test files never see each other's
 * backups.
 */
export interface ProductOptions {
  s3?: boolean;
  sftp?: boolean;
  gpg?: boolean;
  assets?: boolean;
  env?: Record<string, string>;
}

export async function productEnv(s: Services, name: string, options: ProductOptions = {}): Promise<Record<string, string>> {
  const unique = `${name}-${process.pid}-${Date.now().toString(36)}`;
  const env: Record<string, string> = {
    BACKUP_ENV: 'test',
    DB_HOST: s.postgres.host,
    DB_PORT: String(s.postgres.port),
    DB_USER: s.postgres.user,
    DB_PASSWORD: s.postgres.password,
    DB_NAME: s.postgres.sampleDb,
    PG_BIN_DIR: s.postgres.binDir,
    BACKUP_DIR: await mkdtemp(join(tmpdir(), `erp4-${name}-`)),
    TEMPORAL_ADDRESS: s.temporal.address,
    TEMPORAL_NAMESPACE: s.temporal.namespace,
    TEMPORAL_TASK_QUEUE: unique,
  };
  if (options.assets ?? true) Object.assign(env, { PDF_PROVIDER: 'local', ASSET_DIR: s.assetDir });
  if (options.s3) {
    Object.assign(env, {
      S3_BUCKET: s.s3.bucket,
      S3_PREFIX: `erp4-${unique}`,
      S3_REGION: s.s3.region,
      S3_ENDPOINT_URL: s.s3.endpoint,
      S3_PART_SIZE_MB: '5',
      SSE_KMS_KEY_ID: 'alias/erp4-backup',
      // Role credentials (S15) rather than AWS_*: the config hands them to the SDK explicitly.
      S3_WRITER_ACCESS_KEY_ID: s.s3.accessKeyId,
      S3_WRITER_SECRET_ACCESS_KEY: s.s3.secretAccessKey,
      S3_READER_ACCESS_KEY_ID: s.s3.accessKeyId,
      S3_READER_SECRET_ACCESS_KEY: s.s3.secretAccessKey,
    });
  }
  if (options.sftp) {
    Object.assign(env, {
      REMOTE_HOST: s.sftp.host,
      REMOTE_PORT: String(s.sftp.port),
      REMOTE_USER: s.sftp.user,
      REMOTE_DIR: join(s.sftp.rootDir, unique),
      REMOTE_SSH_KEY: s.sftp.privateKeyPath,
      REMOTE_HOST_KEY: s.sftp.hostPublicKey,
    });
  }
  if (options.gpg) {
    Object.assign(env, {
      GPG_RECIPIENT: s.gnupg.recipient,
      GPG_PUBLIC_KEY_FILE: s.gnupg.publicKeyPath,
      GPG_PRIVATE_KEY_FILE: s.gnupg.privateKeyPath,
      GPG_PASSPHRASE: s.gnupg.passphrase,
    });
  }
  return { ...env, ...options.env };
}

export interface RunningProduct {
  config: Config;
  runtime: BackupRuntime;
  /** Polling the shared task queue from startProduct() until close() (a second worker polls the host queue). */
  worker: Worker;
  client: Client;
  /** Stops polling (both queues) and waits for the workers to stop: a deploy's first half. close() still closes the rest. */
  stopWorkers(): Promise<void>;
  close(): Promise<void>;
}

/** Config + runtime + worker + client for one test file. */
export async function startProduct(s: Services, env: Record<string, string>): Promise<RunningProduct> {
  const config = loadConfig(env);
  const runtime = await createBackupRuntime(config);
  const nativeConnection = await NativeConnection.connect({ address: s.temporal.address });
  const workers = await createBackupWorkers({ connection: nativeConnection, namespace: s.temporal.namespace, runtime });
  const worker = workers[0]!;
  const connection = await Connection.connect({ address: s.temporal.address });
  const client = new Client({ connection, namespace: s.temporal.namespace });
  const running = runWorkers(workers);
  return {
    config,
    runtime,
    worker,
    client,
    async stopWorkers() {
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
      await running;
    },
    async close() {
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
      await running;
      await Promise.all([...runtime.repositories.values()].map((r) => r.close()));
      await connection.close();
      await nativeConnection.close();
    },
  };
}

/** A private copy of the sample ERP database, for tests that write to it or drop it. */
export async function createSampleDatabase(s: Services, name: string): Promise<void> {
  await seedSampleDatabase(s.postgres, name);
}

import { CreateBucketCommand, S3Client, type BucketLocationConstraint } from '@aws-sdk/client-s3';
import { dirname, join } from 'node:path';
import { freePort, runCommand, spawnService, waitUntilReady, type ServiceProcess } from '../../src/dev/processes.js';

export interface S3Server {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  process: ServiceProcess;
  stop(): Promise<void>;
}

export interface StartS3Options {
  motoServerPath: string;
  logPath: string;
  port?: number;
}

// moto accepts any credentials; these are the conventional dummies.
const DUMMY_CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' };
const REGION = 'ap-northeast-1';

/** An S3 client for the test server: path-style, dummy credentials. */
export function testS3Client(server: Pick<S3Server, 'endpoint' | 'region' | 'accessKeyId' | 'secretAccessKey'>): S3Client {
  return new S3Client({
    endpoint: server.endpoint,
    region: server.region,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    // S3-compatible servers do not all accept the SDK's default CRC32 checksums.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** The moto version installed beside `moto_server` (asks the venv's python). */
export async function motoVersion(motoServerPath: string): Promise<string> {
  const python = join(dirname(motoServerPath), 'python');
  const { stdout } = await runCommand(python, ['-c', 'import importlib.metadata as m; print(m.version("moto"))']);
  return stdout.trim();
}

/** Starts `moto_server` (S3-compatible) on 127.0.0.1. */
export async function startS3Server(options: StartS3Options): Promise<S3Server> {
  const host = '127.0.0.1';
  const port = options.port ?? (await freePort());
  const server = await spawnService({
    name: 'moto',
    command: options.motoServerPath,
    args: ['-H', host, '-p', String(port)],
    logPath: options.logPath,
    // Unbuffered, so the log shows why it failed even when it dies at once.
    env: { ...process.env, PYTHONUNBUFFERED: '1' },
  });
  const endpoint = `http://${host}:${port}`;
  try {
    // Ask moto itself: an open port alone could belong to another process.
    await waitUntilReady(
      server,
      async () => {
        const response = await fetch(`${endpoint}/moto-api/data.json`, { signal: AbortSignal.timeout(2_000) });
        return response.ok && (await response.json()) !== undefined ? true : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );
  } catch (error) {
    await server.stop();
    throw error;
  }
  return {
    endpoint,
    region: REGION,
    ...DUMMY_CREDENTIALS,
    process: server,
    stop: () => server.stop(),
  };
}

/** Creates `bucket` on the test server (retrying while the server finishes starting). */
export async function createTestBucket(server: S3Server, bucket: string): Promise<void> {
  const client = testS3Client(server);
  try {
    await waitUntilReady(
      server.process,
      async () => {
        await client.send(
          new CreateBucketCommand({ Bucket: bucket, CreateBucketConfiguration: { LocationConstraint: server.region as BucketLocationConstraint } }),
        );
        return true;
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
  } finally {
    client.destroy();
  }
}

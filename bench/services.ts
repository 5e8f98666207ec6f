import { chmod, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { startPostgres, type PostgresCluster } from '../src/dev/postgres.js';
import { retryOnPortConflict } from '../src/dev/processes.js';
import { startTemporalDevServer, type TemporalDevServer } from '../src/dev/temporal-server.js';
import { loadToolPaths } from '../src/tools.js';
import { createTestKeyring, stopGpgAgent, type TestKeyring } from '../test/helpers/gpg.js';
import { createTestBucket, startS3Server, type S3Server } from '../test/helpers/s3-server.js';
import { startSshd, type SshServer } from '../test/helpers/sshd.js';

export const BENCH_BUCKET = 'erp4-bench';
/** The workers' S3_PREFIX: where baseline B finds the objects a NightlyBackup stored. */
export const BENCH_S3_PREFIX = 'erp4';

/**
 * The services a benchmark run needs, the same real ones the test suite uses: a throwaway
 * PostgreSQL 15, the Temporal dev server (headless), moto as the S3 server, an sshd with
 * SFTP on loopback, and a GnuPG keyring. Started in parallel; stop() stops what started.
 */
export interface BenchServices {
  postgres: PostgresCluster;
  temporal: TemporalDevServer;
  s3: S3Server;
  sftp: SshServer;
  gnupg: TestKeyring;
  stop(): Promise<void>;
}

export async function startBenchServices(workDir: string): Promise<BenchServices> {
  const tools = loadToolPaths();
  const logDir = join(workDir, 'logs');
  await mkdir(logDir, { recursive: true });
  // The PostgreSQL server runs as the `postgres` OS user and must reach its directory.
  await chmod(workDir, 0o755);
  const stops: Array<() => Promise<void>> = [];
  const started = <T extends { stop(): Promise<void> }>(service: T): T => {
    stops.push(() => service.stop());
    return service;
  };
  const stop = async () => {
    await Promise.allSettled(stops.splice(0).map((s) => s()));
  };
  const settled = await Promise.allSettled([
    retryOnPortConflict(async () =>
      started(await startPostgres({ dir: join(workDir, 'postgres'), binDir: tools.pgBinDir, logPath: join(logDir, 'postgres.log') })),
    ),
    retryOnPortConflict(async () =>
      started(
        await startTemporalDevServer({
          cliPath: tools.temporalCliPath,
          dbFile: join(workDir, 'temporal.db'),
          logPath: join(logDir, 'temporal.log'),
          headless: true,
        }),
      ),
    ),
    retryOnPortConflict(async () => {
      const server = started(await startS3Server({ motoServerPath: tools.motoServerPath, logPath: join(logDir, 'moto.log') }));
      await createTestBucket(server, BENCH_BUCKET);
      return server;
    }),
    retryOnPortConflict(async () => {
      const dir = join(workDir, `sshd-${Date.now()}`);
      await mkdir(dir, { recursive: true });
      return started(await startSshd({ sshdPath: tools.sshdPath, dir, logPath: join(logDir, 'sshd.log') }));
    }),
    (async () => {
      const keyring = await createTestKeyring(join(workDir, 'gpg'));
      stops.push(() => stopGpgAgent(keyring.home));
      return keyring;
    })(),
  ] as const);
  const failures = settled.flatMap((r) => (r.status === 'rejected' ? [String(r.reason instanceof Error ? r.reason.message : r.reason)] : []));
  if (failures.length > 0) {
    await stop();
    throw new Error(`could not start the benchmark services (logs in ${logDir}):\n${failures.join('\n\n')}`);
  }
  const value = <T>(r: PromiseSettledResult<T>): T => (r as PromiseFulfilledResult<T>).value;
  return {
    postgres: value(settled[0]),
    temporal: value(settled[1]),
    s3: value(settled[2]),
    sftp: value(settled[3]),
    gnupg: value(settled[4]),
    stop,
  };
}

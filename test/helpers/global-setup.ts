import { spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { loadToolPaths, type ToolPaths } from '../../src/tools.js';
import { createSampleAssets } from '../../src/dev/assets.js';
import { createTestKeyring, stopGpgAgent } from './gpg.js';
import { seedSampleDatabase, startPostgres } from '../../src/dev/postgres.js';
import { onEmergencyExit, retryOnPortConflict } from '../../src/dev/processes.js';
import { createTestBucket, motoVersion, startS3Server } from './s3-server.js';
import type { Services } from './services.js';
import { startSshd } from './sshd.js';
import { startTemporalDevServer, temporalCliVersion } from '../../src/dev/temporal-server.js';

export const SAMPLE_DB = 'erp4_sample';
export const TEST_BUCKET = 'erp4-backups';

function valueOf<T>(result: PromiseSettledResult<T>): T {
  if (result.status === 'rejected') throw result.reason;
  return result.value;
}

function say(line: string): void {
  process.stdout.write(`[services] ${line}\n`);
}

/** Registers what a start function returned with the teardown. */
type OnStarted = <T extends { stop(): Promise<void> }>(service: T) => T;

async function startSampleDatabase(tools: ToolPaths, workDir: string, logDir: string, onStarted: OnStarted) {
  const cluster = onStarted(
    await retryOnPortConflict(async () =>
      startPostgres({
        dir: await mkdtemp(join(workDir, 'postgres-')),
        binDir: tools.pgBinDir,
        logPath: join(logDir, 'postgres.log'),
      }),
    ),
  );
  await seedSampleDatabase(cluster, SAMPLE_DB);
  say(`postgres ${cluster.serverVersion} on ${cluster.host}:${cluster.port} (database ${SAMPLE_DB}, bin ${cluster.binDir})`);
  return cluster;
}

// With the Web UI (cheap: it is served by the same process), so a developer can watch the
// workflows of a run; its port is in Services.temporal.uiPort.
async function startTemporal(tools: ToolPaths, workDir: string, logDir: string, onStarted: OnStarted) {
  // One after the other: a start still running after a sibling's failure would escape the teardown.
  const server = onStarted(
    await retryOnPortConflict(() =>
      startTemporalDevServer({
        cliPath: tools.temporalCliPath,
        dbFile: join(workDir, 'temporal.db'),
        logPath: join(logDir, 'temporal.log'),
      }),
    ),
  );
  const version = await temporalCliVersion(tools.temporalCliPath);
  say(`${version} on ${server.address}, UI on 127.0.0.1:${server.uiPort}`);
  return server;
}

async function startS3(tools: ToolPaths, logDir: string, onStarted: OnStarted) {
  const server = onStarted(
    await retryOnPortConflict(() =>
      startS3Server({ motoServerPath: tools.motoServerPath, logPath: join(logDir, 'moto.log') }),
    ),
  );
  const version = await motoVersion(tools.motoServerPath);
  await createTestBucket(server, TEST_BUCKET);
  say(`moto ${version} on ${server.endpoint} (bucket ${TEST_BUCKET})`);
  return server;
}

async function startSftp(tools: ToolPaths, workDir: string, logDir: string, onStarted: OnStarted) {
  const server = onStarted(
    await retryOnPortConflict(async () =>
      startSshd({ sshdPath: tools.sshdPath, dir: await mkdtemp(join(workDir, 'sshd-')), logPath: join(logDir, 'sshd.log') }),
    ),
  );
  say(`${server.version} on ${server.host}:${server.port} (user ${server.user}, SFTP root ${server.rootDir})`);
  return server;
}

async function createKeyring(workDir: string, onStarted: OnStarted) {
  const keyring = await createTestKeyring(join(workDir, 'gpg'));
  // gpg-agent daemonizes: it is not our child, so an interrupted run stops it through gpgconf.
  const forgetAgent = onEmergencyExit(() => {
    spawnSync('gpgconf', ['--homedir', keyring.home, '--kill', 'gpg-agent'], { stdio: 'ignore' });
  });
  onStarted({
    stop: async () => {
      await stopGpgAgent(keyring.home);
      forgetAgent();
    },
  });
  say(`gnupg keyring ${keyring.home} (recipient ${keyring.recipient})`);
  return keyring;
}

async function createAssetDir(workDir: string) {
  const dir = join(workDir, 'assets');
  const files = await createSampleAssets(dir);
  say(`asset dir ${dir} (${files.length} PDF files)`);
  return dir;
}

/**
 * Starts the real services once per test run (PostgreSQL 15 with the sample ERP database,
 * the Temporal dev server, moto's S3 server, sshd with SFTP, a GnuPG test keyring and a
 * sample PDF tree), provides them to the tests as `services`, and stops them at the end.
 * The work dir stays when a test failed or KEEP_TEST_WORKDIR=1, for its logs.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const tools = loadToolPaths();
  const workDir = await mkdtemp(join(tmpdir(), 'erp4-backup-test-'));
  // The PostgreSQL server runs as the `postgres` OS user and must reach its directory.
  await chmod(workDir, 0o755);
  const logDir = join(workDir, 'logs');
  await mkdir(logDir);
  say(`work dir ${workDir}`);

  const stops: Array<() => Promise<void>> = [];
  const onStarted: OnStarted = (service) => {
    stops.push(() => service.stop());
    return service;
  };
  const teardown = async (failed: boolean): Promise<void> => {
    const results = await Promise.allSettled(stops.splice(0).map((stop) => stop()));
    for (const result of results) {
      if (result.status === 'rejected') say(`stopping a service failed: ${String(result.reason)}`);
    }
    if (failed || process.env.KEEP_TEST_WORKDIR === '1') {
      say(`kept the work dir with the service logs: ${workDir}`);
    } else {
      await rm(workDir, { recursive: true, force: true });
    }
  };

  try {
    // allSettled, not all: when one service fails, the others must finish starting before
    // the teardown, or they would be left running.
    const settled = await Promise.allSettled([
      startSampleDatabase(tools, workDir, logDir, onStarted),
      startTemporal(tools, workDir, logDir, onStarted),
      startS3(tools, logDir, onStarted),
      startSftp(tools, workDir, logDir, onStarted),
      createKeyring(workDir, onStarted),
      createAssetDir(workDir),
    ] as const);
    const failures = settled.flatMap((result) =>
      result.status === 'rejected' ? [result.reason instanceof Error ? result.reason.message : String(result.reason)] : [],
    );
    if (failures.length > 0) {
      throw new Error(`could not start the test services (logs in ${logDir}):\n${failures.join('\n\n')}`);
    }
    const postgres = valueOf(settled[0]);
    const temporal = valueOf(settled[1]);
    const s3 = valueOf(settled[2]);
    const sftp = valueOf(settled[3]);
    const gnupg = valueOf(settled[4]);
    const assetDir = valueOf(settled[5]);

    const services: Services = {
      workDir,
      postgres: {
        host: postgres.host,
        port: postgres.port,
        user: postgres.user,
        password: postgres.password,
        sampleDb: SAMPLE_DB,
        binDir: postgres.binDir,
        serverVersion: postgres.serverVersion,
      },
      assetDir,
      temporal: {
        address: temporal.address,
        namespace: temporal.namespace,
        cliPath: temporal.cliPath,
        uiPort: temporal.uiPort,
      },
      s3: {
        endpoint: s3.endpoint,
        region: s3.region,
        accessKeyId: s3.accessKeyId,
        secretAccessKey: s3.secretAccessKey,
        bucket: TEST_BUCKET,
      },
      sftp: {
        host: sftp.host,
        port: sftp.port,
        user: sftp.user,
        privateKeyPath: sftp.privateKeyPath,
        hostPublicKey: sftp.hostPublicKey,
        hostKeyFingerprint: sftp.hostKeyFingerprint,
        rootDir: sftp.rootDir,
      },
      gnupg,
    };
    project.provide('services', services);
  } catch (error) {
    await teardown(true);
    throw error;
  }

  return async () => {
    const state = project.vitest.state;
    const failed =
      state.getCountOfFailedTests() > 0 || state.getFailedFilepaths().length > 0 || state.getUnhandledErrors().length > 0;
    await teardown(failed);
  };
}

#!/usr/bin/env node
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { Client } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { loadConfig } from './config.js';
import { followBackup } from './commands/backup.js';
import { describeError } from './commands/format.js';
import { createSampleAssets } from './dev/assets.js';
import { seedSampleDatabase, startPostgres } from './dev/postgres.js';
import { isPortOpen } from './dev/processes.js';
import { startTemporalDevServer } from './dev/temporal-server.js';
import { backupIdFor } from './layout.js';
import { parseManifest } from './manifest.js';
import { createBackupRuntime } from './runtime.js';
import { openClientConnection, openNativeConnection } from './temporal/connect.js';
import { createBackupWorkers, runWorkers } from './temporal/worker.js';
import { projectRoot, loadToolPaths } from './tools.js';
import type { NightlyBackup } from '../workflows/index.js';

/**
 * `npm run demo`: one NightlyBackup end to end on this machine. It starts what is not
 * configured: the Temporal dev server with its Web UI (unless TEMPORAL_ADDRESS is set) and a
 * throwaway PostgreSQL 15 with the sample ERP database and sample PDFs (unless DB_HOST is
 * set), then a worker, then the backup; it prints where the backup went and the Web UI link.
 *
 * Interactive (a terminal on stdin) it keeps everything running for the Web UI until Ctrl-C;
 * otherwise (CI, tests, `--exit`) it stops once the backup is done. State lives in `.demo/`
 * (DEMO_DIR). The SDK's own logging is limited to warnings, so the demo's lines stand out.
 */
async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const keepRunning = process.stdin.isTTY === true && !process.argv.includes('--exit');
  const tools = loadToolPaths();
  const demoDir = process.env.DEMO_DIR ?? join(projectRoot(), '.demo');
  await mkdir(join(demoDir, 'logs'), { recursive: true });
  const stops: Array<() => Promise<void>> = [];
  const say = (line: string) => process.stdout.write(`${line}\n`);

  try {
    const env: Record<string, string | undefined> = { BACKUP_ENV: 'demo', BACKUP_DIR: join(demoDir, 'backups'), TEMPORAL_TASK_QUEUE: 'erp4-backup-demo', ...process.env };

    let webUi = process.env.TEMPORAL_UI_URL;
    if (!process.env.TEMPORAL_ADDRESS) {
      const server = await startTemporalDevServer({
        cliPath: tools.temporalCliPath,
        dbFile: join(demoDir, 'temporal.db'),
        logPath: join(demoDir, 'logs', 'temporal.log'),
        port: (await isPortOpen('127.0.0.1', 7233)) ? undefined : 7233,
        uiPort: (await isPortOpen('127.0.0.1', 8233)) ? undefined : 8233,
      });
      stops.push(() => server.stop());
      env.TEMPORAL_ADDRESS = server.address;
      webUi = `http://127.0.0.1:${server.uiPort}`;
      say(`Temporal dev server on ${server.address} (state in ${server.dbFile}), Web UI ${webUi}`);
    }

    if (!process.env.DB_HOST) {
      // The server runs as the `postgres` OS user when we are root: a world-traversable temp dir.
      const pgDir = await mkdtemp(join(tmpdir(), 'erp4-demo-pg-'));
      await chmod(pgDir, 0o755);
      const cluster = await startPostgres({ dir: join(pgDir, 'cluster'), binDir: tools.pgBinDir, logPath: join(demoDir, 'logs', 'postgres.log') });
      stops.push(async () => {
        await cluster.stop();
        await rm(pgDir, { recursive: true, force: true });
      });
      await seedSampleDatabase(cluster, 'erp4_sample');
      const assetDir = join(pgDir, 'assets');
      const pdfs = await createSampleAssets(assetDir);
      Object.assign(env, {
        DB_HOST: cluster.host,
        DB_PORT: String(cluster.port),
        DB_USER: cluster.user,
        DB_PASSWORD: cluster.password,
        DB_NAME: 'erp4_sample',
        PG_BIN_DIR: tools.pgBinDir,
        PDF_PROVIDER: 'local',
        ASSET_DIR: assetDir,
      });
      say(`throwaway PostgreSQL ${cluster.serverVersion} on ${cluster.host}:${cluster.port} with the sample ERP database and ${pdfs.length} PDF files`);
    }

    const config = loadConfig(env);
    const runtime = await createBackupRuntime(config);
    const nativeConnection = await openNativeConnection(config.temporal.connection);
    const workers = await createBackupWorkers({
      connection: nativeConnection,
      namespace: config.temporal.namespace,
      runtime,
      shutdownGraceMs: config.worker.shutdownGraceMs,
    });
    const running = runWorkers(workers);
    stops.unshift(async () => {
      for (const worker of workers) if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
      await nativeConnection.close();
    });

    const connection = await openClientConnection(config.temporal.connection);
    stops.unshift(() => connection.close());
    const client = new Client({ connection, namespace: config.temporal.namespace });
    const backupId = backupIdFor('daily', new Date());
    const workflowId = `backup-${config.env}-${backupId}`;
    const handle = await client.workflow.start<typeof NightlyBackup>('NightlyBackup', {
      taskQueue: config.temporal.taskQueue,
      workflowId,
      args: [{ kind: 'daily', backupId }],
    });
    say(`started NightlyBackup, workflow id ${workflowId}`);
    const result = await followBackup(handle, process.stdout);

    say('');
    say(`backup ${result.backupId} is complete in: ${result.repositories.join(', ')}`);
    say(`  files under ${config.local.backupDir}:`);
    const { artifacts } = parseManifest(await runtime.repositories.get('local')!.getBytes(result.manifestKey), result.manifestKey);
    for (const [name, artifact] of Object.entries(artifacts)) say(`    ${name.padEnd(8)} ${join(config.local.backupDir, artifact.key)}`);
    say(`    manifest ${join(config.local.backupDir, result.manifestKey)}`);
    say(`  read the dump: ${join(config.db.pgBinDir ?? '', 'pg_restore')} --list ${join(config.local.backupDir, artifacts.db!.key)}`);
    say(`  workflow id: ${workflowId}`);
    if (webUi) say(`  Temporal Web UI: ${webUi}/namespaces/${config.temporal.namespace}/workflows/${workflowId}`);

    if (keepRunning) {
      say('\nThe dev server, the database and the worker keep running for the Web UI; press Ctrl-C to stop.');
      await once(process, 'SIGINT');
    }
  } finally {
    for (const stop of stops) await stop().catch((error: unknown) => process.stderr.write(`demo: while stopping: ${describeError(error)}\n`));
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`demo failed: ${describeError(error)}\n`);
  process.exitCode = 1;
});

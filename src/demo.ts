#!/usr/bin/env node
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { loadConfig } from './config.js';
import { followBackup } from './commands/backup.js';
import { describeError } from './commands/format.js';
import { createSampleAssets } from './dev/assets.js';
import { approvalCommands, followDemoDrill, startDemoDrill } from './dev/demo-drill.js';
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

/** The approver of the demo's drill (RESTORE_APPROVERS), the name its printed commands use. */
const DEMO_APPROVER = { name: 'oncall', role: 'admin' };

class DemoInterrupted extends Error {}

/**
 * `npm run demo`: the product's loop end to end on this machine. It starts what is not
 * configured: the Temporal dev server with its Web UI (unless TEMPORAL_ADDRESS is set) and a
 * throwaway PostgreSQL 15 with the sample ERP database and sample PDFs (unless DB_HOST is
 * set), then a worker; then a NightlyBackup, and a RestoreDrill of that backup that waits for
 * approval. It prints the approval commands and the Web UI links; on a terminal it waits for
 * the user to approve from another terminal (`--approve`: it approves itself at once),
 * otherwise it approves itself; then it prints the drill's stored report.
 *
 * Interactive (a terminal on stdin) it keeps everything running for the Web UI until Ctrl-C;
 * otherwise (CI, tests, `--exit`) it stops once the drill is done. State lives in `.demo/`
 * (DEMO_DIR). The SDK's own logging is limited to warnings, so the demo's lines stand out.
 */
async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const interactive = process.stdin.isTTY === true;
  const keepRunning = interactive && !process.argv.includes('--exit');
  const selfApproval = !interactive ? 'approved by the demo itself (no terminal)' : process.argv.includes('--approve') ? 'approved by the demo itself (--approve)' : undefined;
  // Ctrl-C ends the demo through the `finally` below. A listener that stays (not `once`): with
  // it, src/dev/processes.ts's emergency handler (it kills the services at once) does not
  // re-raise SIGINT, which would end the process before the worker has stopped.
  let interruptedWhileRunning = false;
  const interrupted = new Promise<void>((resolve) => process.on('SIGINT', () => resolve()));
  const tools = loadToolPaths();
  const demoDir = process.env.DEMO_DIR ?? join(projectRoot(), '.demo');
  await mkdir(join(demoDir, 'logs'), { recursive: true });
  const stops: Array<() => Promise<void>> = [];
  const say = (line: string) => process.stdout.write(`${line}\n`);

  const loop = async () => {
    const env: Record<string, string | undefined> = {
      BACKUP_ENV: 'demo',
      BACKUP_DIR: join(demoDir, 'backups'),
      TEMPORAL_TASK_QUEUE: 'erp4-backup-demo',
      ...process.env,
      // The drill must wait for the approval the demo shows, from the approver its commands
      // name, and the demo's approval is the plain approve-restore signal (no signed statement).
      RESTORE_APPROVERS: `${DEMO_APPROVER.name}:${DEMO_APPROVER.role}`,
      DRILL_PREAPPROVED: 'false',
      DRILL_ACCEPT_UNSIGNED_APPROVALS: 'true',
    };

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
      // Ctrl-C has already started the workers' shutdown (the SDK's Runtime listens for SIGINT).
      for (const worker of workers) if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
      await nativeConnection.close();
    });

    const connection = await openClientConnection(config.temporal.connection);
    // After Ctrl-C mid-run, calls the client retries against the killed server are still
    // pending, and closing the channel under them throws from a timer: the process exits instead.
    stops.unshift(async () => {
      if (!interruptedWhileRunning) await connection.close();
    });
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
    const webUiLink = (id: string) => (webUi ? `${webUi}/namespaces/${config.temporal.namespace}/workflows/${id}` : undefined);
    if (webUi) say(`  Temporal Web UI: ${webUiLink(workflowId)}`);

    const approver = DEMO_APPROVER.name;
    const drill = await startDemoDrill(client, config.temporal.taskQueue, `drill-${config.env}-${backupId}`, result.backupId, 'local');
    say(`\nstarted RestoreDrill of backup ${result.backupId}, workflow id ${drill.workflowId}`);
    const commands = approvalCommands({
      workflowId: drill.workflowId,
      approver,
      comment: 'checked in the demo',
      temporalAddress: config.temporal.address,
      namespace: config.temporal.namespace,
      databaseName: config.db.database,
      projectRoot: projectRoot(),
      temporalCliPath: tools.temporalCliPath,
    });
    const drillResult = await followDemoDrill(drill, {
      approver,
      selfApproval,
      local: runtime.repositories.get('local')!,
      out: process.stdout,
      instructions: (status) => [
        `the drill waits for approve-restore from an approver in RESTORE_APPROVERS (${approver}) until ${status.approvals.deadline ?? '?'}; approve it with`,
        `  ${commands.erp4Backup}`,
        `or with the Temporal CLI:`,
        `  ${commands.temporal}`,
        ...(webUi ? [`  drill in the Temporal Web UI: ${webUiLink(drill.workflowId)}`] : []),
      ],
    });
    if (drillResult.outcome !== 'passed') process.exitCode = 1;
  };

  let looping = true;
  try {
    await Promise.race([
      loop(),
      interrupted.then(async () => {
        if (!looping) return;
        interruptedWhileRunning = true;
        throw new DemoInterrupted();
      }),
    ]);
    looping = false;
    if (keepRunning) {
      say('\nThe dev server, the database and the worker keep running for the Web UI; press Ctrl-C to stop.');
      await interrupted;
    }
  } catch (error) {
    if (!(error instanceof DemoInterrupted)) throw error;
    say('\ninterrupted (Ctrl-C): stopping');
    process.exitCode = 130;
  } finally {
    for (const stop of stops) await stop().catch((error: unknown) => process.stderr.write(`demo: while stopping: ${describeError(error)}\n`));
  }
  // The client's retries against the stopped server would keep the process alive.
  if (interruptedWhileRunning) process.exit();
}

main().catch((error: unknown) => {
  process.stderr.write(`demo failed: ${describeError(error)}\n`);
  process.exitCode = 1;
});

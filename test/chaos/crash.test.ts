import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeError } from '../../src/commands/format.js';
import { loadConfig } from '../../src/config.js';
import { backupIdFor } from '../../src/layout.js';
import { startTemporalDevServer, type TemporalDevServer } from '../../src/dev/temporal-server.js';
import { dropDatabase } from '../../src/pg/restore.js';
import type { RestoreReport } from '../../src/restore/report.js';
import { createRepositories } from '../../src/repositories.js';
import type { Repository } from '../../src/storage/repository.js';
import type { NightlyBackup, Prune, RestoreDrill } from '../../workflows/index.js';
import { approveRestoreSignal, progressQuery, type NightlyBackupInput, type RestoreResult } from '../../workflows/messages.js';
import { databasesLike, inPhase, waitForStatus } from '../helpers/drill.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { productEnv } from '../helpers/product.js';
import { services } from '../helpers/services.js';
import { startWorkerProcess, type WorkerProcess } from '../helpers/worker-process.js';
import { activityRetries, verifyVisibleBackups, viewRepositories } from './backup-checks.js';
import { createChaosDatabase, superuser } from './chaos-database.js';
import { CHAOS_SEED, recordResult, seededRandom, tally, trialCount, waitFor } from './reliability.js';

const s = services();
const HEARTBEAT_TIMEOUT_SECONDS = 5;
const input: NightlyBackupInput = { kind: 'daily', heartbeatTimeoutSeconds: HEARTBEAT_TIMEOUT_SECONDS };
const TEST_FILE = 'test/chaos/crash.test.ts';

/** Where a kill landed: the activities in flight (server side), or the workflow's own state. */
async function landing(handle: WorkflowHandle): Promise<string> {
  const description = await handle.describe();
  if (description.status.name !== 'RUNNING') return description.status.name.toLowerCase();
  const pending = (description.raw.pendingActivities ?? []).map((a) => a.activityType?.name ?? '?');
  return pending.length > 0 ? [...new Set(pending)].sort().join('+') : 'workflow task';
}

describe('NightlyBackup when its worker is SIGKILLed at random moments', () => {
  const database = `chaos_crash_${process.pid}`;
  let env: Record<string, string>;
  let repositories: Map<string, Repository>;
  let connection: Connection;
  let client: Client;
  let worker: WorkerProcess | undefined;
  /** Between the worker and S3: passes everything, except while the prune trial slows it down. */
  let s3Proxy: FaultProxy;
  const known: string[] = [];
  const workerName = `chaos-crash-worker-${process.pid}`;

  beforeAll(async () => {
    const moto = new URL(s.s3.endpoint);
    [s3Proxy] = await Promise.all([startFaultProxy({ host: moto.hostname, port: Number(moto.port) }), createChaosDatabase(s, database)]);
    env = await productEnv(s, 'chaos-crash', {
      s3: true,
      sftp: true,
      gpg: true,
      env: {
        DB_NAME: database,
        S3_ENDPOINT_URL: `http://${s3Proxy.address}`,
        S3_PRUNER_ACCESS_KEY_ID: s.s3.accessKeyId,
        S3_PRUNER_SECRET_ACCESS_KEY: s.s3.secretAccessKey,
        DRILL_PREAPPROVED: 'true',
      },
    });
    // The verdicts read the stores directly.
    repositories = createRepositories(loadConfig({ ...env, S3_ENDPOINT_URL: s.s3.endpoint }), 'reader');
    connection = await Connection.connect({ address: s.temporal.address });
    client = new Client({ connection, namespace: s.temporal.namespace });
  });
  afterAll(async () => {
    await worker?.stop();
    await s3Proxy?.close();
    await Promise.all([...(repositories?.values() ?? [])].map((r) => r.close()));
    await connection?.close();
    await dropDatabase(superuser(s), database);
  });

  const trials = trialCount({ ci: 5, chaos: 50 });

  it(`ends each of ${trials} runs with exactly one more complete, verified backup and nothing else visible`, async () => {
    const random = seededRandom(CHAOS_SEED);
    worker = await startWorkerProcess(s, env, workerName);
    // Ids have one-second resolution: each run gets its own second, without waiting for it.
    const firstSecond = Date.now();
    const start = (trial: number) =>
      client.workflow.start<typeof NightlyBackup>('NightlyBackup', {
        taskQueue: env.TEMPORAL_TASK_QUEUE!,
        workflowId: `chaos-crash-${process.pid}-${trial}-${Date.now()}`,
        args: [{ ...input, backupId: backupIdFor('daily', new Date(firstSecond + trial * 1000)) }],
      });

    // Runs without a fault give the span the random moments are drawn from: the second one (the
    // first warms the worker up: connections, clients), and a little more, so the last slice
    // reaches the manifest writes and the cleanup, and now and then the end.
    let clean = 0;
    for (const trial of [-1, 0]) {
      const startedAt = Date.now();
      known.push((await (await start(trial)).result()).backupId);
      clean = Date.now() - startedAt;
    }
    const span = clean * 1.1;
    expect(await viewRepositories(repositories, 'test')).toEqual(
      Object.fromEntries([...repositories.keys()].map((name) => [name, { ids: known, invalid: [] }])),
    );
    expect(await verifyVisibleBackups(repositories, 'test')).toEqual([]);

    const landings: string[] = [];
    const failures: string[] = [];
    let survived = 0;
    let dataLost = 0;
    for (let trial = 1; trial <= trials; trial++) {
      // Stratified: trial i dies in the i-th slice of the run, at a random point inside it,
      // so even the CI-sized loop covers the dump, the transfers and the manifest writes.
      const delay = Math.round((span * (trial - 1 + random())) / trials);
      const handle = await start(trial);
      await sleep(delay);
      const landed = await landing(handle);
      await worker.kill();
      landings.push(landed);

      // While the worker is dead: anything visible must be whole (a manifest only over complete artifacts).
      const whileDown = await verifyVisibleBackups(repositories, 'test', new Set(known));
      worker = await startWorkerProcess(s, env, workerName);
      let problems = [...whileDown];
      let lost = whileDown.length > 0;
      try {
        const result = await handle.result();
        const expected = [...known, result.backupId];
        const views = await viewRepositories(repositories, 'test');
        for (const [name, view] of Object.entries(views)) {
          if (JSON.stringify(view) !== JSON.stringify({ ids: expected, invalid: [] })) {
            problems.push(`${name} shows ${JSON.stringify(view)}, expected ${JSON.stringify(expected)}`);
            lost = true;
          }
        }
        const verification = await verifyVisibleBackups(repositories, 'test', new Set(known));
        if (verification.length > 0) lost = true;
        problems.push(...verification);
        if (existsSync(join(env.BACKUP_DIR!, '.staging', result.backupId))) problems.push(`staging of ${result.backupId} left behind`);
        known.push(result.backupId);
      } catch (error) {
        problems.push(`the run did not complete: ${(error as Error).message}`);
        lost = true;
      }
      if (problems.length === 0) survived += 1;
      else failures.push(`trial ${trial} (killed after ${delay} ms in ${landed}): ${problems.join('; ')}`);
      if (lost) dataLost += 1;
    }

    recordResult({
      id: '01-worker-sigkill',
      fault: 'Worker SIGKILLed at a random moment of a NightlyBackup (local + S3 + SFTP, OpenPGP), then restarted',
      trials,
      survived,
      dataLost,
      notes: `kills landed in: ${tally(landings)}; clean run ${(clean / 1000).toFixed(1)} s; heartbeat timeout ${HEARTBEAT_TIMEOUT_SECONDS} s`,
      test: TEST_FILE,
    });
    expect(failures).toEqual([]);
    expect(dataLost).toBe(0);
  }, 300_000 + trials * 60_000);

  const drillTrials = trialCount({ ci: 1, chaos: 10 });

  it(`a RestoreDrill whose worker is killed during pg_restore starts again from a clean scratch database and reports right (${drillTrials} trial(s))`, async () => {
    const random = seededRandom(CHAOS_SEED + 2);
    const landings: string[] = [];
    const failures: string[] = [];
    let survived = 0;
    for (let trial = 1; trial <= drillTrials; trial++) {
      const handle = await client.workflow.start<typeof RestoreDrill>('RestoreDrill', {
        taskQueue: env.TEMPORAL_TASK_QUEUE!,
        workflowId: `chaos-drill-kill-${process.pid}-${trial}-${Date.now()}`,
        args: [{ backupId: known[trial % known.length]!, repository: 's3', heartbeatTimeoutSeconds: HEARTBEAT_TIMEOUT_SECONDS }],
      });
      const status = await waitForStatus(handle, inPhase('restoring-database'), 120_000);
      await new Promise((resolve) => setTimeout(resolve, Math.round(random() * 200)));
      await worker!.kill();
      const scratch = status.database!;
      const scratchAtKill = (await databasesLike(s, scratch)).length === 1 ? 'scratch database present' : 'scratch database not yet created';
      worker = await startWorkerProcess(s, env, workerName);
      const problems: string[] = [];
      try {
        const result: RestoreResult = await handle.result();
        const retried = (await activityRetries(handle)).filter((r) => r.activity === 'restoreDatabase');
        landings.push(retried.length > 0 ? `restoreDatabase, retried (${scratchAtKill})` : 'after restoreDatabase');
        if (result.outcome !== 'passed') problems.push(`outcome ${result.outcome}`);
        const failedChecks = result.checks.filter((c) => !c.passed);
        if (failedChecks.length > 0 || !result.checks.some((c) => c.kind === 'fingerprint')) problems.push(`checks: ${JSON.stringify(result.checks)}`);
        const reportKey = result.reportKeys.find((key) => key.startsWith('s3:') && key.endsWith('.json'));
        const report = JSON.parse((await repositories.get('s3')!.getBytes(reportKey!.slice('s3:'.length))).toString('utf8')) as RestoreReport;
        if (report.outcome !== 'passed' || JSON.stringify(report.checks) !== JSON.stringify(result.checks)) problems.push(`report: ${report.outcome}`);
        if ((await databasesLike(s, scratch)).length > 0) problems.push(`scratch database ${scratch} left behind`);
      } catch (error) {
        problems.push(`the drill did not pass: ${describeError(error)}`);
      }
      if (problems.length === 0) survived += 1;
      else failures.push(`trial ${trial}: ${problems.join('; ')}`);
    }
    recordResult({
      id: '03-worker-sigkill-drill',
      fault: 'Worker SIGKILLed during a RestoreDrill\'s pg_restore into its scratch database, then restarted',
      trials: drillTrials,
      survived,
      dataLost: 0,
      notes: `kills landed in: ${tally(landings)}; each retry dropped the partial scratch database it owned and restored again; report outcome and checks equal the result's`,
      test: TEST_FILE,
    });
    expect(failures).toEqual([]);
  }, 180_000 * drillTrials);

  it('a Prune killed between deletes leaves no complete-looking backup with missing files, and the next run finishes the job', async () => {
    const random = seededRandom(CHAOS_SEED + 3);
    const s3 = repositories.get('s3')!;
    // S3_RETENTION gfs keeps the newest and the oldest of the day's backups: the others are due.
    const now = new Date(Date.now() + 2 * 86_400_000).toISOString();
    const prune = (workflowId: string, dryRun: boolean) =>
      client.workflow.start<typeof Prune>('Prune', { taskQueue: env.TEMPORAL_TASK_QUEUE!, workflowId, args: [{ repositories: ['s3'], now, dryRun }] });
    const dry = await (await prune(`chaos-prune-plan-${process.pid}-${Date.now()}`, true)).result();
    const due = dry.plans[0]!.backups.filter((b) => b.action === 'delete').map((b) => b.id);
    const kept = known.filter((id) => !due.includes(id));
    expect(due.length).toBeGreaterThanOrEqual(2);

    // Every request to S3 150 ms later: deleting takes seconds, so the kill lands between deletes.
    s3Proxy.setMode({ kind: 'delay', ms: 150 });
    const interrupted = await prune(`chaos-prune-${process.pid}-${Date.now()}`, false);
    const visibleDue = async () => (await viewRepositories(new Map([['s3', s3]]), 'test')).s3!.ids.filter((id) => due.includes(id));
    await waitFor('the first manifest to be deleted', async () => (await visibleDue()).length < due.length, 60_000, 50);
    await new Promise((resolve) => setTimeout(resolve, Math.round(random() * 500)));
    await worker!.kill();
    s3Proxy.setMode({ kind: 'pass' });
    const leftAtKill = await visibleDue();
    const problems = await verifyVisibleBackups(new Map([['s3', s3]]), 'test');

    worker = await startWorkerProcess(s, env, workerName);
    // The next scheduled run takes over (the interrupted one would resume after its heartbeat timeout).
    await interrupted.terminate('superseded by the next run');
    const next = await (await prune(`chaos-prune-next-${process.pid}-${Date.now()}`, false)).result();
    const views = await viewRepositories(new Map([['s3', s3]]), 'test');
    // Drill reports (meta/drills/<id>/) are the drills' history, not part of the backup: they stay.
    const leftovers = (await s3.list('test/')).filter((object) => !object.key.startsWith('test/meta/drills/') && due.some((id) => object.key.includes(id)));
    if (JSON.stringify(views.s3) !== JSON.stringify({ ids: kept, invalid: [] })) problems.push(`s3 shows ${JSON.stringify(views.s3)}, expected ${JSON.stringify(kept)}`);
    if (leftovers.length > 0) problems.push(`objects of pruned backups left: ${leftovers.map((o) => o.key).join(', ')}`);
    problems.push(...(await verifyVisibleBackups(new Map([['s3', s3]]), 'test')));
    const finished = next.results[0]!;
    recordResult({
      id: '04-worker-sigkill-prune',
      fault: 'Worker SIGKILLed while a Prune deletes backups from S3 (each request slowed to 150 ms), then the next Prune run',
      trials: 1,
      survived: problems.length === 0 && leftAtKill.length > 0 && leftAtKill.length < due.length ? 1 : 0,
      dataLost: problems.some((p) => !p.startsWith('objects of pruned')) ? 1 : 0,
      notes: `killed with ${due.length - leftAtKill.length} of ${due.length} due backups' manifests deleted; every backup still visible then verified; the next run deleted ${finished.deletedBackups.length} backup(s) and reaped ${finished.reapedKeys.length} orphaned artifact(s)`,
      test: TEST_FILE,
    });
    expect(leftAtKill.length, 'the kill landed between deletes').toBeGreaterThan(0);
    expect(leftAtKill.length).toBeLessThan(due.length);
    expect(problems).toEqual([]);
  }, 240_000);
});

describe('NightlyBackup when the Temporal server restarts in the middle of it', () => {
  const database = `chaos_restart_${process.pid}`;
  let server: TemporalDevServer;
  let env: Record<string, string>;
  let repositories: Map<string, Repository>;
  let worker: WorkerProcess | undefined;
  const known: string[] = [];
  const dbFile = join(s.workDir, `chaos-temporal-${process.pid}.db`);
  const logPath = join(s.workDir, 'logs', `chaos-temporal-${process.pid}.log`);

  beforeAll(async () => {
    const [dev] = await Promise.all([
      startTemporalDevServer({ cliPath: s.temporal.cliPath, dbFile, logPath, headless: true }),
      createChaosDatabase(s, database),
    ]);
    server = dev;
    env = await productEnv(s, 'chaos-restart', {
      s3: true,
      sftp: true,
      gpg: true,
      // Unsigned drill approvals: this trial is about the server restart (signatures: approvals.test.ts).
      env: { DB_NAME: database, TEMPORAL_ADDRESS: server.address, RESTORE_APPROVERS: 'alice:admin', DRILL_ACCEPT_UNSIGNED_APPROVALS: 'true' },
    });
    repositories = createRepositories(loadConfig(env), 'reader');
  });
  afterAll(async () => {
    await worker?.stop();
    await server?.stop();
    await Promise.all([...(repositories?.values() ?? [])].map((r) => r.close()));
    await dropDatabase(superuser(s), database);
  });

  const trials = trialCount({ ci: 1, chaos: 5 });

  it(`resumes and finishes the backup after the server comes back on the same SQLite file (${trials} restart(s))`, async () => {
    const random = seededRandom(CHAOS_SEED + 1);
    worker = await startWorkerProcess(s, env, `chaos-restart-worker-${process.pid}`);
    const landings: string[] = [];
    const failures: string[] = [];
    let survived = 0;
    let dataLost = 0;
    for (let trial = 1; trial <= trials; trial++) {
      await sleep(1_000);
      let connection = await Connection.connect({ address: server.address });
      let client = new Client({ connection, namespace: server.namespace });
      const workflowId = `chaos-restart-${process.pid}-${trial}-${Date.now()}`;
      const handle = await client.workflow.start<typeof NightlyBackup>('NightlyBackup', {
        taskQueue: env.TEMPORAL_TASK_QUEUE!,
        workflowId,
        args: [input],
      });
      // In the dump or in the transfers, at random: a clean run takes only a few seconds.
      const phase = random() < 0.5 ? 'dumping' : 'transferring';
      await waitFor(`phase ${phase}`, async () => {
        const progress = await handle.query(progressQuery).catch(() => undefined);
        return progress !== undefined && progress.phase !== 'planning' && (phase === 'dumping' || progress.phase !== 'dumping');
      }, 60_000, 50);
      landings.push(await landing(handle));
      await connection.close();
      await server.stop();
      await sleep(2_000);
      server = await startTemporalDevServer({ cliPath: s.temporal.cliPath, dbFile, logPath, port: server.port, headless: true });
      connection = await Connection.connect({ address: server.address });
      client = new Client({ connection, namespace: server.namespace });
      try {
        const result = await client.workflow.getHandle<typeof NightlyBackup>(workflowId).result();
        known.push(result.backupId);
        const views = await viewRepositories(repositories, 'test');
        const problems = Object.entries(views)
          .filter(([, view]) => JSON.stringify(view) !== JSON.stringify({ ids: known, invalid: [] }))
          .map(([name, view]) => `${name} shows ${JSON.stringify(view)}`);
        problems.push(...(await verifyVisibleBackups(repositories, 'test', new Set(known.slice(0, -1)))));
        if (problems.length === 0) survived += 1;
        else {
          dataLost += 1;
          failures.push(`restart ${trial}: ${problems.join('; ')}`);
        }
      } catch (error) {
        dataLost += 1;
        failures.push(`restart ${trial}: the run did not complete: ${(error as Error).message}`);
      } finally {
        await connection.close();
      }
    }
    recordResult({
      id: '02-temporal-restart',
      fault: 'Temporal dev server stopped and started again (same SQLite file) in the middle of a NightlyBackup',
      trials,
      survived,
      dataLost,
      notes: `server stopped while: ${tally(landings)}; down for 2 s`,
      test: TEST_FILE,
    });
    expect(failures).toEqual([]);
  }, 180_000 + trials * 60_000);

  it('a RestoreDrill waiting for approval survives the restart, and the approval sent after it is honoured', async () => {
    const restart = async () => {
      await server.stop();
      await sleep(2_000);
      server = await startTemporalDevServer({ cliPath: s.temporal.cliPath, dbFile, logPath, port: server.port, headless: true });
    };
    let connection = await Connection.connect({ address: server.address });
    let outcome = 'not run';
    try {
      const client = new Client({ connection, namespace: server.namespace });
      const workflowId = `chaos-restart-drill-${process.pid}-${Date.now()}`;
      const handle = await client.workflow.start<typeof RestoreDrill>('RestoreDrill', {
        taskQueue: env.TEMPORAL_TASK_QUEUE!,
        workflowId,
        args: [{ backupId: known.at(-1)!, repository: 'sftp', heartbeatTimeoutSeconds: HEARTBEAT_TIMEOUT_SECONDS }],
      });
      await waitForStatus(handle, inPhase('awaiting-approval'), 120_000);
      await connection.close();
      await restart();
      connection = await Connection.connect({ address: server.address });
      const after = new Client({ connection, namespace: server.namespace }).workflow.getHandle<typeof RestoreDrill>(workflowId);
      expect((await waitForStatus(after, inPhase('awaiting-approval'), 60_000)).approvals.satisfied).toBe(false);
      await after.signal(approveRestoreSignal, { approver: 'alice', comment: 'after the server restart' });
      const result = await after.result();
      outcome = `${result.outcome}, ${result.checks.filter((c) => c.passed).length}/${result.checks.length} checks passed`;
      expect(result.outcome).toBe('passed');
      expect(result.checks.every((c) => c.passed)).toBe(true);
    } finally {
      await connection.close();
      recordResult({
        id: '02-temporal-restart-drill',
        fault: 'Temporal dev server restarted while a RestoreDrill waits for approve-restore; the approval is sent after the restart',
        trials: 1,
        survived: outcome.startsWith('passed') ? 1 : 0,
        dataLost: 0,
        notes: `drill outcome: ${outcome}`,
        test: TEST_FILE,
      });
    }
  }, 240_000);
});

import { mkdtemp, open, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCatalog } from '../../src/catalog.js';
import { loadConfig } from '../../src/config.js';
import { backupIdFor, manifestKey } from '../../src/layout.js';
import { dropDatabase } from '../../src/pg/restore.js';
import { createRepositories } from '../../src/repositories.js';
import type { RestoreReport } from '../../src/restore/report.js';
import { LocalRepository } from '../../src/storage/local.js';
import type { Repository } from '../../src/storage/repository.js';
import type { NightlyBackup, Prune, Restore, RestoreDrill } from '../../workflows/index.js';
import { approveRestoreSignal, progressQuery, restoreStatusQuery, type NightlyBackupResult } from '../../workflows/messages.js';
import { verifyVisibleBackups, viewRepositories } from '../chaos/backup-checks.js';
import { runCli } from '../helpers/cli.js';
import { harnessDb, inPhase, waitForStatus } from '../helpers/drill.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { createApprovers, type TestApprovers } from '../helpers/approvers.js';
import { productEnv } from '../helpers/product.js';
import { services } from '../helpers/services.js';
import { startWorkerProcess, type WorkerProcess } from '../helpers/worker-process.js';

// Three worker processes on one machine, each with its own BACKUP_DIR, polling one task queue:
// three hosts (issue 12). Every host's local repository must hold only whole backups of its own,
// a host SIGKILLed in the middle of a backup must not stop it, and a production Restore keeps
// no plaintext on disk while it waits for approval (issue 14).
const s = services();
const FAST = { heartbeatTimeoutSeconds: 5, hostTimeoutSeconds: 5 };

interface Host {
  id: string;
  env: Record<string, string>;
  worker?: WorkerProcess;
  local: Repository;
}

/** Every file under `dir` (relative paths), or none when it does not exist. */
async function filesUnder(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
  } catch {
    return [];
  }
}

async function startsWith(path: string, magic: string): Promise<boolean> {
  const file = await open(path, 'r');
  try {
    const { buffer, bytesRead } = await file.read(Buffer.alloc(magic.length), 0, magic.length, 0);
    return bytesRead === magic.length && buffer.toString('latin1') === magic;
  } finally {
    await file.close();
  }
}

describe('several workers on one machine, each its own host (own BACKUP_DIR)', () => {
  const hosts: Host[] = [];
  const target = `erp4_hosts_restored_${process.pid}`;
  let assetDir: string;
  let approvers: TestApprovers;
  let s3Proxy: FaultProxy;
  let shared: Map<string, Repository>;
  let connection: Connection;
  let client: Client;
  let taskQueue: string;
  const backups: NightlyBackupResult[] = [];
  let killed: Host | undefined;
  let killedDuringRestore: Host | undefined;
  const firstSecond = Date.now();
  let nextSecond = 0;
  const nextBackupId = () => backupIdFor('daily', new Date(firstSecond + 1000 * nextSecond++));

  const backup = (extra: object = {}) =>
    client.workflow.start<typeof NightlyBackup>('NightlyBackup', {
      taskQueue,
      workflowId: `hosts-backup-${process.pid}-${nextSecond}`,
      args: [{ kind: 'daily', backupId: nextBackupId(), ...extra }],
    });
  const live = () => hosts.filter((host) => host !== killed && host !== killedDuringRestore);
  const allRepositories = () => new Map<string, Repository>([...shared, ...hosts.map((host) => [`local@${host.id}`, host.local] as const)]);

  beforeAll(async () => {
    const moto = new URL(s.s3.endpoint);
    s3Proxy = await startFaultProxy({ host: moto.hostname, port: Number(moto.port) });
    assetDir = join(await mkdtemp(join(tmpdir(), 'erp4-hosts-assets-')), 'restored');
    approvers = await createApprovers(['alice', 'bob']);
    const base = await productEnv(s, 'hosts', {
      s3: true,
      sftp: true,
      gpg: true,
      env: {
        S3_ENDPOINT_URL: `http://${s3Proxy.address}`,
        S3_PRUNER_ACCESS_KEY_ID: s.s3.accessKeyId,
        S3_PRUNER_SECRET_ACCESS_KEY: s.s3.secretAccessKey,
        RESTORE_APPROVERS: 'alice:admin,bob:management',
        RESTORE_ALLOWED_SIGNERS_FILE: approvers.allowedSignersFile,
        RESTORE_TARGET_DB: target,
        RESTORE_ASSET_DIR: assetDir,
        // Drills too wait for approval before they decrypt.
        DRILL_DECRYPT_BEFORE_APPROVAL: 'false',
        LOCAL_RETENTION: 'gfs',
      },
    });
    taskQueue = base.TEMPORAL_TASK_QUEUE!;
    for (let i = 0; i < 3; i++) {
      const env = { ...base, BACKUP_DIR: i === 0 ? base.BACKUP_DIR! : await mkdtemp(join(tmpdir(), `erp4-hosts-${i}-`)) };
      const config = loadConfig(env);
      hosts.push({ id: config.host.id, env, local: new LocalRepository({ root: config.local.backupDir }) });
    }
    expect(new Set(hosts.map((host) => host.id)).size).toBe(3);
    await Promise.all(hosts.map(async (host, i) => (host.worker = await startWorkerProcess(s, host.env, `hosts-worker-${process.pid}-${i}`))));
    // s3 and sftp; each host's local repository is its own (hosts[].local).
    shared = createRepositories(loadConfig({ ...base, S3_ENDPOINT_URL: s.s3.endpoint }), 'reader');
    await shared.get('local')!.close();
    shared.delete('local');
    connection = await Connection.connect({ address: s.temporal.address });
    client = new Client({ connection, namespace: s.temporal.namespace });
  }, 120_000);

  afterAll(async () => {
    await Promise.all(hosts.map((host) => host.worker?.stop()));
    await s3Proxy?.close();
    await approvers?.close();
    await Promise.all([...(shared?.values() ?? [])].map((repository) => repository.close()));
    await connection?.close();
    await dropDatabase(harnessDb(s), target);
    for (const host of hosts) await rm(host.env.BACKUP_DIR!, { recursive: true, force: true });
    if (assetDir) await rm(join(assetDir, '..'), { recursive: true, force: true });
  });

  it("ten backups at once: each host's local repository holds exactly the backups staged on it, and every one verifies", async () => {
    const handles = await Promise.all(Array.from({ length: 10 }, () => backup()));
    backups.push(...(await Promise.all(handles.map((handle) => handle.result()))));
    const byHost = Object.fromEntries(hosts.map((host) => [host.id, backups.filter((b) => b.host === host.id).map((b) => b.backupId).sort()]));
    expect(backups.every((b) => byHost[b.host] !== undefined)).toBe(true);
    for (const host of hosts) {
      expect((await readCatalog(host.local, 'test')).backups.map((b) => b.id), host.id).toEqual(byHost[host.id]);
    }
    const ids = backups.map((b) => b.backupId).sort();
    for (const name of shared.keys()) expect((await readCatalog(shared.get(name)!, 'test')).backups.map((b) => b.id), name).toEqual(ids);
    expect(await verifyVisibleBackups(allRepositories(), 'test')).toEqual([]);
    // The operator's commands from the issue, on the host with the most backups: `list` says
    // whose local repository it shows, `verify latest --repo local` passes.
    const busiest = [...hosts].sort((a, b) => byHost[b.id]!.length - byHost[a.id]!.length)[0]!;
    const listed = await runCli(['list', '--repo', 'local'], busiest.env);
    expect(listed.stdout).toContain(`local: ${byHost[busiest.id]!.length} complete backup(s) for env test (the local repository of host ${busiest.id}: ${busiest.env.BACKUP_DIR})`);
    const verified = await runCli(['verify', 'latest', '--repo', 'local'], busiest.env);
    expect(verified.stdout + verified.stderr).toContain(`local: backup ${byHost[busiest.id]!.at(-1)} verified`);
  }, 240_000);

  it('a host SIGKILLed in the middle of a backup and never restarted: the backup completes on another host within the bound', async () => {
    // Every S3 request 300 ms later, so the upload phase lasts long enough to be hit.
    s3Proxy.setMode({ kind: 'delay', ms: 300 });
    const handle = await backup(FAST);
    let progress = await handle.query(progressQuery);
    const deadline = Date.now() + 60_000;
    while (!(progress.phase === 'transferring' && progress.host) && Date.now() < deadline) {
      await sleep(50);
      progress = await handle.query(progressQuery);
    }
    expect(progress.phase).toBe('transferring');
    killed = hosts.find((host) => host.id === progress.host)!;
    await killed.worker!.kill();
    const killedAt = Date.now();
    s3Proxy.setMode({ kind: 'pass' });

    // While the chain starts again: whatever readers see is whole.
    expect(await verifyVisibleBackups(allRepositories(), 'test', new Set(backups.map((b) => b.backupId)))).toEqual([]);
    const result = await handle.result();
    const recoveredInMs = Date.now() - killedAt;
    expect(result.host).not.toBe(killed.id);
    expect((await handle.query(progressQuery)).hostsLost).toEqual([killed.id]);
    // README: heartbeat timeout + first retry + host timeout + sticky workflow queue (10 s) + the chain again.
    expect(recoveredInMs).toBeLessThan(45_000);
    backups.push(result);

    const survivor = hosts.find((host) => host.id === result.host)!;
    expect((await readCatalog(survivor.local, 'test')).backups.map((b) => b.id)).toContain(result.backupId);
    expect(await killed.local.stat(manifestKey({ env: 'test', prefix: 'erp4' }, result.backupId))).toBeUndefined();
    for (const name of shared.keys()) expect((await readCatalog(shared.get(name)!, 'test')).backups.map((b) => b.id), name).toContain(result.backupId);
    expect(await verifyVisibleBackups(allRepositories(), 'test')).toEqual([]);
    console.log(`several-hosts: host ${killed.id} killed in ${progress.phase}; backup completed on ${result.host} ${recoveredInMs} ms later`);
  }, 120_000);

  it('a production Restore keeps no plaintext on any host while it waits for approval, decrypts after it, and survives losing its host', async () => {
    const chosen = backups[0]!;
    const handle = await client.workflow.start<typeof Restore>('Restore', {
      taskQueue,
      workflowId: `hosts-restore-${process.pid}-${Date.now()}`,
      args: [{ backupId: chosen.backupId, repository: 's3', ...FAST }],
    });
    const waiting = await waitForStatus(handle, inPhase('awaiting-approval'));
    expect(waiting.phases.map((p) => p.phase)).toEqual(['selecting', 'downloading']);
    expect(waiting.decryption).toBeUndefined();
    // The roles plan the approvers see was read in memory.
    expect(waiting.globals?.skipped).toEqual([s.postgres.user]);
    const staged = (await Promise.all(live().map((host) => filesUnder(join(host.env.BACKUP_DIR!, '.staging'))))).flat();
    const restoreFiles = staged.filter((path) => path.includes(`${join('.staging', 'restore-')}`));
    expect(restoreFiles.map((path) => path.slice(path.lastIndexOf('/') + 1)).sort()).toEqual(['assets.stored', 'db.stored', 'globals.stored']);
    for (const path of staged) {
      expect(path.endsWith('.plain'), path).toBe(false);
      // Neither a pg_dump archive, nor a tar, nor SQL: only OpenPGP ciphertext.
      expect(await startsWith(path, 'PGDMP'), path).toBe(false);
    }

    // Its host is lost while it waits and never comes back: the approvals given meanwhile still
    // count, and the chain starts again on a live host (download and verify again, then decrypt).
    killedDuringRestore = hosts.find((host) => host.id === waiting.host)!;
    await killedDuringRestore.worker!.kill();
    await handle.signal(approveRestoreSignal, await approvers.signedFor(handle, 'alice'));
    await handle.signal(approveRestoreSignal, await approvers.signedFor(handle, 'bob'));
    const result = await handle.result();
    expect(result.outcome).toBe('passed');
    const done = await handle.query(restoreStatusQuery);
    expect(done.hostsLost).toEqual([killedDuringRestore.id]);
    expect(done.approvals.accepted.map((a) => a.approver)).toEqual(['alice', 'bob']);
    const key = result.reportKeys.find((k) => k.startsWith('s3:') && k.endsWith('.json'))!;
    const report = JSON.parse((await shared.get('s3')!.getBytes(key.slice('s3:'.length))).toString('utf8')) as RestoreReport;
    expect(report.phases.map((p) => p.phase)).toEqual([
      // The first decrypt was scheduled on the lost host and never started; the live host, already
      // approved, downloads and decrypts in one streaming pass (no second decrypting phase).
      'selecting', 'downloading', 'awaiting-approval', 'decrypting', 'downloading', 'restoring-database', 'restoring-assets', 'checking', 'cleaning-up',
    ]);
    expect(report.decryption).toMatchObject({ beforeApproval: false, host: report.host });
    expect(report.hostsLost).toEqual([killedDuringRestore.id]);
    const approvedAt = Date.parse(report.phases.find((p) => p.phase === 'awaiting-approval')!.startedAt) + report.phases.find((p) => p.phase === 'awaiting-approval')!.durationMs;
    expect(Date.parse(report.decryption!.finishedAt)).toBeGreaterThanOrEqual(approvedAt);
    expect(live().map((host) => host.id)).toContain(report.host);
  }, 120_000);

  it("a drill on the live hosts, then a Prune that reaches every live host's local repository and names the lost one", async () => {
    const drillHandle = await client.workflow.start<typeof RestoreDrill>('RestoreDrill', {
      taskQueue,
      workflowId: `hosts-drill-${process.pid}-${Date.now()}`,
      args: [{ backupId: backups.at(-1)!.backupId, repository: 'sftp', ...FAST }],
    });
    // DRILL_DECRYPT_BEFORE_APPROVAL=false: the drill, too, waits with ciphertext only.
    const waiting = await waitForStatus(drillHandle, inPhase('awaiting-approval'));
    expect(waiting.phases.map((p) => p.phase)).toEqual(['selecting', 'downloading']);
    const staged = (await Promise.all(live().map((host) => filesUnder(join(host.env.BACKUP_DIR!, '.staging'))))).flat();
    expect(staged.filter((path) => path.endsWith('.stored')).length).toBe(3);
    expect(staged.filter((path) => path.endsWith('.plain'))).toEqual([]);
    await drillHandle.signal(approveRestoreSignal, await approvers.signedFor(drillHandle, 'alice'));
    const drill = await drillHandle.result();
    expect(drill.outcome).toBe('passed');
    expect((await drillHandle.query(restoreStatusQuery)).decryption).toMatchObject({ beforeApproval: false });

    // Three more backups, all on the one live host: it then has at least three of one day to prune.
    const more = await Promise.all([backup(FAST), backup(FAST), backup(FAST)]);
    for (const result of await Promise.all(more.map((handle) => handle.result()))) {
      expect(live().map((host) => host.id)).toContain(result.host);
      backups.push(result);
    }
    const before = Object.fromEntries(await Promise.all(hosts.map(async (host) => [host.id, (await readCatalog(host.local, 'test')).backups.length] as const)));
    const pruned = await client.workflow.execute<typeof Prune>('Prune', {
      taskQueue,
      workflowId: `hosts-prune-${process.pid}-${Date.now()}`,
      args: [{ hostTimeoutSeconds: 5 }],
    });
    const localPlans = pruned.plans.filter((plan) => plan.repository === 'local');
    expect(localPlans.map((plan) => plan.host).sort()).toEqual(live().map((host) => host.id).sort());
    // The host lost during the restore still shows among the pollers (seen within 2 minutes);
    // the one lost earlier may have dropped out by now.
    expect(pruned.unreachableHosts).toContain(killedDuringRestore!.id);
    expect(pruned.unreachableHosts.every((id) => id === killed!.id || id === killedDuringRestore!.id)).toBe(true);
    // LOCAL_RETENTION=gfs keeps the newest and the oldest daily of a day: each live host deleted the others of its own.
    let deleted = 0;
    for (const host of live()) {
      const result = pruned.results.find((r) => r.repository === 'local' && r.host === host.id)!;
      const plan = localPlans.find((p) => p.host === host.id)!;
      const due = plan.backups.filter((b) => b.action === 'delete').map((b) => b.id).sort();
      expect(result.deletedBackups.sort()).toEqual(due);
      expect(plan.backups.length, host.id).toBe(before[host.id]);
      const after = (await readCatalog(host.local, 'test')).backups.map((b) => b.id);
      expect(after, host.id).toEqual(plan.backups.filter((b) => b.action === 'keep').map((b) => b.id).sort());
      expect(after.length, host.id).toBe(Math.min(before[host.id]!, 2));
      deleted += due.length;
    }
    expect(deleted).toBeGreaterThan(0);
    for (const lost of [killed!, killedDuringRestore!]) expect((await readCatalog(lost.local, 'test')).backups.length).toBe(before[lost.id]);

    // Afterwards every backup listed anywhere verifies.
    const views = await viewRepositories(allRepositories(), 'test');
    expect(Object.values(views).flatMap((view) => view.invalid)).toEqual([]);
    expect(await verifyVisibleBackups(allRepositories(), 'test')).toEqual([]);
  }, 120_000);
});

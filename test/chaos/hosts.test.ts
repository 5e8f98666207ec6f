import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCatalog } from '../../src/catalog.js';
import { loadConfig } from '../../src/config.js';
import { backupIdFor } from '../../src/layout.js';
import { dropDatabase } from '../../src/pg/restore.js';
import { createRepositories } from '../../src/repositories.js';
import { LocalRepository } from '../../src/storage/local.js';
import type { Repository } from '../../src/storage/repository.js';
import type { NightlyBackup } from '../../workflows/index.js';
import { progressQuery, type NightlyBackupInput } from '../../workflows/messages.js';
import { productEnv } from '../helpers/product.js';
import { services } from '../helpers/services.js';
import { startWorkerProcess, type WorkerProcess } from '../helpers/worker-process.js';
import { verifyVisibleBackups, viewRepositories } from './backup-checks.js';
import { createChaosDatabase, superuser } from './chaos-database.js';
import { CHAOS_SEED, recordResult, seededRandom, tally, trialCount } from './reliability.js';

const s = services();
const TEST_FILE = 'test/chaos/hosts.test.ts';
const input: NightlyBackupInput = { kind: 'daily', heartbeatTimeoutSeconds: 5, hostTimeoutSeconds: 5 };
/**
 * README's bound for these timeouts, before the chain runs again: a short step's start-to-close
 * (4 x 5 s) + its first retry (2 s) + the host timeout (5 s) + the workflow's sticky queue (10 s).
 */
const NOTICED_WITHIN_MS = (4 * 5 + 2 + 5 + 10) * 1000;

interface Host {
  id: string;
  env: Record<string, string>;
  name: string;
  worker?: WorkerProcess;
  local: Repository;
}

// Only in `npm run test:chaos` (vitest.config.ts leaves this file out of `npm test`, where
// test/e2e/several-hosts.test.ts kills a host in the middle of a backup once).
const trials = trialCount({ ci: 1, chaos: 20 });

describe('NightlyBackup with three hosts when the host running it is SIGKILLed', () => {
  const database = `chaos_hosts_${process.pid}`;
  const hosts: Host[] = [];
  let shared: Map<string, Repository>;
  let connection: Connection;
  let client: Client;
  let taskQueue: string;

  beforeAll(async () => {
    await createChaosDatabase(s, database);
    const base = await productEnv(s, 'chaos-hosts', { s3: true, sftp: true, gpg: true, env: { DB_NAME: database } });
    taskQueue = base.TEMPORAL_TASK_QUEUE!;
    for (let i = 0; i < 3; i++) {
      const env = { ...base, BACKUP_DIR: i === 0 ? base.BACKUP_DIR! : await mkdtemp(join(tmpdir(), `erp4-chaos-hosts-${i}-`)) };
      const config = loadConfig(env);
      hosts.push({ id: config.host.id, env, name: `chaos-hosts-worker-${process.pid}-${i}`, local: new LocalRepository({ root: config.local.backupDir }) });
    }
    await Promise.all(hosts.map(async (host) => (host.worker = await startWorkerProcess(s, host.env, host.name))));
    shared = createRepositories(loadConfig(base), 'reader');
    await shared.get('local')!.close();
    shared.delete('local');
    connection = await Connection.connect({ address: s.temporal.address });
    client = new Client({ connection, namespace: s.temporal.namespace });
  }, 120_000);
  afterAll(async () => {
    await Promise.all(hosts.map((host) => host.worker?.stop()));
    await Promise.all([...(shared?.values() ?? [])].map((r) => r.close()));
    await connection?.close();
    await dropDatabase(superuser(s), database);
    for (const host of hosts) await rm(host.env.BACKUP_DIR!, { recursive: true, force: true });
  });

  it(`ends each of ${trials} runs with one more complete backup, on a live host, within the bound, and nothing else visible`, async () => {
    const random = seededRandom(CHAOS_SEED + 12);
    const firstSecond = Date.now();
    const start = (trial: number): Promise<WorkflowHandle<typeof NightlyBackup>> =>
      client.workflow.start<typeof NightlyBackup>('NightlyBackup', {
        taskQueue,
        workflowId: `chaos-hosts-${process.pid}-${trial}-${Date.now()}`,
        args: [{ ...input, backupId: backupIdFor('daily', new Date(firstSecond + trial * 1000)) }],
      });
    const all = () => new Map<string, Repository>([...shared, ...hosts.map((host) => [`local@${host.id}`, host.local] as const)]);

    // A clean run gives the span the kill moments are drawn from (the first warms the workers up).
    const known: string[] = [];
    let clean = 0;
    for (const trial of [-1, 0]) {
      const startedAt = Date.now();
      known.push((await (await start(trial)).result()).backupId);
      clean = Date.now() - startedAt;
    }
    const span = clean * 1.1;
    // ... then the chain again, which takes about a clean run (twice that, for a loaded machine).
    const boundMs = NOTICED_WITHIN_MS + 2 * clean;

    const landings: string[] = [];
    const failures: string[] = [];
    const recoveries: number[] = [];
    let survived = 0;
    let dataLost = 0;
    for (let trial = 1; trial <= trials; trial++) {
      const delay = Math.round((span * (trial - 1 + random())) / trials);
      const handle = await start(trial);
      await sleep(delay);
      const progress = await handle.query(progressQuery);
      // The host running the chain; before a host is claimed, any one (it may hold the planning step).
      const victim = hosts.find((host) => host.id === progress.host) ?? hosts[Math.floor(random() * hosts.length)]!;
      landings.push(progress.host ? progress.phase : `${progress.phase} (no host yet)`);
      await victim.worker!.kill();
      const killedAt = Date.now();

      const problems = await verifyVisibleBackups(all(), 'test', new Set(known));
      let lost = problems.length > 0;
      try {
        const result = await handle.result();
        const recovery = Date.now() - killedAt;
        recoveries.push(recovery);
        if (progress.host === victim.id && !['completed', 'cleaning-up'].includes(progress.phase)) {
          // Completing "on" the killed host is right only when its part was done before the kill
          // (its local manifest written; the S3/SFTP manifests come from the shared queue).
          const finals = await handle.query(progressQuery);
          const heldByVictim = (await readCatalog(victim.local, 'test')).backups.some((b) => b.id === result.backupId);
          if (result.host === victim.id && !(heldByVictim && finals.hostsLost.length === 0)) problems.push(`completed on the killed host ${victim.id} without its local copy`);
          if (result.host !== victim.id && JSON.stringify(finals.hostsLost) !== JSON.stringify([victim.id])) problems.push(`hostsLost ${JSON.stringify(finals.hostsLost)}`);
          if (recovery > boundMs) problems.push(`completed ${recovery} ms after the kill, over the bound of ${boundMs} ms`);
          if (result.host === victim.id) landings[landings.length - 1] += ' (its part already done)';
        }
        const expected = [...known, result.backupId];
        for (const [name, view] of Object.entries(await viewRepositories(shared, 'test'))) {
          if (JSON.stringify(view) !== JSON.stringify({ ids: expected, invalid: [] })) {
            problems.push(`${name} shows ${JSON.stringify(view)}, expected ${JSON.stringify(expected)}`);
            lost = true;
          }
        }
        const holder = hosts.find((host) => host.id === result.host)!;
        if (!(await readCatalog(holder.local, 'test')).backups.some((b) => b.id === result.backupId)) {
          problems.push(`the local repository of ${holder.id} lacks ${result.backupId}`);
          lost = true;
        }
        const verification = await verifyVisibleBackups(all(), 'test', new Set(known));
        if (verification.length > 0) lost = true;
        problems.push(...verification);
        if (result.host !== victim.id && existsSync(join(holder.env.BACKUP_DIR!, '.staging', result.backupId))) problems.push(`staging of ${result.backupId} left on ${holder.id}`);
        known.push(result.backupId);
      } catch (error) {
        problems.push(`the run did not complete: ${(error as Error).message}`);
        lost = true;
      }
      // Back only after the run ended: the run had to finish without it.
      victim.worker = await startWorkerProcess(s, victim.env, victim.name);
      if (problems.length === 0) survived += 1;
      else failures.push(`trial ${trial} (killed ${victim.id} after ${delay} ms in ${landings.at(-1)}): ${problems.join('; ')}`);
      if (lost) dataLost += 1;
    }

    const slowest = Math.max(...recoveries);
    recordResult({
      id: '05-host-sigkill',
      fault: 'Three worker processes, each its own host (BACKUP_DIR); the host running a NightlyBackup SIGKILLed at a random moment and restarted only after the run ended',
      trials,
      survived,
      dataLost,
      notes:
        `kills landed in: ${tally(landings)}; clean run ${(clean / 1000).toFixed(1)} s; slowest completion after the kill ${(slowest / 1000).toFixed(1)} s ` +
        `(bound ${(boundMs / 1000).toFixed(1)} s: noticed within ${NOTICED_WITHIN_MS / 1000} s with heartbeat and host timeouts of 5 s, then the chain again); ` +
        `every host's local repository and S3/SFTP verified after each trial`,
      test: TEST_FILE,
    });
    expect(failures).toEqual([]);
    expect(dataLost).toBe(0);
  }, 300_000 + trials * 90_000);
});

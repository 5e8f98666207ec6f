import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { backupIdFor } from '../../src/layout.js';
import { dropDatabase } from '../../src/pg/restore.js';
import { createRepositories } from '../../src/repositories.js';
import type { Repository } from '../../src/storage/repository.js';
import { NightlyBackup } from '../../workflows/index.js';
import { startFaultProxy, type FaultMode, type FaultProxy } from '../helpers/fault-proxy.js';
import { productEnv, startProduct, type RunningProduct } from '../helpers/product.js';
import { services } from '../helpers/services.js';
import { activityRetries, verifyVisibleBackups, viewRepositories, watchFailedAttempts, type Retry } from './backup-checks.js';
import { createChaosDatabase, superuser } from './chaos-database.js';
import { CHAOS_SEED, recordResult, seededRandom, tally, trialCount, waitFor } from './reliability.js';

const s = services();
const HEARTBEAT_TIMEOUT_SECONDS = 5;
const TEST_FILE = 'test/chaos/network.test.ts';
const MiB = 1024 * 1024;

/**
 * One kind of network fault between the worker and a store. `mode` draws the fault's
 * parameters for a trial; `retried` says which retry in the workflow's history shows that
 * the fault was noticed and survived (undefined: the SDK's own retries may absorb it).
 */
interface NetworkFault {
  id: string;
  fault: string;
  via: 's3' | 'sftp';
  mode: (random: () => number, trial: number) => FaultMode;
  retried?: RegExp;
  /** Trials in `npm test` (default 1; chaos: 5). */
  ciTrials?: number;
  /** The fault leaves a connection hanging: it must be closed by the worker, not left open. */
  hangs?: boolean;
}

const isPut = (request: { method: string }) => request.method === 'PUT';

const FAULTS: NetworkFault[] = [
  {
    id: '10-s3-reset',
    fault: 'S3: connection reset in the middle of an upload (first 2 connections)',
    via: 's3',
    mode: (random) => ({ kind: 'reset', afterBytes: Math.round((0.1 + random() * 3) * MiB), times: 2 }),
  },
  {
    id: '11-s3-5xx',
    fault: 'S3: 503 Slow Down / 500 answers to the first 4 requests',
    via: 's3',
    mode: (random) => ({ kind: 'http-error', status: random() < 0.5 ? 503 : 500, times: 4 }),
  },
  {
    id: '12-s3-flipped-byte',
    fault: 'S3: one byte of an upload body flipped on the way to the server (a multipart part, or a whole small object)',
    via: 's3',
    // Alternately a part of the multipart db upload, and a small object sent in one PutObject.
    ciTrials: 2,
    mode: (_random, trial) => {
      const multipart = trial % 2 === 1;
      return {
        kind: 'flip-byte',
        times: 1,
        minBodyBytes: 1024,
        match: (request) => isPut(request) && request.target.includes(multipart ? 'x-id=UploadPart' : 'x-id=PutObject') && !request.target.includes('/meta/'),
      };
    },
    retried: /uploadArtifacts.*stored object does not match/i,
  },
  {
    id: '13-s3-stall',
    fault: `S3: upload stalls for good (longer than the ${HEARTBEAT_TIMEOUT_SECONDS} s heartbeat timeout)`,
    via: 's3',
    mode: (random) => ({ kind: 'stall', afterBytes: Math.round((0.5 + random() * 2) * MiB), times: 1 }),
    retried: /uploadArtifacts.*HEARTBEAT timeout/,
    hangs: true,
  },
  {
    id: '14-sftp-reset',
    fault: 'SFTP: connection reset in the middle of an upload (first 2 connections)',
    via: 'sftp',
    mode: (random) => ({ kind: 'reset', afterBytes: Math.round((0.1 + random() * 3) * MiB), times: 2 }),
    retried: /uploadArtifacts/,
  },
  {
    id: '15-sftp-stall',
    fault: `SFTP: upload stalls for good (longer than the ${HEARTBEAT_TIMEOUT_SECONDS} s heartbeat timeout)`,
    via: 'sftp',
    mode: (random) => ({ kind: 'stall', afterBytes: Math.round((0.5 + random() * 2) * MiB), times: 1 }),
    retried: /uploadArtifacts.*HEARTBEAT timeout/,
    hangs: true,
  },
];

describe('NightlyBackup through a faulty network to S3 and the SFTP host', () => {
  const database = `chaos_net_${process.pid}`;
  const proxies: Partial<Record<'s3' | 'sftp', FaultProxy>> = {};
  let product: RunningProduct;
  let repositories: Map<string, Repository>;
  const known: string[] = [];
  let trialNumber = 0;

  beforeAll(async () => {
    const moto = new URL(s.s3.endpoint);
    const [s3, sftp] = await Promise.all([
      startFaultProxy({ host: moto.hostname, port: Number(moto.port) }),
      startFaultProxy({ host: s.sftp.host, port: s.sftp.port }),
      createChaosDatabase(s, database),
    ]);
    Object.assign(proxies, { s3, sftp });
    const { S3_WRITER_ACCESS_KEY_ID: accessKeyId, S3_WRITER_SECRET_ACCESS_KEY: secretAccessKey, ...env } = await productEnv(s, 'chaos-net', {
      s3: true,
      sftp: true,
      gpg: true,
      env: { DB_NAME: database, S3_ENDPOINT_URL: `http://${s3.address}`, REMOTE_HOST: '127.0.0.1', REMOTE_PORT: String(sftp.port) },
    });
    // No dedicated write-only role: the backup reads back what it wrote. moto, unlike AWS S3,
    // does not check the SHA256 header of a request (it echoes it), so only a read-capable
    // writer can catch a flipped byte here; with a write-only role that check is the server's.
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey });
    product = await startProduct(s, env);
    // The verdict reads the stores directly, not through the faulty proxies.
    repositories = createRepositories(loadConfig({ ...env, S3_ENDPOINT_URL: s.s3.endpoint, REMOTE_PORT: String(s.sftp.port) }), 'reader');
  });
  afterAll(async () => {
    await product?.close();
    await Promise.all([...(repositories?.values() ?? [])].map((r) => r.close()));
    await Promise.all(Object.values(proxies).map((proxy) => proxy.close()));
    await dropDatabase(superuser(s), database);
  });

  for (const [index, fault] of FAULTS.entries()) {
    const trials = trialCount({ ci: fault.ciTrials ?? 1, chaos: 6 });
    it(`${fault.fault}: ${trials} trial(s) end with one more complete, verified backup`, async () => {
      const random = seededRandom(CHAOS_SEED + 100 + index);
      const proxy = proxies[fault.via]!;
      const failures: string[] = [];
      const injected: string[] = [];
      const retriesSeen: string[] = [];
      const caughtBy = new Set<string>();
      let survived = 0;
      let dataLost = 0;
      for (let trial = 1; trial <= trials; trial++) {
        trialNumber += 1;
        const before = proxy.events.length;
        proxy.setMode(fault.mode(random, trial));
        const problems: string[] = [];
        let lost = false;
        try {
          const handle = await product.client.workflow.start(NightlyBackup, {
            taskQueue: product.config.temporal.taskQueue,
            workflowId: `chaos-net-${fault.id}-${process.pid}-${trial}-${Date.now()}`,
            args: [{ kind: 'daily', heartbeatTimeoutSeconds: HEARTBEAT_TIMEOUT_SECONDS, backupId: backupIdFor('daily', new Date(Date.UTC(2030, 0, 1) + trialNumber * 1000)) }],
          });
          const watcher = watchFailedAttempts(handle);
          const result = await handle.result().finally(() => proxy.setMode({ kind: 'pass' }));
          const failedAttempts = await watcher.stop();
          const events = proxy.events.slice(before);
          injected.push(...events.map((e) => (e.kind === 'flip-byte' ? `flip-byte in ${/x-id=(\w+)/.exec(e.detail)?.[1] ?? 'a PUT'}` : e.kind)));
          if (events.length === 0) problems.push('the proxy injected no fault: the trial proves nothing');
          const retries: Retry[] = await activityRetries(handle);
          retriesSeen.push(...retries.map((r) => `${r.activity}#${r.attempt}`));
          const described = [...failedAttempts, ...retries.map((r) => `${r.activity}: ${r.lastFailure}`)];
          for (const line of described) caughtBy.add(line.replace(/erp4-\d{8}T\d{6}Z-daily/g, '<id>').slice(0, 160));
          if (fault.retried && !described.some((line) => fault.retried!.test(line))) {
            problems.push(`no retry matching ${fault.retried} in the history: ${JSON.stringify(described)}`);
          }
          if (fault.hangs) {
            // The hung attempt is cancelled by the worker's own heartbeat timer: its connection closes.
            for (const event of events) {
              await waitFor(`the stalled connection ${event.connection} to be closed by the worker`, () => !proxy.isOpen(event.connection), 60_000).catch(
                (error: Error) => problems.push(error.message),
              );
            }
          }
          const expected = [...known, result.backupId];
          for (const [name, view] of Object.entries(await viewRepositories(repositories, 'test'))) {
            if (JSON.stringify(view) !== JSON.stringify({ ids: expected, invalid: [] })) {
              problems.push(`${name} shows ${JSON.stringify(view)}, expected ${JSON.stringify(expected)}`);
              lost = true;
            }
          }
          const verification = await verifyVisibleBackups(repositories, 'test', new Set(known));
          if (verification.length > 0) lost = true;
          problems.push(...verification);
          known.push(result.backupId);
        } catch (error) {
          problems.push(`the backup did not complete: ${(error as Error).message}`);
          lost = true;
        } finally {
          proxy.setMode({ kind: 'pass' });
        }
        if (problems.length === 0) survived += 1;
        else failures.push(`trial ${trial}: ${problems.join('; ')}`);
        if (lost) dataLost += 1;
      }
      recordResult({
        id: fault.id,
        fault: fault.fault,
        trials,
        survived,
        dataLost,
        notes:
          `injected: ${tally(injected) || 'nothing'}; activity retries: ${tally(retriesSeen.map((r) => r.replace(/#\d+$/, ''))) || 'none (absorbed by the SDK)'}` +
          (caughtBy.size > 0 ? `; failed attempts said: ${[...caughtBy].slice(0, 3).join(' | ')}` : ''),
        test: TEST_FILE,
      });
      expect(failures).toEqual([]);
    }, 120_000 * trials);
  }
});

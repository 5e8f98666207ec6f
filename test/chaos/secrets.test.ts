import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropDatabase } from '../../src/pg/restore.js';
import type { NightlyBackup, RestoreDrill } from '../../workflows/index.js';
import { createSampleDatabase, productEnv } from '../helpers/product.js';
import { services } from '../helpers/services.js';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.js';
import { startWorkerProcess, type WorkerProcess } from '../helpers/worker-process.js';
import { superuser } from './chaos-database.js';
import { recordResult, waitFor } from './reliability.js';

const s = services();
const TEST_FILE = 'test/chaos/secrets.test.ts';

/** Every process's command line, as `pid: argv joined by spaces` (processes may vanish while read). */
function allCommandLines(): string[] {
  const lines: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (argv) lines.push(`${entry}: ${argv.split('\0').join(' ')}`);
    } catch {
      // exited meanwhile
    }
  }
  return lines;
}

/** A history as text: payload bytes decoded (they hold JSON), so a secret inside one would show. */
function historyText(history: unknown): string {
  // Buffers would otherwise serialize as lists of numbers (their toJSON runs before any replacer).
  const decode = (value: unknown): unknown => {
    if (value instanceof Uint8Array) return Buffer.from(value).toString('utf8');
    if (Array.isArray(value)) return value.map(decode);
    if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, decode(v)]));
    return value;
  };
  return JSON.stringify(decode(history));
}

describe('secrets never leave the worker', () => {
  const database = `chaos_secrets_${process.pid}`;
  const role = `chaos_secret_${process.pid}`;
  const secret = () => randomBytes(24).toString('base64url');
  const dbPassword = secret();
  const writerSecret = secret();
  const readerSecret = secret();
  const webhookToken = secret();
  let sshKeyLine: string;
  let gpgKeyLine: string;
  let env: Record<string, string>;
  let webhook: WebhookReceiver;
  let worker: WorkerProcess | undefined;
  let connection: Connection;
  let client: Client;
  const workerName = `chaos-secrets-worker-${process.pid}`;

  beforeAll(async () => {
    await createSampleDatabase(s, database);
    const admin = new pg.Client({ ...superuser(s) });
    await admin.connect();
    try {
      // A role of its own, so its password is a value no other process of the run could hold.
      await admin.query(`CREATE ROLE ${pg.escapeIdentifier(role)} LOGIN SUPERUSER PASSWORD ${pg.escapeLiteral(dbPassword)}`);
    } finally {
      await admin.end();
    }
    webhook = await startWebhookReceiver();
    // The longest line of each armoured/PEM key: base64 key material, unmistakable if it leaked.
    const longestLine = (path: string) => readFileSync(path, 'utf8').split('\n').sort((a, b) => b.length - a.length)[0]!;
    sshKeyLine = longestLine(s.sftp.privateKeyPath);
    gpgKeyLine = longestLine(s.gnupg.privateKeyPath);
    env = await productEnv(s, 'chaos-secrets', {
      s3: true,
      sftp: true,
      gpg: true,
      env: {
        DB_NAME: database,
        DB_USER: role,
        DB_PASSWORD: dbPassword,
        S3_WRITER_ACCESS_KEY_ID: 'AKIACHAOSWRITER',
        S3_WRITER_SECRET_ACCESS_KEY: writerSecret,
        S3_READER_ACCESS_KEY_ID: 'AKIACHAOSREADER',
        S3_READER_SECRET_ACCESS_KEY: readerSecret,
        NOTIFY_WEBHOOK_URL: `${webhook.url}/${webhookToken}`,
        DRILL_PREAPPROVED: 'true',
      },
    });
    connection = await Connection.connect({ address: s.temporal.address });
    client = new Client({ connection, namespace: s.temporal.namespace });
  });
  afterAll(async () => {
    await worker?.stop();
    await connection?.close();
    await webhook?.close();
    await dropDatabase(superuser(s), database);
    const admin = new pg.Client({ ...superuser(s) });
    await admin.connect();
    await admin.query(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(role)}`).finally(() => admin.end());
  });

  it('appear in no workflow history, no worker log line, no failure notice and no process command line', async () => {
    const secrets: Record<string, string> = {
      DB_PASSWORD: dbPassword,
      S3_WRITER_SECRET_ACCESS_KEY: writerSecret,
      S3_READER_SECRET_ACCESS_KEY: readerSecret,
      GPG_PASSPHRASE: s.gnupg.passphrase,
      'REMOTE_SSH_KEY (key material)': sshKeyLine,
      'GPG_PRIVATE_KEY_FILE (key material)': gpgKeyLine,
      'NOTIFY_WEBHOOK_URL (token)': webhookToken,
    };
    // Also their base64 forms: a payload or a log could carry bytes encoded.
    const needles = Object.entries(secrets).flatMap(([name, value]) => [
      [name, value],
      [`${name} in base64`, Buffer.from(value).toString('base64')],
    ]);
    const findSecrets = (where: string, text: string) =>
      needles.filter(([, value]) => text.includes(value!)).map(([name]) => `${name} in ${where}`);

    worker = await startWorkerProcess(s, env, workerName);
    const taskQueue = env.TEMPORAL_TASK_QUEUE!;

    // Hold a lock the dump needs, so pg_dump is certainly running while /proc is read.
    const locker = new pg.Client({ ...superuser(s), database });
    await locker.connect();
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE invoices IN ACCESS EXCLUSIVE MODE');
    const handle = await client.workflow.start<typeof NightlyBackup>('NightlyBackup', {
      taskQueue,
      workflowId: `chaos-secrets-${process.pid}-${Date.now()}`,
      args: [{ kind: 'daily' }],
    });
    const commandLines = new Set<string>();
    let snapshots = 0;
    let sawPgDump = false;
    let done = false;
    const poll = (async () => {
      while (!done) {
        const lines = allCommandLines();
        snapshots += 1;
        for (const line of lines) commandLines.add(line);
        sawPgDump ||= lines.some((line) => /pg_dump --format=custom .*--snapshot=/.test(line));
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    // pg_dump waits for the lock: look at it for a while, then let it go (the polling goes on).
    await waitFor('pg_dump to run (blocked on the lock)', () => sawPgDump, 20_000).catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await locker.query('COMMIT');
    await locker.end();
    const result = await handle.result().finally(() => (done = true));
    await poll;

    // A drill of it: the reader keys, the private key and its passphrase at work.
    const drill = await client.workflow.execute<typeof RestoreDrill>('RestoreDrill', {
      taskQueue,
      workflowId: `chaos-secrets-drill-${process.pid}-${Date.now()}`,
      args: [{ backupId: result.backupId, repository: 's3' }],
    });
    expect(drill.outcome).toBe('passed');

    // A failing run too: the error path (failure notice, error messages in the history).
    const failing = await client.workflow.start<typeof NightlyBackup>('NightlyBackup', {
      taskQueue,
      workflowId: `chaos-secrets-failing-${process.pid}-${Date.now()}`,
      args: [{ kind: 'manual' }],
    });
    await expect(failing.result()).rejects.toThrow();
    await waitFor('the failure notice', () => webhook.received.length > 0, 30_000);

    const histories: string[] = [];
    for await (const execution of client.workflow.list({ query: `TaskQueue = "${taskQueue}"` })) {
      histories.push(historyText(await client.workflow.getHandle(execution.workflowId, execution.runId).fetchHistory()));
    }
    await worker.stop();
    worker = undefined;
    const log = readFileSync(join(s.workDir, 'logs', `${workerName}.log`), 'utf8');
    const notices = JSON.stringify(webhook.received);
    const cmdlineText = [...commandLines].join('\n');

    // Controls: each place really holds the run's details, so "no secret found" means something.
    expect(histories.length).toBe(3);
    expect(histories.some((text) => text.includes(result.backupId))).toBe(true);
    expect(histories.some((text) => text.includes('a manual backup needs a label'))).toBe(true);
    expect(log).toContain('erp4-backup worker:');
    expect(log).toContain('a manual backup needs a label');
    expect(notices).toContain('a manual backup needs a label');
    expect(sawPgDump).toBe(true);
    expect(findSecrets('a planted control', `x${dbPassword}y`)).toEqual(['DB_PASSWORD in a planted control']);

    const found = [
      ...histories.flatMap((text, i) => findSecrets(`workflow history ${i + 1}`, text)),
      ...findSecrets('the worker log', log),
      ...findSecrets('the failure notice', notices),
      ...findSecrets('/proc/*/cmdline', cmdlineText),
    ];
    recordResult({
      id: '40-secrets',
      fault: 'Secrets (DB password, S3 keys, SSH key, GPG key and passphrase, webhook token) searched in every workflow history (backup, drill, failed backup), the worker log, the failure notice and /proc/*/cmdline during a backup',
      trials: 1,
      survived: found.length === 0 ? 1 : 0,
      dataLost: 0,
      notes: `${histories.length} histories, worker log ${Math.round(log.length / 1024)} KiB, 1 failure notice, ${snapshots} /proc snapshots (${commandLines.size} distinct command lines, pg_dump among them); secrets found: ${found.length === 0 ? 'none' : found.join(', ')}`,
      test: TEST_FILE,
    });
    expect(found).toEqual([]);
  });
});

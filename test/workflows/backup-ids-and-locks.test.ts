import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkflowFailedError } from '@temporalio/client';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCatalog, verifyBackup } from '../../src/catalog.js';
import { pgClientConfig } from '../../src/pg/connection.js';
import { backupIdFor } from '../../src/layout.js';
import { NightlyBackup } from '../../workflows/index.js';
import { harnessDb } from '../helpers/drill.js';
import { createSampleDatabase, productEnv, startProduct, type RunningProduct } from '../helpers/product.js';
import { services } from '../helpers/services.js';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.js';

// Issue 12 item 6 for NightlyBackup: a backup id is written once; a lock held by a migration
// cannot stall a backup for hours; a notice that cannot be sent never hides the real error.
describe('NightlyBackup: backup ids and table locks', () => {
  const s = services();
  const database = `erp4_locks_${process.pid}`;
  let product: RunningProduct;
  let webhook: WebhookReceiver;

  beforeAll(async () => {
    await createSampleDatabase(s, database);
    // A webhook that refuses every notice (a revoked token): 404.
    webhook = await startWebhookReceiver(404);
    product = await startProduct(
      s,
      await productEnv(s, 'idslocks', { assets: false, env: { DB_NAME: database, DB_LOCK_TIMEOUT: '2s', NOTIFY_WEBHOOK_URL: webhook.url } }),
    );
  });
  afterAll(async () => {
    await product?.close();
    await webhook?.close();
    const admin = new pg.Client(pgClientConfig(harnessDb(s), 'postgres'));
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(database)} WITH (FORCE)`).finally(() => admin.end());
  });

  // Ids come from the start time to the second: backups this file starts within one second must
  // not share one (the guard under test would refuse the second), so each gets its own.
  let started = 0;
  const start = (name: string, backupId = backupIdFor('daily', new Date(Date.UTC(2030, 0, 1, 0, 0, started++)))) =>
    product.client.workflow.start(NightlyBackup, {
      taskQueue: product.config.temporal.taskQueue,
      workflowId: `${name}-${Date.now()}`,
      args: [{ kind: 'daily', heartbeatTimeoutSeconds: 6, backupId }],
    });

  it('refuses a backup id that already has a complete manifest, overwriting nothing, and the refused notice does not hide that error', async () => {
    const first = await (await start('first')).result();
    const local = product.runtime.repositories.get('local')!;
    const [manifest] = (await readCatalog(local, 'test')).backups;
    expect(manifest!.id).toBe(first.backupId);
    const files = Object.values(manifest!.artifacts).map((a) => join(product.config.local.backupDir, a.key));
    const before = await Promise.all(files.map(fileState));

    const again = await start('again', first.backupId);
    const error = await again.result().then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(WorkflowFailedError);
    // The backup's own error, not the notice's "NOTIFY_WEBHOOK_URL answered 404".
    const messages = failureMessages(error);
    expect(messages).toContain(`backupId ${first.backupId} is already a complete backup in local`);
    expect(messages).not.toContain('NOTIFY_WEBHOOK_URL');
    // Refused at once (non-retryable), at planning: nothing was dumped or overwritten.
    const events = (await again.fetchHistory()).events!;
    const scheduled = events.flatMap((e) => (e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes.activityType!.name] : []));
    // Refused at planning, before any host was claimed: nothing was staged, nothing to clean up.
    expect(scheduled).toEqual(['planBackup', 'notifyBackupFailure']);
    expect(events.flatMap((e) => (e.activityTaskStartedEventAttributes ? [e.activityTaskStartedEventAttributes.attempt] : []))).toEqual([1, 1]);
    expect(await Promise.all(files.map(fileState))).toEqual(before);
    expect((await verifyBackup(local, manifest!)).every((check) => check.ok)).toBe(true);
    // The notice was attempted (and refused by the webhook).
    expect(webhook.received.some((notice) => notice.backup_id === first.backupId && notice.event === 'backup-failed')).toBe(true);
  });

  it('gives up waiting for a table held in ACCESS EXCLUSIVE mode after DB_LOCK_TIMEOUT, 3 attempts, naming the session holding it', async () => {
    const migration = await holdAccessExclusive(s, database, 'public.invoices');
    const startedAt = Date.now();
    try {
      const handle = await start('locked');
      const error = await handle.result().then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(WorkflowFailedError);
      const messages = failureMessages(error);
      expect(messages).toContain('waited DB_LOCK_TIMEOUT (2 s) for a table lock');
      expect(messages).toMatch(new RegExp(`public\\.invoices: ACCESS EXCLUSIVE held by pid ${migration.pid} \\(user ${s.postgres.user}, application "nightly-migration"`));
      expect(messages).toContain('attempt 3 of 3, not retried again');
    } finally {
      await migration.release();
    }
    // Bounded: 3 waits of 2 s plus the retry backoff, never the hours the lock might be held.
    expect(Date.now() - startedAt).toBeLessThan(60_000);
    expect((await readCatalog(product.runtime.repositories.get('local')!, 'test')).backups).toHaveLength(1);
  });

  it('completes on a retry once the lock is released', async () => {
    const migration = await holdAccessExclusive(s, database, 'public.customers');
    let released = false;
    try {
      const handle = await start('released');
      // Release while the dump waits in its second attempt: the third one gets the lock.
      for (let i = 0; i < 200 && !released; i++) {
        const pending = (await handle.describe()).raw.pendingActivities ?? [];
        if (pending.some((p) => p.activityType?.name === 'dumpDatabase' && (p.attempt ?? 1) >= 2)) {
          await migration.release();
          released = true;
        } else {
          await sleep(100);
        }
      }
      expect(released).toBe(true);
      const result = await handle.result();
      expect((await readCatalog(product.runtime.repositories.get('local')!, 'test')).backups.map((b) => b.id)).toContain(result.backupId);
    } finally {
      if (!released) await migration.release();
    }
  });
});

/** A migration's session: BEGIN; LOCK TABLE ... IN ACCESS EXCLUSIVE MODE, held until release(). */
async function holdAccessExclusive(s: ReturnType<typeof services>, database: string, table: string): Promise<{ pid: number; release(): Promise<void> }> {
  const client = new pg.Client({ ...pgClientConfig(harnessDb(s), database), application_name: 'nightly-migration' });
  await client.connect();
  await client.query('BEGIN');
  await client.query(`LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`);
  const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  return {
    pid,
    async release() {
      await client.query('ROLLBACK');
      await client.end();
    },
  };
}

async function fileState(path: string): Promise<{ path: string; mtimeMs: number; sha256: string }> {
  return { path, mtimeMs: (await stat(path)).mtimeMs, sha256: createHash('sha256').update(await readFile(path)).digest('hex') };
}

function failureMessages(error: unknown): string {
  const messages: string[] = [];
  for (let e: unknown = error; e instanceof Error; e = (e as { cause?: unknown }).cause) messages.push(e.message);
  return messages.join(' <- ');
}

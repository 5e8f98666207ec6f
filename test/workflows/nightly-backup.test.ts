import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { WorkflowFailedError } from '@temporalio/client';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCatalog, verifyBackup } from '../../src/catalog.js';
import { listCommand } from '../../src/commands/list.js';
import { pgClientConfig, type DbConnection } from '../../src/pg/connection.js';
import { computeFingerprint, listUserTables } from '../../src/pg/fingerprint.js';
import { createEmptyDatabase, dropDatabase, restoreDump } from '../../src/pg/restore.js';
import type { Manifest } from '../../src/manifest.js';
import { NightlyBackup } from '../../workflows/index.js';
import { runGpg, passphraseFile } from '../helpers/gpg.js';
import { createSampleDatabase, productEnv, startProduct, type RunningProduct } from '../helpers/product.js';
import { testS3Client } from '../helpers/s3-server.js';
import { services } from '../helpers/services.js';
import { runCommand } from '../../src/dev/processes.js';
import { startWebhookReceiver } from '../helpers/webhook-receiver.js';

const s = services();

describe('NightlyBackup to local, S3 and SFTP with OpenPGP', () => {
  const database = `nightly_${process.pid}`;
  let product: RunningProduct;
  let db: DbConnection;

  beforeAll(async () => {
    await createSampleDatabase(s, database);
    const env = await productEnv(s, 'nightly', {
      s3: true,
      sftp: true,
      gpg: true,
      env: { DB_NAME: database, CRITICAL_TABLES: 'invoices,invoice_lines' },
    });
    product = await startProduct(s, env);
    db = product.runtime.db;
  });
  afterAll(async () => {
    await product?.close();
    if (db) await dropDatabase(db, database);
  });

  const runBackup = (args: Parameters<typeof NightlyBackup>[0]) =>
    product.client.workflow.execute(NightlyBackup, {
      taskQueue: product.config.temporal.taskQueue,
      workflowId: `nightly-${args.kind}-${Date.now()}`,
      args: [args],
    });

  describe('a daily backup taken while invoices are written', () => {
    let manifest: Manifest;
    let insertedDuringBackup = 0;

    beforeAll(async () => {
      // A writer inserting invoices (with their lines) as fast as it can during the whole backup:
      // the fingerprint must still describe exactly the data in the dump.
      const writer = new pg.Client(pgClientConfig(db));
      await writer.connect();
      let writing = true;
      const writes = (async () => {
        while (writing) {
          await writer.query(`
            WITH i AS (INSERT INTO invoices (customer_id, amount, issued_at) VALUES (1, 1234.56, now()) RETURNING id)
            INSERT INTO invoice_lines (invoice_id, line_no, product_id, quantity, unit_price, amount)
            SELECT id, 1, 1, 2, 617.28, 1234.56 FROM i`);
          insertedDuringBackup += 1;
        }
      })();
      try {
        const result = await runBackup({ kind: 'daily' });
        manifest = (await readCatalog(product.runtime.repositories.get('local')!, 'test')).backups.find((b) => b.id === result.backupId)!;
      } finally {
        writing = false;
        await writes;
        await writer.end();
      }
    });

    it('is complete in every repository, and the writer really wrote during it', async () => {
      expect(insertedDuringBackup).toBeGreaterThan(0);
      for (const name of ['local', 's3', 'sftp']) {
        const catalog = await readCatalog(product.runtime.repositories.get(name)!, 'test');
        expect(catalog.backups.map((b) => b.id), name).toContain(manifest.id);
        const checks = await verifyBackup(product.runtime.repositories.get(name)!, manifest);
        expect(checks.every((c) => c.ok), `${name}: ${JSON.stringify(checks)}`).toBe(true);
      }
      expect(Object.keys(manifest.artifacts).sort()).toEqual(['assets', 'db', 'globals']);
      expect(Object.values(manifest.artifacts).every((a) => a?.encryption === 'openpgp')).toBe(true);
      expect(manifest.schemaVersion).toMatch(/^\d{14}_/);
    });

    it('decrypts with gpg; pg_restore reads it, and the restored copy matches the fingerprint exactly', async () => {
      const plainDump = join(product.config.local.backupDir, 'plain.dump');
      await gpgDecrypt(join(product.config.local.backupDir, manifest.artifacts.db!.key), plainDump);
      const list = await runCommand(join(s.postgres.binDir, 'pg_restore'), ['--list', plainDump]);
      expect(list.stdout).toContain('TABLE DATA public invoices');

      const scratch = `nightly_restored_${process.pid}`;
      await createEmptyDatabase(db, scratch);
      try {
        await restoreDump(db, scratch, plainDump, { pgBinDir: s.postgres.binDir });
        const restored = new pg.Client(pgClientConfig(db, scratch));
        await restored.connect();
        try {
          expect(await computeFingerprint(restored, await listUserTables(restored))).toEqual(manifest.fingerprint);
        } finally {
          await restored.end();
        }
      } finally {
        await dropDatabase(db, scratch);
      }
      // The source moved on during and after the dump: equality above is not a coincidence.
      const source = new pg.Client(pgClientConfig(db));
      await source.connect();
      const now = (await source.query<{ n: string }>('SELECT count(*)::text AS n FROM invoices')).rows[0]!.n;
      await source.end();
      expect(BigInt(now)).toBeGreaterThan(BigInt(manifest.fingerprint.find((t) => t.table === 'public.invoices')!.rowCount));
    });

    it('archives every PDF of ASSET_DIR', async () => {
      const plainTar = join(product.config.local.backupDir, 'plain.tar');
      await gpgDecrypt(join(product.config.local.backupDir, manifest.artifacts.assets!.key), plainTar);
      const listed = (await runCommand('tar', ['-tf', plainTar])).stdout.split('\n').filter((p) => p.endsWith('.pdf')).map((p) => p.replace(/^\.\//, ''));
      const expected = (await readdir(s.assetDir, { recursive: true })).filter((p) => p.endsWith('.pdf'));
      expect(listed.sort()).toEqual(expected.sort());
      expect(manifest.assets?.fileCount).toBe(expected.length);
    });

    it('stores every S3 object with SSE-KMS and the env, generated_at and schema_version metadata', async () => {
      const s3 = testS3Client(s.s3);
      const prefix = `${product.config.s3!.prefix}/test/`;
      const listed = await s3.send(new ListObjectsV2Command({ Bucket: s.s3.bucket, Prefix: prefix }));
      const keys = (listed.Contents ?? []).map((o) => o.Key!).filter((k) => k.includes(manifest.id));
      expect(keys.length).toBe(4);
      for (const key of keys) {
        const head = await s3.send(new HeadObjectCommand({ Bucket: s.s3.bucket, Key: key }));
        expect(head.ServerSideEncryption, key).toBe('aws:kms');
        expect(head.Metadata, key).toMatchObject({ env: 'test', generated_at: manifest.generatedAt, schema_version: manifest.schemaVersion });
      }
    });

    it('is listed by `erp4-backup list` for each repository', async () => {
      for (const name of ['local', 's3', 'sftp']) {
        let out = '';
        await listCommand(product.config, product.runtime.repositories.get(name)!, { json: false }, { write: (t: string) => ((out += t), true) } as NodeJS.WritableStream);
        expect(out, name).toContain(manifest.id);
      }
    });

    it('verify detects a flipped byte in any artifact of any repository', async () => {
      const key = manifest.artifacts.globals!.key;
      // local
      const localPath = join(product.config.local.backupDir, key);
      const original = await readFile(localPath);
      await writeFile(localPath, flipByte(original));
      // s3
      const s3 = testS3Client(s.s3);
      const s3Key = `${product.config.s3!.prefix}/${manifest.artifacts.db!.key}`;
      const body = Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: s.s3.bucket, Key: s3Key }))).Body!.transformToByteArray());
      await s3.send(new PutObjectCommand({ Bucket: s.s3.bucket, Key: s3Key, Body: flipByte(body), ServerSideEncryption: 'aws:kms', SSEKMSKeyId: 'alias/erp4-backup' }));
      // sftp (the test server's root is a local directory)
      const sftpPath = join(product.config.remote!.dir, manifest.artifacts.assets!.key);
      await writeFile(sftpPath, flipByte(await readFile(sftpPath)));

      const failed = async (name: string) =>
        (await verifyBackup(product.runtime.repositories.get(name)!, manifest)).filter((c) => !c.ok).map((c) => c.artifact);
      expect(await failed('local')).toEqual(['globals']);
      expect(await failed('s3')).toEqual(['db']);
      expect(await failed('sftp')).toEqual(['assets']);
      await writeFile(localPath, original);
      expect(await failed('local')).toEqual([]);
    });
  });

  it.each(['critical', 'weekly-full'] as const)('a %s backup holds only the important tables', async (kind) => {
    const result = await runBackup({ kind });
    const manifest = (await readCatalog(product.runtime.repositories.get('local')!, 'test')).backups.find((b) => b.id === result.backupId)!;
    expect(manifest.database.tables).toEqual(['public.invoices', 'public.invoice_lines']);
    expect(manifest.fingerprint.map((f) => f.table)).toEqual(['public.invoices', 'public.invoice_lines']);
    const plainDump = join(product.config.local.backupDir, `${kind}.dump`);
    await gpgDecrypt(join(product.config.local.backupDir, manifest.artifacts.db!.key), plainDump);
    const list = (await runCommand(join(s.postgres.binDir, 'pg_restore'), ['--list', plainDump])).stdout;
    const tables = [...list.matchAll(/TABLE DATA public (\S+)/g)].map((m) => m[1]).sort();
    expect(tables).toEqual(['invoice_lines', 'invoices']);
  });
});

describe('NightlyBackup against an SFTP host with another host key', () => {
  it('is refused, naming REMOTE_HOST, notifies the webhook and leaves no backup anywhere', async () => {
    const otherKey = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHxB2zs6jZ6EoEfyv9r0ZV2mA8C6E5Z4pV9l3m2cJ7Qe other-host';
    const webhook = await startWebhookReceiver();
    const env = await productEnv(s, 'hostkey', {
      sftp: true,
      assets: false,
      env: { REMOTE_HOST_KEY: otherKey, NOTIFY_WEBHOOK_URL: webhook.url },
    });
    const product = await startProduct(s, env);
    try {
      const run = product.client.workflow.execute(NightlyBackup, {
        taskQueue: product.config.temporal.taskQueue,
        workflowId: `hostkey-${Date.now()}`,
        args: [{ kind: 'daily' }],
      });
      const error = await run.then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(WorkflowFailedError);
      expect(failureMessages(error)).toMatch(/REMOTE_HOST/);
      expect((await readCatalog(product.runtime.repositories.get('local')!, 'test')).backups).toEqual([]);
      // Non-retryable: one attempt, one notice naming the step and the cause. Planning meets the
      // host first (it looks for an existing backup of the id in every repository): nothing is dumped.
      expect(webhook.received).toHaveLength(1);
      expect(webhook.received[0]).toMatchObject({ event: 'backup-failed', env: 'test', kind: 'daily', failed_step: 'planning' });
      expect(String(webhook.received[0]!.error)).toMatch(/REMOTE_HOST .* presented host key SHA256:/);
      expect(String(webhook.received[0]!.text)).toContain('failed at planning');
    } finally {
      await product.close();
      await webhook.close();
    }
  });
});

function flipByte(bytes: Buffer): Buffer {
  const copy = Buffer.from(bytes);
  const at = Math.floor(copy.length / 2);
  copy[at] = copy[at]! ^ 0xff;
  return copy;
}

async function gpgDecrypt(encrypted: string, output: string): Promise<void> {
  const passFile = await passphraseFile(s.gnupg);
  await runGpg(s.gnupg.home, ['--batch', '--yes', '--pinentry-mode', 'loopback', '--passphrase-file', passFile, '--output', output, '--decrypt', encrypted]);
}

function failureMessages(error: unknown): string {
  const messages: string[] = [];
  for (let e: unknown = error; e instanceof Error; e = (e as { cause?: unknown }).cause) messages.push(e.message);
  return messages.join(' <- ');
}

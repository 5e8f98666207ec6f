import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keysCommand, keysReport } from '../../src/commands/keys.js';
import { describeError } from '../../src/commands/format.js';
import { loadRecipientKeys, recipientKeyRefs, type RecipientKeyRef } from '../../src/crypto/openpgp.js';
import { manifestKey } from '../../src/layout.js';
import { parseManifest, serializeManifest } from '../../src/manifest.js';
import { scratchDatabaseName } from '../../src/restore/database.js';
import { LocalRepository } from '../../src/storage/local.js';
import { NightlyBackup, RestoreDrill } from '../../workflows/index.js';
import type { NightlyBackupResult, RestoreResult } from '../../workflows/messages.js';
import { databasesLike } from '../helpers/drill.js';
import { createTestKeyring, stopGpgAgent, type TestKeyring } from '../helpers/gpg.js';
import { productEnv, startProduct, type RunningProduct } from '../helpers/product.js';
import { services } from '../helpers/services.js';

// Key rotation end to end (issue 14 item 3): backups made under the old OpenPGP key and under a
// new primary key sit in one repository; a worker holding both keys (a directory, each key with
// its own passphrase file) restores both; a worker holding only the old key refuses the new
// backup before touching any database, naming the key id, whether the manifest records the key
// or (an older manifest) only the artifact's packets do.
describe('key rotation', () => {
  const s = services();
  let dir: string;
  let newKeyring: TestKeyring;
  let oldRef: RecipientKeyRef;
  let newRef: RecipientKeyRef;
  let oldProduct: RunningProduct;
  let rotatedProduct: RunningProduct;
  let oldBackup: NightlyBackupResult;
  let newBackup: NightlyBackupResult;
  let local: LocalRepository;

  const drill = async (product: RunningProduct, backupId: string, name: string) => {
    const workflowId = `key-rotation-${name}-${process.pid}-${Date.now()}`;
    const handle = await product.client.workflow.start(RestoreDrill, {
      taskQueue: product.config.temporal.taskQueue,
      workflowId,
      args: [{ backupId, repository: 'local', heartbeatTimeoutSeconds: 10 }],
    });
    const outcome = await handle.result().then(
      (result: RestoreResult) => ({ result, error: undefined }),
      (error: unknown) => ({ result: undefined, error }),
    );
    return { workflowId, ...outcome };
  };
  const rewriteManifestWithoutRecipients = async (backupId: string) => {
    const key = manifestKey(oldProduct.runtime.layout, backupId);
    const manifest = parseManifest(await local.getBytes(key), key);
    for (const artifact of Object.values(manifest.artifacts)) delete artifact?.recipients;
    await local.putBytes(key, serializeManifest(manifest));
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'erp4-key-rotation-'));
    newKeyring = await createTestKeyring(join(dir, 'new'));
    oldRef = (await recipientKeyRefs(await loadRecipientKeys(s.gnupg.publicKeyPath, s.gnupg.recipient)))[0]!;
    newRef = (await recipientKeyRefs(await loadRecipientKeys(newKeyring.publicKeyPath, newKeyring.recipient)))[0]!;
    expect(newRef.primaryFingerprint).not.toBe(oldRef.primaryFingerprint);

    // The rotated worker's GPG_PRIVATE_KEY_FILE: a directory with both keys, each with its passphrase.
    const keyDir = join(dir, 'private-keys');
    await mkdir(keyDir, { mode: 0o700 });
    await copyFile(s.gnupg.privateKeyPath, join(keyDir, '2025-old.asc'));
    await writeFile(join(keyDir, '2025-old.passphrase'), `${s.gnupg.passphrase}\n`, { mode: 0o600 });
    await copyFile(newKeyring.privateKeyPath, join(keyDir, '2026-new.asc'));
    await writeFile(join(keyDir, '2026-new.passphrase'), `${newKeyring.passphrase}\n`, { mode: 0o600 });

    const oldEnv = await productEnv(s, 'key-rotation-old', { gpg: true, assets: false, env: { DRILL_PREAPPROVED: 'true' } });
    oldProduct = await startProduct(s, oldEnv);
    // The same BACKUP_DIR: one repository holds the backups of both keys.
    const rotatedEnv = await productEnv(s, 'key-rotation-new', {
      gpg: true,
      assets: false,
      env: {
        BACKUP_DIR: oldEnv.BACKUP_DIR!,
        DRILL_PREAPPROVED: 'true',
        GPG_RECIPIENT: newRef.primaryFingerprint,
        GPG_PUBLIC_KEY_FILE: newKeyring.publicKeyPath,
        GPG_PRIVATE_KEY_FILE: keyDir,
        GPG_PASSPHRASE: '',
      },
    });
    rotatedProduct = await startProduct(s, rotatedEnv);
    local = new LocalRepository({ root: oldEnv.BACKUP_DIR! });

    oldBackup = await oldProduct.client.workflow.execute(NightlyBackup, {
      taskQueue: oldProduct.config.temporal.taskQueue,
      workflowId: `key-rotation-old-backup-${process.pid}-${Date.now()}`,
      args: [{ kind: 'daily' }],
    });
    newBackup = await rotatedProduct.client.workflow.execute(NightlyBackup, {
      taskQueue: rotatedProduct.config.temporal.taskQueue,
      workflowId: `key-rotation-new-backup-${process.pid}-${Date.now()}`,
      args: [{ kind: 'manual', label: 'after key rotation' }],
    });
  });

  afterAll(async () => {
    await oldProduct?.close();
    await rotatedProduct?.close();
    await local?.close();
    if (newKeyring) await stopGpgAgent(newKeyring.home);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('records in the manifest which key encrypted each artifact', async () => {
    const oldManifest = parseManifest(await local.getBytes(oldBackup.manifestKey), 'old');
    const newManifest = parseManifest(await local.getBytes(newBackup.manifestKey), 'new');
    expect(oldManifest.artifacts.db?.recipients).toEqual([oldRef]);
    expect(oldManifest.artifacts.globals?.recipients).toEqual([oldRef]);
    expect(newManifest.artifacts.db?.recipients).toEqual([newRef]);
  });

  it('keys: lists the backups whose key GPG_PRIVATE_KEY_FILE does not hold', async () => {
    const report = await keysReport(oldProduct.config, local);
    const state = Object.fromEntries(report.backups.map((b) => [b.backupId, b.state]));
    expect(state).toEqual({ [oldBackup.backupId]: 'ok', [newBackup.backupId]: 'missing' });
    expect(report.backups.find((b) => b.backupId === newBackup.backupId)?.missing).toEqual([
      { artifact: 'db', keyIds: [newRef.keyId], primaryFingerprints: [newRef.primaryFingerprint] },
      { artifact: 'globals', keyIds: [newRef.keyId], primaryFingerprints: [newRef.primaryFingerprint] },
    ]);
    const rotated = await keysReport(rotatedProduct.config, local);
    expect(rotated.backups.map((b) => b.state)).toEqual(['ok', 'ok']);

    let printed = '';
    const out = { write: (chunk: string) => ((printed += chunk), true) } as NodeJS.WritableStream;
    expect(await keysCommand(oldProduct.config, local, { json: false }, out)).toBe(false);
    expect(printed).toMatch(new RegExp(`${newBackup.backupId}\\s+KEY MISSING\\s+db: key id ${newRef.keyId} \\(primary ${newRef.primaryFingerprint}\\)`));
    expect(printed).toContain('local: 1 backup(s) whose key is not available');
    expect(await keysCommand(rotatedProduct.config, local, { json: false }, { write: () => true } as unknown as NodeJS.WritableStream)).toBe(true);
  });

  it('a worker holding only the old key refuses the new backup before touching any database, naming the new key id', async () => {
    const { workflowId, error } = await drill(oldProduct, newBackup.backupId, 'refused');
    expect(error).toBeInstanceOf(WorkflowFailedError);
    const text = describeError(error);
    expect(text).toContain(`GPG_PRIVATE_KEY_FILE: backup ${newBackup.backupId} cannot be decrypted on this worker: db is encrypted for key id ${newRef.keyId} (primary key ${newRef.primaryFingerprint})`);
    expect(text).toContain('failed at selecting');
    expect(await databasesLike(s, scratchDatabaseName(newBackup.backupId, workflowId))).toEqual([]);
  });

  it('the rotated worker restores the old backup, even from a manifest that records no key, and the new one', async () => {
    await rewriteManifestWithoutRecipients(oldBackup.backupId);
    const old = await drill(rotatedProduct, oldBackup.backupId, 'old');
    expect(old.error).toBeUndefined();
    expect(old.result?.outcome).toBe('passed');
    const fresh = await drill(rotatedProduct, newBackup.backupId, 'new');
    expect(fresh.error).toBeUndefined();
    expect(fresh.result?.outcome).toBe('passed');
  });

  it('a manifest that records no key: the key id is read from the verified artifact, still before any database', async () => {
    await rewriteManifestWithoutRecipients(newBackup.backupId);
    const { workflowId, error } = await drill(oldProduct, newBackup.backupId, 'refused-unrecorded');
    const text = describeError(error);
    expect(text).toContain(`GPG_PRIVATE_KEY_FILE: backup ${newBackup.backupId} cannot be decrypted on this worker: db is encrypted for key id ${newRef.keyId}`);
    expect(text).toContain('failed at downloading');
    expect(await databasesLike(s, scratchDatabaseName(newBackup.backupId, workflowId))).toEqual([]);
  });
});

import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCatalog } from '../../src/catalog.js';
import { runCli } from '../helpers/cli.js';
import { productEnv, startProduct, type RunningProduct } from '../helpers/product.js';
import { services } from '../helpers/services.js';

// The operator's commands, run as the built CLI in its own process against a running worker.
describe('erp4-backup backup / list / verify', () => {
  const s = services();
  let env: Record<string, string>;
  let product: RunningProduct;

  beforeAll(async () => {
    env = await productEnv(s, 'cli', { s3: true });
    product = await startProduct(s, env);
  });
  afterAll(async () => product?.close());

  it('runs a pinned manual backup with live progress, lists it in each repository and verifies it', async () => {
    const backup = await runCli(['backup', '--kind', 'manual', '--label', 'before release 2026.11', '--pin'], env);
    expect(backup.stderr).toBe('');
    expect(backup.code).toBe(0);
    expect(backup.stdout).toMatch(/started NightlyBackup manual: workflow id backup-test-\d{8}T\d{6}Z-manual/);
    expect(backup.stdout).toMatch(/\] (dumping|transferring|writing-manifest|completed)/);
    const id = /backup (\d{8}T\d{6}Z-manual) complete/.exec(backup.stdout)?.[1];
    expect(id).toBeDefined();
    // One worker: its host holds the local copy, and the output says whose local repository that is.
    expect(backup.stdout).toContain(`(local: the local repository of host ${product.config.host.id})`);

    for (const repo of ['local', 's3']) {
      const list = await runCli(['list', '--repo', repo], env);
      expect(list.code, list.stderr).toBe(0);
      expect(list.stdout).toMatch(new RegExp(`${id}\\s+manual\\s+\\S+\\s+[\\d.]+ \\w+\\s+none\\s+pinned\\s+\\S+\\s+before release 2026.11`));
      const verify = await runCli(['verify', id!, '--repo', repo], env);
      expect(verify.code, verify.stdout + verify.stderr).toBe(0);
      expect(verify.stdout).toContain(`backup ${id} verified`);
    }

    const [manifest] = (await readCatalog(product.runtime.repositories.get('local')!, 'test')).backups;
    const dbFile = join(env.BACKUP_DIR!, manifest!.artifacts.db!.key);
    const bytes = await readFile(dbFile);
    bytes[100] = bytes[100]! ^ 0x01;
    await writeFile(dbFile, bytes);
    const verify = await runCli(['verify', 'latest'], env);
    expect(verify.code).toBe(1);
    expect(verify.stdout).toContain(`MISMATCH db ${manifest!.artifacts.db!.key}: manifest says ${manifest!.artifacts.db!.size} bytes sha256 ${manifest!.artifacts.db!.sha256}`);
  });

  it.each([
    [['backup', '--kind', 'hourly'], /--kind.*hourly/],
    [['verify', '../../etc/passwd'], /backup-id.*expected a backup id/],
    [['list', '--repo', 'sftp'], /--repo sftp: not configured \(configured: local, s3\)/],
  ])('refuses %j with a message naming the argument', async (args, message) => {
    const result = await runCli(args, env);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(message);
  });

  it('fails a manual backup without a label at once, naming --label', async () => {
    const result = await runCli(['backup', '--kind', 'manual'], env);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/label: a manual backup needs a label/);
  });
});

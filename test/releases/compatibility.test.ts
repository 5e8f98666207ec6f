import { cp, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { productEnv, startProduct, type RunningProduct } from '../helpers/product.js';
import { services } from '../helpers/services.js';
import { RELEASE_DB, RELEASE_ENV } from './fixtures.js';

/**
 * Every release's backups stay readable: the local repository each release recorded
 * (`npm run record-release`, test/releases/record.ts) is listed, verified and drilled by THIS
 * release's built CLI and worker. A manifest or layout change that breaks an older backup fails here.
 */
const releasesDir = fileURLToPath(new URL('./', import.meta.url));
const releases = (await readdir(releasesDir, { withFileTypes: true })).filter((e) => e.isDirectory() && /^\d+\.\d+\.\d+$/.test(e.name)).map((e) => e.name);

it('has at least one recorded release', () => {
  expect(releases).toContain('0.1.0');
});

describe.each(releases)('a backup written by release %s', (release) => {
  const s = services();
  let env: Record<string, string>;
  let product: RunningProduct;
  let backupId: string;

  beforeAll(async () => {
    backupId = (await readFile(join(releasesDir, release, 'backup-id'), 'utf8')).trim();
    env = await productEnv(s, `release-${release}`, { assets: false, env: { BACKUP_ENV: RELEASE_ENV, DB_NAME: RELEASE_DB, DRILL_PREAPPROVED: 'true' } });
    await cp(join(releasesDir, release, 'repository'), env.BACKUP_DIR!, { recursive: true });
    product = await startProduct(s, env);
  });
  afterAll(async () => product?.close());

  it('is listed and verifies', async () => {
    const list = await runCli(['list', '--repo', 'local'], env);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`^${backupId}\\s+daily\\s`, 'm'));
    const verify = await runCli(['verify', backupId, '--repo', 'local'], env);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    expect(verify.stdout).toContain(`local: backup ${backupId} verified`);
  });

  it('passes a restore drill', async () => {
    const drill = await runCli(['drill', '--repo', 'local', '--backup', backupId], env);
    expect(drill.code, drill.stdout + drill.stderr).toBe(0);
    expect(drill.stdout).toContain(`drill passed: backup ${backupId}`);
  });
});

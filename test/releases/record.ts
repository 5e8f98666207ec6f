import { cp, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NightlyBackup } from '../../workflows/index.js';
import { createSampleDatabase, productEnv, startProduct, type RunningProduct } from '../helpers/product.js';
import { services } from '../helpers/services.js';
import { RELEASE_DB, RELEASE_ENV } from './fixtures.js';

/**
 * `npm run record-release`: keeps what THIS release writes, for every later release to read
 * (test/releases/compatibility.test.ts). Run it once per release, before tagging it; it refuses
 * to overwrite an earlier recording.
 *
 *   test/releases/<version>/repository/   a local repository with one daily backup (manifest + artifacts)
 */
const version = process.env.npm_package_version;
const releaseDir = fileURLToPath(new URL(`./${version}/`, import.meta.url));

describe(`record release ${version}`, () => {
  const s = services();
  let product: RunningProduct;

  beforeAll(async () => {
    expect(version, 'run it as `npm run record-release`').toMatch(/^\d+\.\d+\.\d+$/);
    const existing = await readdir(releaseDir).catch(() => []);
    expect(existing, `${releaseDir} exists: recordings of a release are never overwritten`).toEqual([]);
    await createSampleDatabase(s, RELEASE_DB);
    const env = await productEnv(s, 'release', { env: { BACKUP_ENV: RELEASE_ENV, DB_NAME: RELEASE_DB } });
    product = await startProduct(s, env);
  });
  afterAll(async () => product?.close());

  it('keeps a local repository holding one daily backup', async () => {
    const result = await product.client.workflow.execute(NightlyBackup, {
      taskQueue: product.config.temporal.taskQueue,
      workflowId: `release-${version}-daily`,
      args: [{ kind: 'daily' }],
    });
    const target = join(releaseDir, 'repository');
    await mkdir(target, { recursive: true });
    await cp(join(product.config.local.backupDir, RELEASE_ENV), join(target, RELEASE_ENV), { recursive: true });
    await writeFile(join(releaseDir, 'backup-id'), `${result.backupId}\n`);
  });
});

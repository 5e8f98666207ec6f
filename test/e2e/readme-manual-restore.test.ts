import { cp, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCatalog } from '../../src/catalog.js';
import { runCommand } from '../../src/dev/processes.js';
import { pgClientConfig } from '../../src/pg/connection.js';
import { computeFingerprint, listUserTables } from '../../src/pg/fingerprint.js';
import { dropDatabase } from '../../src/pg/restore.js';
import { NightlyBackup } from '../../workflows/index.js';
import { passphraseFile } from '../helpers/gpg.js';
import { productEnv, startProduct, type RunningProduct } from '../helpers/product.js';
import { services } from '../helpers/services.js';

/** The shell block between the README's manual-restore markers, with its five settings replaced. */
async function manualRestoreScript(settings: Record<string, string>): Promise<string> {
  const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
  const block = /<!-- manual-restore:begin -->\n```sh\n([\s\S]*?)```\n<!-- manual-restore:end -->/.exec(readme)?.[1];
  if (!block) throw new Error('README.md has no manual-restore block');
  let script = block;
  for (const [name, value] of Object.entries(settings)) {
    const line = new RegExp(`^${name}=\\S+`, 'm');
    if (!line.test(script)) throw new Error(`the README's manual-restore block does not set ${name}`);
    script = script.replace(line, `${name}='${value}'`);
  }
  return script;
}

// The README promises a restore with only jq, sha256sum, gpg and the PostgreSQL tools. Run its
// commands, as written, against a real encrypted backup.
describe("the README's manual restore", () => {
  const s = services();
  let product: RunningProduct;
  let work: string;

  beforeAll(async () => {
    product = await startProduct(s, await productEnv(s, 'manual', { gpg: true }));
    work = await mkdtemp(join(tmpdir(), 'manual-restore-'));
  });
  afterAll(async () => {
    await product?.close();
    await rm(work, { recursive: true, force: true });
  });

  it('restores the database and the PDF files from an encrypted backup', async () => {
    const result = await product.client.workflow.execute(NightlyBackup, {
      taskQueue: product.config.temporal.taskQueue,
      workflowId: `manual-restore-${Date.now()}`,
      args: [{ kind: 'daily' }],
    });
    const [manifest] = (await readCatalog(product.runtime.repositories.get('local')!, 'test')).backups;

    // An operator's own GnuPG home holding the private key; gpg asks for the passphrase, which a
    // test cannot type: this home's gpg.conf answers with it.
    const gnupgHome = join(work, 'gnupg');
    await cp(s.gnupg.home, gnupgHome, { recursive: true, filter: (src) => !/S\.gpg-agent/.test(src) });
    await writeFile(join(gnupgHome, 'gpg.conf'), `batch\npinentry-mode loopback\npassphrase-file ${await passphraseFile(s.gnupg)}\n`);

    const targetDb = `manual_${process.pid}`;
    const assetTarget = join(work, 'assets');
    const script = await manualRestoreScript({
      BACKUP_ID: result.backupId,
      FILES: join(product.config.local.backupDir, 'test'),
      PREFIX: 'erp4',
      TARGET_DB: targetDb,
      ASSET_TARGET: assetTarget,
    });
    const db = product.runtime.db;
    try {
      await runCommand('bash', ['-c', script], {
        env: {
          PATH: `${s.postgres.binDir}:${process.env.PATH}`,
          HOME: work,
          GNUPGHOME: gnupgHome,
          PGHOST: db.host,
          PGPORT: String(db.port),
          PGUSER: db.user,
          PGPASSWORD: db.password,
        },
      });
      const restored = new pg.Client(pgClientConfig(db, targetDb));
      await restored.connect();
      try {
        expect(await computeFingerprint(restored, await listUserTables(restored))).toEqual(manifest!.fingerprint);
      } finally {
        await restored.end();
      }
      const restoredPdfs = (await readdir(assetTarget, { recursive: true })).filter((p) => p.endsWith('.pdf'));
      expect(restoredPdfs.length).toBe(manifest!.assets!.fileCount);
    } finally {
      await dropDatabase(db, targetDb);
    }
  });
});

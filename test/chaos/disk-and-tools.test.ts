import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropDatabase } from '../../src/pg/restore.js';
import { runCli } from '../helpers/cli.js';
import { runCommand } from '../../src/dev/processes.js';
import { productEnv } from '../helpers/product.js';
import { services } from '../helpers/services.js';
import { createChaosDatabase, superuser } from './chaos-database.js';
import { startTestProduct, type TestProduct } from './products.js';
import { expectCleanRefusal, filesUnder } from './refusals.js';
import { recordResult } from './reliability.js';

const s = services();
const TEST_FILE = 'test/chaos/disk-and-tools.test.ts';

/** expectCleanRefusal, recorded as a row of docs/RELIABILITY.md either way. */
async function refusalRow(product: TestProduct, row: { id: string; fault: string; message: RegExp }): Promise<void> {
  let outcome = 'the backup was not refused as expected';
  let survived = 0;
  try {
    outcome = await expectCleanRefusal(product, row.message);
    survived = 1;
  } finally {
    recordResult({ id: row.id, fault: row.fault, trials: 1, survived, dataLost: 0, notes: `message: ${outcome.slice(0, 300)}`, test: TEST_FILE });
  }
}

describe('a staging area on a disk that fills up', () => {
  const database = `chaos_disk_${process.pid}`;
  let mountPoint: string;
  let product: TestProduct | undefined;

  beforeAll(async () => {
    mountPoint = await mkdtemp(join(tmpdir(), 'erp4-full-disk-'));
    // 2 MiB: less than the ~6 MiB dump of the chaos database.
    await runCommand('mount', ['-t', 'tmpfs', '-o', 'size=2m,mode=0700', 'tmpfs', mountPoint]);
    await createChaosDatabase(s, database);
  });
  afterAll(async () => {
    await product?.close();
    await runCommand('umount', [mountPoint]).catch(() => undefined);
    await rm(mountPoint, { recursive: true, force: true });
    await dropDatabase(superuser(s), database);
  });

  it('fails at once naming BACKUP_DIR and the full directory, and leaves no partial backup', async () => {
    product = await startTestProduct(s, await productEnv(s, 'chaos-disk', { env: { DB_NAME: database, BACKUP_DIR: mountPoint } }));
    await refusalRow(product, {
      id: '20-disk-full',
      fault: 'BACKUP_DIR on a disk with too little space (2 MiB tmpfs)',
      message: new RegExp(`BACKUP_DIR is full: no space left on the file system holding ${mountPoint}/\\.staging/`),
    });
  });
});

describe('PostgreSQL client tools missing or of the wrong major version', () => {
  let binDirs: string;
  const products: TestProduct[] = [];

  beforeAll(async () => {
    binDirs = await mkdtemp(join(tmpdir(), 'erp4-pg-bin-'));
  });
  afterAll(async () => {
    await Promise.all(products.map((p) => p.close()));
    await rm(binDirs, { recursive: true, force: true });
  });

  it('a PG_BIN_DIR without pg_dump stops the worker at start, saying what to install', async () => {
    const empty = join(binDirs, 'empty');
    await mkdir(empty);
    const env = await productEnv(s, 'chaos-no-pgdump', { env: { PG_BIN_DIR: empty } });
    const result = await runCli(['worker'], { ...env, TEMPORAL_ADDRESS: '127.0.0.1:1' });
    recordResult({
      id: '21-no-pg-dump',
      fault: 'pg_dump missing (PG_BIN_DIR without it)',
      trials: 1,
      survived: result.code === 2 && /PG_BIN_DIR: .*holds no executable pg_dump: install the PostgreSQL client tools/.test(result.stderr) ? 1 : 0,
      dataLost: 0,
      notes: `the worker refuses to start: ${result.stderr.trim().split('\n').slice(0, 2).join(' ').slice(0, 300)}`,
      test: TEST_FILE,
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/PG_BIN_DIR: .*holds no executable pg_dump: install the PostgreSQL client tools of the server's major version/);
    expect(await filesUnder(env.BACKUP_DIR!)).toEqual([]);
  });

  it('a PG_BIN_DIR without pg_dumpall fails the backup at once, saying what to install', async () => {
    const partial = join(binDirs, 'partial');
    await mkdir(partial);
    await symlink(join(s.postgres.binDir, 'pg_dump'), join(partial, 'pg_dump'));
    const product = await startTestProduct(s, await productEnv(s, 'chaos-no-pgdumpall', { env: { PG_BIN_DIR: partial } }));
    products.push(product);
    await refusalRow(product, {
      id: '22-no-pg-dumpall',
      fault: 'pg_dumpall missing at run time',
      message: /pg_dumpall not found at .*\/partial\/pg_dumpall: install the PostgreSQL client tools of the server's major version \(Debian\/Ubuntu: apt-get install postgresql-client-15\)/,
    });
  });

  it('a pg_dump of an older major version than the server fails the backup at once, naming both versions', async () => {
    const old = join(binDirs, 'old');
    await mkdir(old);
    const fake = join(old, 'pg_dump');
    await writeFile(fake, '#!/bin/sh\necho "pg_dump (PostgreSQL) 13.0"\n');
    await chmod(fake, 0o755);
    for (const tool of ['pg_dumpall', 'pg_restore', 'psql']) await symlink(join(s.postgres.binDir, tool), join(old, tool));
    const product = await startTestProduct(s, await productEnv(s, 'chaos-old-pgdump', { env: { PG_BIN_DIR: old } }));
    products.push(product);
    await refusalRow(product, {
      id: '23-pg-dump-13',
      fault: 'pg_dump of major version 13 against a PostgreSQL 15 server',
      message: /pg_dump is version 13 but the server is 15: pg_dump cannot dump a newer server; install the PostgreSQL client tools of the server's major version \(Debian\/Ubuntu: apt-get install postgresql-client-15\)/,
    });
  });
});

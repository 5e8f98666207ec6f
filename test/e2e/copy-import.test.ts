import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { create as createTar } from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCatalog } from '../../src/catalog.js';
import { loadConfig } from '../../src/config.js';
import { manifestKey } from '../../src/layout.js';
import { pgClientConfig } from '../../src/pg/connection.js';
import { openRepository } from '../../src/repositories.js';
import type { RestoreReport } from '../../src/restore/report.js';
import type { Repository } from '../../src/storage/repository.js';
import { runCli } from '../helpers/cli.js';
import { harnessDb } from '../helpers/drill.js';
import { productEnv, startProduct, type RunningProduct } from '../helpers/product.js';
import { services } from '../helpers/services.js';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));

/**
 * `copy` and `import`, run as the built CLI. The backups are taken while S3 and the remote host
 * are out of reach (the worker runs with the local repository only, as an operator does when S3
 * is down at 02:00); `copy` then brings them to S3 and SFTP. `import` brings in a real
 * `pg_dump -Fc` file made outside the product, and a drill restores it.
 */
describe('erp4-backup copy / import', () => {
  const s = services();
  let full: Record<string, string>;
  let localOnly: Record<string, string>;
  let assetDir: string;
  let product: RunningProduct;
  const opened: Repository[] = [];
  const repo = (name: string) => {
    const repository = openRepository(loadConfig(full), 'reader', name)!;
    opened.push(repository);
    return repository;
  };

  beforeAll(async () => {
    assetDir = await mkdtemp(join(tmpdir(), 'erp4-copy-assets-'));
    await cp(s.assetDir, assetDir, { recursive: true });
    full = await productEnv(s, 'copyimport', { s3: true, sftp: true, env: { ASSET_DIR: assetDir, DRILL_PREAPPROVED: 'true', TIME_ZONE: 'Asia/Tokyo' } });
    localOnly = Object.fromEntries(Object.entries(full).filter(([name]) => !/^(S3_|SSE_|REMOTE_)/.test(name)));
    product = await startProduct(s, localOnly);
  });
  afterAll(async () => {
    await Promise.all(opened.map((r) => r.close()));
    await product?.close();
  });

  const backup = async (label: string) => {
    const result = await runCli(['backup', '--kind', 'manual', '--label', label], localOnly);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    return /backup (\d{8}T\d{6}Z-manual) complete/.exec(result.stdout)![1]!;
  };

  it('copies a backup taken with S3 down to S3 and SFTP, verified there; a re-run copies nothing', async () => {
    const id = await backup('taken while S3 was down');
    expect((await readCatalog(repo('s3'), 'test')).backups).toEqual([]);
    const [local] = (await readCatalog(repo('local'), 'test')).backups;

    for (const target of ['s3', 'sftp']) {
      const copy = await runCli(['copy', '--from', 'local', '--to', target], full);
      expect(copy.code, copy.stdout + copy.stderr).toBe(0);
      expect(copy.stdout).toContain(`[1/1] copying ${id} to ${target}`);
      expect(copy.stdout).toMatch(/ {2}db: [\d.]+ \w+ of [\d.]+ \w+ \(100%\)/);
      expect(copy.stdout).toContain(`read back from ${target}: every artifact matches the manifest's sha256`);
      expect(copy.stdout).toContain(`local -> ${target}: 1 copied, 0 already there, 0 conflicting, 0 failed`);
      // Same id, same bytes: the target's manifest is the local one.
      const [copied] = (await readCatalog(repo(target), 'test')).backups;
      expect(copied).toEqual(local);
      const verify = await runCli(['verify', id, '--repo', target], full);
      expect(verify.code, verify.stdout + verify.stderr).toBe(0);
      expect(verify.stdout).toContain(`${target}: backup ${id} verified`);
    }

    const key = manifestKey({ env: 'test', prefix: 'erp4' }, id);
    const before = await repo('s3').stat(key);
    const again = await runCli(['copy', '--to', 's3'], full);
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(again.stdout).toContain(`${id}: already there`);
    expect(again.stdout).toContain('local -> s3: 0 copied, 1 already there, 0 conflicting, 0 failed');
    expect(again.stdout).not.toContain('copying');
    expect(await repo('s3').stat(key)).toEqual(before);
  });

  it('finishes an interrupted copy on the next run', async () => {
    // A large file, so the copy is still moving the assets when it is killed.
    await writeFile(join(assetDir, 'scan-archive.pdf'), randomBytes(24 * 1024 * 1024));
    const id = await backup('before an interrupted copy');
    const manifest = (await readCatalog(repo('local'), 'test')).backups.find((b) => b.id === id)!;

    const child = spawn(process.execPath, [CLI, 'copy', '--to', 's3'], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...full }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        stdout += chunk;
        if (/ {2}assets: .* \((\d|[1-9]\d)%\)/.test(stdout)) {
          child.kill('SIGKILL');
          resolve();
        }
      });
      child.once('close', () => reject(new Error(`copy ended before it could be interrupted:\n${stdout}`)));
    });
    await new Promise((resolve) => child.once('close', resolve));
    // Killed mid-copy: artifacts may be there, the manifest is not, so the backup does not exist in S3.
    expect(await repo('s3').stat(manifestKey({ env: 'test', prefix: 'erp4' }, id))).toBeUndefined();
    expect(await repo('s3').stat(manifest.artifacts.db!.key)).toBeDefined();
    expect((await readCatalog(repo('s3'), 'test')).backups.map((b) => b.id)).not.toContain(id);

    const resumed = await runCli(['copy', '--to', 's3'], full);
    expect(resumed.code, resumed.stdout + resumed.stderr).toBe(0);
    expect(resumed.stdout).toContain(`${id}: copied`);
    expect(resumed.stdout).toContain('local -> s3: 1 copied, 1 already there, 0 conflicting, 0 failed');
    const verify = await runCli(['verify', id, '--repo', 's3'], full);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  });

  it.each([
    ['a repository that is not configured', ['copy', '--to', 's3-copy'], () => full, /--to s3-copy: repository not configured \(configured: local, s3, sftp\)/],
    ['S3 when this host has no S3 settings', ['copy', '--to', 's3'], () => localOnly, /--to s3: repository not configured \(configured: local\)/],
    ['the source as the target', ['copy', '--from', 'sftp', '--to', 'sftp'], () => full, /--to sftp: the same repository as --from/],
  ])('refuses a copy to %s, naming it', async (_what, args, env, message) => {
    const result = await runCli(args, env());
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(message);
  });

  describe('import', () => {
    let legacyDir: string;
    const pgEnv = () => ({ PATH: process.env.PATH, PGPASSWORD: s.postgres.password, TZ: 'Asia/Tokyo' });
    const pgArgs = () => ['-h', s.postgres.host, '-p', String(s.postgres.port), '-U', s.postgres.user];

    beforeAll(async () => {
      // The old scripts' output, inside BACKUP_DIR as S19 requires.
      legacyDir = join(full.BACKUP_DIR!, 'legacy');
      await mkdir(join(legacyDir, 'files', 'invoices'), { recursive: true });
    });

    it('imports a real pg_dump -Fc file with its roles and files, marked not verified against its source, and a drill restores it', async () => {
      const dumpedAt = Date.now();
      await run(join(s.postgres.binDir, 'pg_dump'), [...pgArgs(), '-Fc', '-f', join(legacyDir, 'erp4-old.dump'), s.postgres.sampleDb], { env: pgEnv() });
      await run(join(s.postgres.binDir, 'pg_dumpall'), [...pgArgs(), '--globals-only', '-f', join(legacyDir, 'erp4-old-globals.sql')], { env: pgEnv() });
      await writeFile(join(legacyDir, 'files', 'invoices', 'INV-1.pdf'), '%PDF-1.4 one');
      await writeFile(join(legacyDir, 'files', 'INV-2.pdf'), '%PDF-1.4 two!');
      await createTar({ cwd: join(legacyDir, 'files'), file: join(legacyDir, 'erp4-old-assets.tar'), portable: true }, ['.']);
      const env = {
        ...full,
        BACKUP_FILE: 'legacy/erp4-old.dump',
        BACKUP_GLOBALS_FILE: 'legacy/erp4-old-globals.sql',
        BACKUP_ASSETS_FILE: 'legacy/erp4-old-assets.tar',
      };

      const imported = await runCli(['import'], env);
      expect(imported.code, imported.stdout + imported.stderr).toBe(0);
      const id = /as backup (\d{8}T\d{6}Z-manual) into local/.exec(imported.stdout)?.[1];
      expect(id, imported.stdout).toBeDefined();
      expect(imported.stdout).toContain('not verified against its source');
      const manifest = (await readCatalog(repo('local'), 'test')).backups.find((b) => b.id === id)!;
      // pg_dump wrote its wall clock in Asia/Tokyo: read in TIME_ZONE, it is the moment the dump ran.
      expect(Math.abs(Date.parse(manifest.generatedAt) - dumpedAt)).toBeLessThan(60_000);
      expect(manifest).toMatchObject({
        kind: 'manual',
        label: 'imported erp4-old.dump',
        fingerprint: [],
        database: { name: s.postgres.sampleDb, serverVersion: expect.stringMatching(/^15\./), pgDumpVersion: expect.stringMatching(/^15\./) },
        assets: { fileCount: 2, bytes: 25 },
        imported: { file: 'erp4-old.dump', size: (await readFile(join(legacyDir, 'erp4-old.dump'))).length },
      });
      expect(Object.keys(manifest.artifacts).sort()).toEqual(['assets', 'db', 'globals']);

      const again = await runCli(['import'], env);
      expect(again.code, again.stdout + again.stderr).toBe(0);
      expect(again.stdout).toContain(`was imported before as backup ${id}: nothing changed`);

      const list = await runCli(['list'], full);
      expect(list.stdout).toMatch(new RegExp(`${id}\\s+manual.*imported erp4-old.dump \\[imported: not verified against its source\\]`));

      const drill = await runCli(['drill', '--backup', id!, '--repo', 'local'], full);
      expect(drill.code, drill.stdout + drill.stderr).toBe(0);
      expect(drill.stdout).toContain(`drill passed: backup ${id}`);
      const local = repo('local');
      const reportKey = (await local.list(`test/meta/drills/${id}/`)).map((o) => o.key).find((k) => k.endsWith('.json'))!;
      const report = JSON.parse((await local.getBytes(reportKey)).toString('utf8')) as RestoreReport;
      const client = new pg.Client(pgClientConfig(harnessDb(s)));
      await client.connect();
      const customers = (await client.query<{ n: string }>('SELECT count(*) AS n FROM customers')).rows[0]!.n;
      await client.end();
      const recorded = report.checks.find((c) => c.kind === 'fingerprint' && c.name === 'public.customers');
      expect(recorded).toMatchObject({
        expected: 'not verified against its source: imported from erp4-old.dump, no fingerprint',
        actual: expect.stringMatching(new RegExp(`^rows ${customers}(;|$)`)),
        passed: true,
      });
      expect(report.checks).toContainEqual(expect.objectContaining({ kind: 'assets', expected: '2 files, 25 bytes', actual: '2 files, 25 bytes', passed: true }));

      // The imported backup goes off-site like any other.
      const copy = await runCli(['copy', '--to', 'sftp', '--backup', id!], full);
      expect(copy.code, copy.stdout + copy.stderr).toBe(0);
      expect(copy.stdout).toContain(`${id}: copied`);
    });

    it.each([
      ['a plain SQL dump', 'plain.sql', async (path: string) => run(join(s.postgres.binDir, 'pg_dump'), [...pgArgs(), '-Fp', '-f', path, s.postgres.sampleDb], { env: pgEnv() }), /BACKUP_FILE: .*plain\.sql is a plain SQL script, not a pg_dump custom-format archive/],
      ['a PDF', 'invoice.pdf', async (path: string) => writeFile(path, '%PDF-1.4 not a dump'), /BACKUP_FILE: .*invoice\.pdf is not a pg_dump custom-format archive \(pg_dump -Fc\): it does not start with the PGDMP signature/],
      ['a truncated archive', 'truncated.dump', async (path: string) => {
        const whole = await readFile(join(legacyDir, 'erp4-old.dump'));
        await writeFile(path, whole.subarray(0, 600));
      }, /BACKUP_FILE: .*truncated\.dump is (a truncated pg_dump archive|not a readable pg_dump archive: pg_restore --list failed)/],
    ])('refuses to import %s, naming BACKUP_FILE, and writes nothing', async (_what, name, make, message) => {
      await make(join(legacyDir, name));
      const before = (await readCatalog(repo('local'), 'test')).backups.length;
      const result = await runCli(['import'], { ...full, BACKUP_FILE: join('legacy', name) });
      expect(result.code).not.toBe(0);
      expect(result.stderr).toMatch(message);
      expect((await readCatalog(repo('local'), 'test')).backups.length).toBe(before);
    });

    it('refuses to import without BACKUP_FILE, naming it', async () => {
      const result = await runCli(['import'], full);
      expect(result.code).not.toBe(0);
      expect(result.stderr).toMatch(/BACKUP_FILE: not set/);
    });
  });
});

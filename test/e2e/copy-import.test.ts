import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { create as createTar } from 'tar';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupCommand } from '../../src/commands/backup.js';
import { copyCommand } from '../../src/commands/copy.js';
import { importCommand } from '../../src/commands/import.js';
import { listCommand } from '../../src/commands/list.js';
import { verifyCommand } from '../../src/commands/verify.js';
import { readCatalog } from '../../src/catalog.js';
import { loadConfig } from '../../src/config.js';
import { manifestKey } from '../../src/layout.js';
import { serializeManifest } from '../../src/manifest.js';
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
    full = await productEnv(s, 'copyimport', { s3: true, sftp: true, gpg: true, env: { ASSET_DIR: assetDir, DRILL_PREAPPROVED: 'true', TIME_ZONE: 'Asia/Tokyo' } });
    localOnly = Object.fromEntries(Object.entries(full).filter(([name]) => !/^(S3_|SSE_|REMOTE_)/.test(name)));
    product = await startProduct(s, localOnly);
  });
  afterAll(async () => {
    await Promise.all(opened.map((r) => r.close()));
    await product?.close();
  });

  // The operator's commands run as the built CLI where the process matters (copy, import, drill);
  // the steps around them run in this process, which keeps the file fast.
  const backup = async (label: string) => (await backupCommand(loadConfig(localOnly), { kind: 'manual', label, pin: false, follow: true }, new PassThrough()))!.backupId;
  const verified = async (repository: string, id: string) => {
    const out = new PassThrough().setEncoding('utf8');
    const ok = await verifyCommand(loadConfig(full), repo(repository), id, out);
    return { ok, stdout: String(out.read()) };
  };

  it('copies a backup taken with S3 down to S3 and SFTP, verified there; a re-run copies nothing', async () => {
    const id = await backup('taken while S3 was down');
    expect((await readCatalog(repo('s3'), 'test')).backups).toEqual([]);
    const [local] = (await readCatalog(repo('local'), 'test')).backups;

    await Promise.all(
      ['s3', 'sftp'].map(async (target) => {
        const copy = await runCli(['copy', '--from', 'local', '--to', target], full);
        expect(copy.code, copy.stdout + copy.stderr).toBe(0);
        expect(copy.stdout).toContain(`[1/1] copying ${id} to ${target}`);
        expect(copy.stdout).toMatch(/ {2}db: [\d.]+ \w+ of [\d.]+ \w+ \(100%\)/);
        expect(copy.stdout).toContain(`read back from ${target}: every artifact matches the manifest's sha256`);
        expect(copy.stdout).toContain(`local -> ${target}: 1 copied, 0 already there, 0 conflicting, 0 failed`);
        // Same id, same bytes: the target's manifest is the local one.
        const [copied] = (await readCatalog(repo(target), 'test')).backups;
        expect(copied).toEqual(local);
        expect(await verified(target, id)).toEqual({ ok: true, stdout: expect.stringContaining(`${target}: backup ${id} verified`) });
      }),
    );

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
    await writeFile(join(assetDir, 'scan-archive.pdf'), randomBytes(12 * 1024 * 1024));
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
    expect((await verified('s3', id)).ok).toBe(true);

    // A different backup under the same id in the target: reported, left alone, exit 1.
    const impostor = { ...manifest, artifacts: { ...manifest.artifacts, db: { ...manifest.artifacts.db!, sha256: 'f'.repeat(64) } } };
    const sftp = openRepository(loadConfig(full), 'writer', 'sftp')!;
    opened.push(sftp);
    await sftp.putBytes(manifestKey({ env: 'test', prefix: 'erp4' }, id), serializeManifest(impostor));
    const conflict = await runCli(['copy', '--to', 'sftp', '--backup', id], full);
    expect(conflict.code).toBe(1);
    expect(conflict.stdout).toContain(`${id}: CONFLICT: sftp holds a different backup under this id (db: sha256`);
    expect(conflict.stdout).toContain('local -> sftp: 0 copied, 0 already there, 1 conflicting, 0 failed');
    expect((await readCatalog(repo('sftp'), 'test')).backups.find((b) => b.id === id)).toEqual(impostor);
  });

  it('refuses a copy to a repository that is not configured, or to its source, naming it', async () => {
    const result = await runCli(['copy', '--to', 's3-copy'], full);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--to s3-copy: repository not configured \(configured: local, s3, sftp\)/);
    await expect(copyCommand(loadConfig(localOnly), { from: 'local', to: 's3' })).rejects.toThrow(/^--to s3: repository not configured \(configured: local\)$/);
    await expect(copyCommand(loadConfig(full), { from: 'nas', to: 's3' })).rejects.toThrow(/^--from nas: repository not configured/);
    await expect(copyCommand(loadConfig(full), { from: 'sftp', to: 'sftp' })).rejects.toThrow(/^--to sftp: the same repository as --from/);
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

    const local = () => repo('local');

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
      // Encrypted for GPG_RECIPIENT like every backup of this host.
      expect(Object.values(manifest.artifacts).map((a) => a?.encryption)).toEqual(['openpgp', 'openpgp', 'openpgp']);
      expect(await verified('local', id!)).toEqual({ ok: true, stdout: expect.stringContaining('imported from erp4-old.dump: matches its manifest, not verified against its source (no fingerprint)') });

      const again = new PassThrough().setEncoding('utf8');
      expect((await importCommand(loadConfig(env), {}, again)).written).toBe(false);
      expect(again.read()).toContain(`was imported before as backup ${id}: nothing changed`);

      const list = new PassThrough().setEncoding('utf8');
      await listCommand(loadConfig(full), local(), { json: false }, list);
      expect(list.read()).toMatch(new RegExp(`${id}\\s+manual.*imported erp4-old.dump \\[imported: not verified against its source\\]`));

      const drill = await runCli(['drill', '--backup', id!, '--repo', 'local'], full);
      expect(drill.code, drill.stdout + drill.stderr).toBe(0);
      expect(drill.stdout).toContain(`drill passed: backup ${id}`);
      const reportKey = (await local().list(`test/meta/drills/${id}/`)).map((o) => o.key).find((k) => k.endsWith('.json'))!;
      const report = JSON.parse((await local().getBytes(reportKey)).toString('utf8')) as RestoreReport;
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

      // Another time for a dump whose archive time is wrong; a different dump under a taken id is refused.
      const sink = new PassThrough();
      const other = await importCommand(loadConfig(env), { generatedAt: new Date('2026-11-01T17:00:00Z') }, sink);
      expect(other.manifest.id).toBe('20261101T170000Z-manual');
      await run(join(s.postgres.binDir, 'pg_dump'), [...pgArgs(), '-Fc', '-f', join(legacyDir, 'postgres.dump'), 'postgres'], { env: pgEnv() });
      await expect(importCommand(loadConfig({ ...full, BACKUP_FILE: 'legacy/postgres.dump' }), { generatedAt: new Date('2026-11-01T17:00:00Z') }, sink)).rejects.toThrow(
        /^BACKUP_FILE: repository local already holds a different backup 20261101T170000Z-manual/,
      );

      // The imported backup goes off-site like any other, and on from there (a remote source is
      // downloaded, checked against the manifest, then put).
      const copy = await runCli(['copy', '--to', 's3', '--backup', id!], full);
      expect(copy.code, copy.stdout + copy.stderr).toBe(0);
      expect(copy.stdout).toContain(`${id}: copied`);
      const onward = await copyCommand(loadConfig(full), { from: 's3', to: 'sftp', backup: id! }, new PassThrough());
      expect(onward).toEqual([{ backupId: id, status: 'copied', bytes: expect.any(Number) }]);
      expect((await readCatalog(repo('sftp'), 'test')).backups.find((b) => b.id === id)).toEqual(manifest);
      expect((await verified('sftp', id!)).ok).toBe(true);
    });

    it('refuses to import a file that is not a pg_dump -Fc archive, or none, naming BACKUP_FILE, and writes nothing', async () => {
      await run(join(s.postgres.binDir, 'pg_dump'), [...pgArgs(), '-Fp', '-f', join(legacyDir, 'plain.sql'), s.postgres.sampleDb], { env: pgEnv() });
      await writeFile(join(legacyDir, 'invoice.pdf'), '%PDF-1.4 not a dump');
      await writeFile(join(legacyDir, 'truncated.dump'), (await readFile(join(legacyDir, 'erp4-old.dump'))).subarray(0, 600));
      const before = await local().list('test/');
      const result = await runCli(['import'], { ...full, BACKUP_FILE: 'legacy/plain.sql' });
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/BACKUP_FILE: .*plain\.sql is a plain SQL script, not a pg_dump custom-format archive/);
      const importing = (file?: string) => importCommand(loadConfig(file ? { ...full, BACKUP_FILE: file } : full), {}, new PassThrough());
      await expect(importing('legacy/invoice.pdf')).rejects.toThrow(
        /^BACKUP_FILE: .*invoice\.pdf is not a pg_dump custom-format archive \(pg_dump -Fc\): it does not start with the PGDMP signature$/,
      );
      await expect(importing('legacy/truncated.dump')).rejects.toThrow(/^BACKUP_FILE: .*truncated\.dump is not a readable pg_dump archive: pg_restore --list failed/);
      await expect(importing()).rejects.toThrow(/^BACKUP_FILE: not set/);
      expect((await local().list('test/')).map((o) => o.key).sort()).toEqual(before.map((o) => o.key).sort());
    });
  });
});

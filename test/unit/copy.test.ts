import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { readCatalog } from '../../src/catalog.js';
import { copyBackups, type CopyOptions } from '../../src/copy.js';
import { manifestKey } from '../../src/layout.js';
import { serializeManifest } from '../../src/manifest.js';
import { LocalRepository } from '../../src/storage/local.js';
import { syntheticArtifacts, writeSyntheticBackup } from '../helpers/synthetic-backups.js';

const layout = { env: 'prod', prefix: 'erp4' };
const record = (id: string) => ({ id, kind: 'daily' as const, generatedAt: `${id.slice(0, 4)}-${id.slice(4, 6)}-${id.slice(6, 8)}T00:00:00Z`, pinned: false });

// copyBackups between two real directories (the S3 and SFTP runs are in test/e2e/copy-import.test.ts).
describe('copyBackups', () => {
  let source: LocalRepository;
  let target: LocalRepository;
  let options: CopyOptions;

  beforeEach(async () => {
    source = new LocalRepository({ root: await mkdtemp(join(tmpdir(), 'erp4-copy-source-')) });
    target = new LocalRepository({ root: await mkdtemp(join(tmpdir(), 'erp4-copy-target-')), name: 'sftp' });
    options = {
      env: 'prod',
      source,
      target: { writer: target, reader: target },
      stagingRoot: await mkdtemp(join(tmpdir(), 'erp4-copy-staging-')),
      manifestKeyOf: (manifest) => manifestKey(layout, manifest.id),
    };
  });

  it('copies the complete backups the target lacks, oldest first, and skips what it holds', async () => {
    const [a, b] = [await writeSyntheticBackup(source, layout, record('20261124T000000Z-daily')), await writeSyntheticBackup(source, layout, record('20261125T000000Z-daily'))];
    await writeSyntheticBackup(source, layout, record('20261126T000000Z-daily'), { withManifest: false });
    await writeSyntheticBackup(target, layout, record(a.id));
    expect(await copyBackups(options)).toEqual([
      { backupId: a.id, status: 'present', bytes: expect.any(Number) },
      { backupId: b.id, status: 'copied', bytes: expect.any(Number) },
    ]);
    expect((await readCatalog(target, 'prod')).backups).toEqual([a, b]);
    // The incomplete backup (no manifest) was never copied.
    expect(await target.stat(syntheticArtifacts(layout, '20261126T000000Z-daily')[0]!.key)).toBeUndefined();
  });

  it('completes a backup whose artifacts an interrupted run left without a manifest', async () => {
    const a = await writeSyntheticBackup(source, layout, record('20261124T000000Z-daily'));
    await writeSyntheticBackup(target, layout, record(a.id), { withManifest: false });
    expect((await readCatalog(target, 'prod')).backups).toEqual([]);
    expect((await copyBackups(options)).map((o) => o.status)).toEqual(['copied']);
    expect((await readCatalog(target, 'prod')).backups).toEqual([a]);
  });

  it('reports a different backup under the same id as a conflict and overwrites nothing', async () => {
    const a = await writeSyntheticBackup(source, layout, record('20261124T000000Z-daily'));
    const other = { ...a, artifacts: { ...a.artifacts, db: { ...a.artifacts.db!, sha256: 'f'.repeat(64) } } };
    await target.putBytes(manifestKey(layout, a.id), serializeManifest(other));
    const [outcome] = await copyBackups(options);
    expect(outcome).toMatchObject({ status: 'conflict', detail: expect.stringMatching(/^sftp holds a different backup under this id \(db: sha256/) });
    expect((await readCatalog(target, 'prod')).backups).toEqual([other]);
    expect(await target.stat(a.artifacts.db!.key)).toBeUndefined();
  });

  it('fails a backup whose source artifact does not match its manifest, writing no manifest', async () => {
    const a = await writeSyntheticBackup(source, layout, record('20261124T000000Z-daily'));
    await writeFile(source.fileOf(a.artifacts.globals!.key), 'damaged on disk\n');
    const [outcome] = await copyBackups(options);
    expect(outcome).toMatchObject({ backupId: a.id, status: 'failed', detail: expect.stringContaining(a.artifacts.globals!.key) });
    expect(await target.stat(manifestKey(layout, a.id))).toBeUndefined();
    expect(await readdir(options.stagingRoot)).toEqual([]);
  });

  it('copies only the backup asked for', async () => {
    await writeSyntheticBackup(source, layout, record('20261124T000000Z-daily'));
    const b = await writeSyntheticBackup(source, layout, record('20261125T000000Z-daily'));
    expect((await copyBackups({ ...options, backupId: b.id })).map((o) => [o.backupId, o.status])).toEqual([[b.id, 'copied']]);
    expect((await readCatalog(target, 'prod')).backups.map((m) => m.id)).toEqual([b.id]);
  });
});

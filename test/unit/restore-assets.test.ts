import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create } from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renamedMarker, restoreAssetArchive, unpackingDir } from '../../activities/restore-assets.js';

// Unpacking the PDF files is a step that must complete on a retry (issue 13 item 3): a worker
// killed between the rename into place and the activity's report leaves a full target, which
// the retry of the same run must recognise as its own, and nobody else's run may take.
describe('restoreAssetArchive', () => {
  const runId = '0190d5c2-1111-7000-8000-000000000001';
  const otherRunId = '0190d5c2-2222-7000-8000-000000000002';
  let dir: string;
  let archive: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'restore-assets-'));
    const source = join(dir, 'source');
    await mkdir(join(source, '2026', '11'), { recursive: true });
    await writeFile(join(source, '2026', '11', 'invoice-1.pdf'), '%PDF-1.4 one\n');
    await writeFile(join(source, '2026', '11', 'invoice-2.pdf'), '%PDF-1.4 two, a little longer\n');
    archive = join(dir, 'assets.tar');
    await create({ file: archive, cwd: source }, ['2026']);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('run again by the same run after its rename, reports the files it put in place instead of refusing its own directory', async () => {
    const target = join(dir, 'restored');
    const first = await restoreAssetArchive(archive, target, runId);
    expect(first).toEqual({ dir: target, fileCount: 2, bytes: 13 + 30 });
    // The crash came after the rename: the retry of the same run completes with the same answer.
    expect(await restoreAssetArchive(archive, target, runId)).toEqual(first);
    // Another run (another restore into the same directory) is refused.
    await expect(restoreAssetArchive(archive, target, otherRunId)).rejects.toThrow(/is not empty \(1 entries\)/);
    expect(await readdir(dir)).toEqual(expect.arrayContaining([`restored.restored-${runId}`]));
  });

  it('run again after a crash before the rename, unpacks again from the start', async () => {
    const target = join(dir, 'half');
    // The first attempt left its marker and a half-unpacked directory, and never renamed it.
    await mkdir(unpackingDir(target, runId), { recursive: true });
    await writeFile(join(unpackingDir(target, runId), 'partial.pdf'), 'half');
    await writeFile(renamedMarker(target, runId), `${runId}\n`);
    expect(await restoreAssetArchive(archive, target, runId)).toEqual({ dir: target, fileCount: 2, bytes: 43 });
    expect(await readdir(target)).toEqual(['2026']);
  });
});

import { mkdir, mkdtemp, open, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stageStream } from '../../activities/staging.js';
import { sha256OfFile } from '../../src/storage/hash.js';
import { LocalRepository } from '../../src/storage/local.js';
import { IntegrityError } from '../../src/storage/repository.js';
import { corruptedSha256, repositoryContract, writeRandomFile } from './contract.js';

const workDir = await mkdtemp(join(tmpdir(), 'erp4-local-repository-'));
afterAll(() => rm(workDir, { recursive: true, force: true }));

let contractRuns = 0;
repositoryContract('local', async () => new LocalRepository({ root: join(workDir, `contract-${++contractRuns}`) }));

/** Every file under `dir`, recursively, as relative paths. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((entry) => !entry.isDirectory()).map((entry) => join(entry.parentPath, entry.name).slice(dir.length + 1)).sort();
}

describe('LocalRepository', () => {
  let root: string;
  let repository: LocalRepository;
  let source: { path: string; digest: Awaited<ReturnType<typeof writeRandomFile>> };

  beforeAll(async () => {
    root = join(workDir, 'specific');
    repository = new LocalRepository({ root });
    const sourcePath = join(workDir, 'source.dump');
    source = { path: sourcePath, digest: await writeRandomFile(sourcePath, 300_000) };
  });

  it('requires an absolute root, naming it', () => {
    expect(() => new LocalRepository({ root: 'relative/dir' })).toThrow(/root must be an absolute directory path.*relative\/dir/);
    expect(() => new LocalRepository({ root: '' })).toThrow(/root/);
  });

  it('maps keys under the root and writes files readable by the owner only', async () => {
    await repository.putFile('prod/db/x.dump', source.path, { expected: source.digest });
    const info = await stat(join(root, 'prod', 'db', 'x.dump'));
    expect(info.size).toBe(source.digest.size);
    expect(info.mode & 0o777).toBe(0o600);
  });

  it('verifies in place when the source already is the destination (staging == repository)', async () => {
    const key = 'in-place/db/staged.dump';
    await mkdir(join(root, 'in-place', 'db'), { recursive: true });
    const path = join(root, 'in-place', 'db', 'staged.dump');
    const digest = await writeRandomFile(path, 50_000);
    await repository.putFile(key, path, { expected: digest });
    expect(await sha256OfFile(path)).toEqual(digest);

    const wrong = { size: digest.size, sha256: corruptedSha256(digest.sha256) };
    await expect(repository.putFile(key, path, { expected: wrong })).rejects.toBeInstanceOf(IntegrityError);
    // The caller's only copy is reported, never deleted.
    expect(await sha256OfFile(path)).toEqual(digest);
  });

  it('replaces a stored file with a corrupt byte instead of trusting it', async () => {
    const key = 'corrupt/db/x.dump';
    await repository.putFile(key, source.path, { expected: source.digest });
    const path = join(root, 'corrupt', 'db', 'x.dump');
    const handle = await open(path, 'r+');
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, 1234);
    await handle.write(Buffer.from([byte[0]! ^ 0xff]), 0, 1, 1234);
    await handle.close();
    expect(await sha256OfFile(path)).not.toEqual(source.digest);

    await repository.putFile(key, source.path, { expected: source.digest });
    expect(await sha256OfFile(path)).toEqual(source.digest);
  });

  it('leaves no temporary file in the directory after a failed or aborted put', async () => {
    const dir = join(root, 'failed');
    const wrong = { size: source.digest.size, sha256: corruptedSha256(source.digest.sha256) };
    await expect(repository.putFile('failed/db/x.dump', source.path, { expected: wrong })).rejects.toBeInstanceOf(IntegrityError);
    const controller = new AbortController();
    await expect(
      repository.putFile('failed/db/y.dump', source.path, { expected: source.digest, signal: controller.signal, onProgress: () => controller.abort() }),
    ).rejects.toMatchObject({ name: 'AbortError' });
    await expect(repository.putFile('failed/db/z.dump', join(workDir, 'no-such-source'), { expected: source.digest })).rejects.toThrow(
      /failed\/db\/z\.dump.*no-such-source/,
    );
    expect(await filesUnder(dir)).toEqual([]);
  });

  it('hides temporary files left by a crash from list() and refuses keys that look like them', async () => {
    await repository.putBytes('crash/meta/a.json', Buffer.from('{}'));
    await writeFile(join(root, 'crash', 'meta', '.b.json.tmp-0123456789abcdef'), 'half');
    expect((await repository.list('crash/')).map((info) => info.key)).toEqual(['crash/meta/a.json']);
    await expect(repository.putBytes('crash/meta/.b.json.tmp-0123456789abcdef', Buffer.from('x'))).rejects.toThrow(
      /reserved for temporary files/,
    );
  });

  it('neither lists nor follows symbolic links out of the root', async () => {
    const outside = join(workDir, 'outside');
    await mkdir(outside, { recursive: true });
    await writeFile(join(outside, 'secret.txt'), 'secret');
    await mkdir(join(root, 'links'), { recursive: true });
    await symlink(outside, join(root, 'links', 'dir'));
    await symlink(join(outside, 'secret.txt'), join(root, 'links', 'file.txt'));
    await repository.putBytes('links/real.txt', Buffer.from('real'));
    expect((await repository.list('links/')).map((info) => info.key)).toEqual(['links/real.txt']);
    expect(await repository.stat('links/file.txt')).toBeUndefined();
    await expect(repository.getBytes('links/file.txt')).rejects.toMatchObject({ name: 'ObjectNotFoundError' });
  });

  it('puts a staged file on the same file system by hard link, untouched when staging is rewritten or removed', async () => {
    const stagedPath = join(workDir, 'staging', 'link', 'db.dump');
    const first = randomBytes(200_000);
    const staged = await stageStream(Readable.from([first]), stagedPath);
    await repository.putFile('link/db/x.dump', staged.path, { expected: staged, staged: true });
    const stored = join(root, 'link', 'db', 'x.dump');
    const [source, target] = await Promise.all([stat(stagedPath), stat(stored)]);
    expect(target.ino).toBe(source.ino);
    expect(target.nlink).toBe(2);
    expect(target.mode & 0o777).toBe(0o600);
    // A retry of the put (the same inode in place) is a no-op.
    await repository.putFile('link/db/x.dump', staged.path, { expected: staged, staged: true });
    expect((await stat(stored)).ino).toBe(source.ino);

    // A retried dump stages again under the same name; then the staging is removed.
    await stageStream(Readable.from([randomBytes(1000)]), stagedPath);
    expect((await stat(stored)).nlink).toBe(1);
    await rm(join(workDir, 'staging', 'link'), { recursive: true });
    expect(await sha256OfFile(stored)).toEqual({ size: staged.size, sha256: staged.sha256 });
  });

  it('copies a staged file the file system refuses to link (another device)', async () => {
    const shm = await mkdtemp(join('/dev/shm', 'erp4-local-repository-'));
    try {
      const staged = await stageStream(Readable.from([randomBytes(100_000)]), join(shm, 'db.dump'));
      expect((await stat(shm)).dev).not.toBe((await stat(workDir)).dev);
      await repository.putFile('cross-device/db/x.dump', staged.path, { expected: staged, staged: true });
      const stored = join(root, 'cross-device', 'db', 'x.dump');
      expect((await stat(stored)).nlink).toBe(1);
      expect((await stat(staged.path)).nlink).toBe(1);
      expect(await sha256OfFile(stored)).toEqual({ size: staged.size, sha256: staged.sha256 });
      expect(await filesUnder(join(root, 'cross-device'))).toEqual(['db/x.dump']);
    } finally {
      await rm(shm, { recursive: true, force: true });
    }
  });

  it('refuses a staged file whose size is not the expected one, leaving nothing visible', async () => {
    const staged = await stageStream(Readable.from([randomBytes(10_000)]), join(workDir, 'staging', 'short', 'db.dump'));
    const error = await repository
      .putFile('short/db/x.dump', staged.path, { expected: { size: staged.size + 1, sha256: staged.sha256 }, staged: true })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IntegrityError);
    expect(await filesUnder(join(root, 'short'))).toEqual([]);
    expect((await stat(staged.path)).nlink).toBe(1);
  });

  it('lists nothing (rather than failing) before the root exists', async () => {
    const fresh = new LocalRepository({ root: join(workDir, 'not-created-yet') });
    expect(await fresh.list('')).toEqual([]);
    expect(await fresh.stat('a/b')).toBeUndefined();
  });
});

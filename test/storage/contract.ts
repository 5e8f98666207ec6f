import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256OfBytes, sha256OfFile, sha256OfStream, type Digest } from '../../src/storage/hash.js';
import { IntegrityError, ObjectNotFoundError, type Repository } from '../../src/storage/repository.js';

/** Bigger than two 5 MiB S3 parts, and not a multiple of any part size. */
export const BIG_FILE_SIZE = 12 * 1024 * 1024 + 12_345;

/** The metadata S14 requires on every upload; backends without metadata ignore it. */
export const CONTRACT_METADATA = { env: 'test', generated_at: '2026-11-26T17:00:00Z', schema_version: '1' };

export const UNSAFE_KEYS = ['../x', '/abs', 'a//b', 'a/../b', 'a/./b', 'a\\b', '', 'a/'];

/** Writes `size` random bytes to `path` (in chunks, so memory stays small). */
export async function writeRandomFile(path: string, size: number): Promise<Digest> {
  const chunkSize = 1024 * 1024;
  const chunks = function* (): Generator<Buffer> {
    for (let written = 0; written < size; written += chunkSize) yield randomBytes(Math.min(chunkSize, size - written));
  };
  await pipeline(Readable.from(chunks()), createWriteStream(path));
  return sha256OfFile(path);
}

/** The same digest with the last hex digit changed. */
export function corruptedSha256(sha256: string): string {
  return sha256.slice(0, -1) + (sha256.endsWith('0') ? '1' : '0');
}

/**
 * The behaviour every Repository backend must have (restic's approach: one suite, run against
 * each backend). `makeRepository` returns a repository whose root (directory, prefix) is
 * unique to this run and empty, so `list('')` sees only what these tests put.
 */
export function repositoryContract(name: string, makeRepository: () => Promise<Repository>): void {
  describe(`${name}: Repository contract`, () => {
    let repository: Repository;
    let workDir: string;
    let bigFile: { path: string; digest: Digest };
    let smallFile: { path: string; digest: Digest };

    beforeAll(async () => {
      repository = await makeRepository();
      workDir = await mkdtemp(join(tmpdir(), 'erp4-storage-contract-'));
      const bigPath = join(workDir, 'big.dump');
      const smallPath = join(workDir, 'small.dump');
      bigFile = { path: bigPath, digest: await writeRandomFile(bigPath, BIG_FILE_SIZE) };
      smallFile = { path: smallPath, digest: await writeRandomFile(smallPath, 100_000) };
    });

    afterAll(async () => {
      await repository?.close();
      if (workDir) await rm(workDir, { recursive: true, force: true });
    });

    async function listKeys(prefix: string): Promise<string[]> {
      return (await repository.list(prefix)).map((info) => info.key).sort();
    }

    it('putFile then getFile round-trips a multi-part file byte for byte', async () => {
      const key = 'round-trip/db/20261126T170000Z-daily.dump';
      await repository.putFile(key, bigFile.path, { expected: bigFile.digest, metadata: CONTRACT_METADATA });

      const info = await repository.stat(key);
      expect(info).toMatchObject({ key, size: BIG_FILE_SIZE });
      const downloadDir = join(workDir, 'round-trip');
      const destPath = join(downloadDir, 'restored.dump');
      await repository.getFile(key, destPath);
      expect(await sha256OfFile(destPath)).toEqual(bigFile.digest);
      // The download went through a temporary name that is gone now.
      expect(await readdir(downloadDir)).toEqual(['restored.dump']);
    });

    it('putBytes then getBytes returns the bytes; putting new bytes replaces them', async () => {
      const key = 'bytes/meta/manifest.json';
      const first = Buffer.from(JSON.stringify({ id: 'first', values: [1, 2, 3] }));
      const second = Buffer.from(JSON.stringify({ id: 'second' }));
      await repository.putBytes(key, first, { metadata: CONTRACT_METADATA });
      expect(await repository.getBytes(key)).toEqual(first);
      await repository.putBytes(key, second, { metadata: CONTRACT_METADATA });
      expect(await repository.getBytes(key)).toEqual(second);
      expect(await listKeys('bytes/')).toEqual([key]);
    });

    it('stat gives size and time of a present key and undefined for a missing one', async () => {
      const key = 'stat/present.bin';
      const before = Date.now();
      await repository.putBytes(key, Buffer.from('12345'));
      const info = await repository.stat(key);
      expect(info?.key).toBe(key);
      expect(info?.size).toBe(5);
      expect(info?.modifiedAt).toBeInstanceOf(Date);
      // Servers keep whole seconds (S3, SFTP): allow for the truncation and a little clock skew.
      expect(Math.abs((info?.modifiedAt.getTime() ?? 0) - before)).toBeLessThan(60_000);
      expect(await repository.stat('stat/missing.bin')).toBeUndefined();
      expect(await repository.stat('stat/missing-dir/missing.bin')).toBeUndefined();
      // A "directory" in the key space is not an object.
      await repository.putBytes('stat/dir/inner.bin', Buffer.from('x'));
      expect(await repository.stat('stat/dir')).toBeUndefined();
    });

    it('list returns every object under a prefix, recursively, with sizes', async () => {
      const objects: Record<string, string> = {
        'list/a/b/1.bin': 'one',
        'list/a/b/c/2.bin': 'two!',
        'list/a/bc/3.bin': 'three',
        'list/x/4.bin': 'four',
      };
      for (const [key, body] of Object.entries(objects)) await repository.putBytes(key, Buffer.from(body));

      expect(await listKeys('list/a/b/')).toEqual(['list/a/b/1.bin', 'list/a/b/c/2.bin']);
      // A prefix is a string prefix of keys, not only a directory.
      expect(await listKeys('list/a/b')).toEqual(['list/a/b/1.bin', 'list/a/b/c/2.bin', 'list/a/bc/3.bin']);
      expect(await listKeys('list/a/b/c/2')).toEqual(['list/a/b/c/2.bin']);
      expect(await listKeys('list/')).toEqual(Object.keys(objects).sort());
      expect(await listKeys('list/nothing/')).toEqual([]);
      expect(await listKeys('no-such-prefix')).toEqual([]);
      const sizes = Object.fromEntries((await repository.list('list/')).map((info) => [info.key, info.size]));
      expect(sizes).toEqual(Object.fromEntries(Object.entries(objects).map(([key, body]) => [key, body.length])));
      expect((await listKeys('')).filter((key) => key.startsWith('list/'))).toEqual(Object.keys(objects).sort());
    });

    it('delete removes an object; deleting a missing key succeeds', async () => {
      const key = 'delete/old.bin';
      await repository.putBytes(key, Buffer.from('old'));
      await repository.delete(key);
      expect(await repository.stat(key)).toBeUndefined();
      expect(await listKeys('delete/')).toEqual([]);
      await expect(repository.delete(key)).resolves.toBeUndefined();
      await expect(repository.delete('delete/never/existed.bin')).resolves.toBeUndefined();
    });

    it('putFile with a wrong expected sha256 or size rejects with IntegrityError and leaves nothing visible', async () => {
      const key = 'integrity/db/wrong.dump';
      const wrongSha = { size: bigFile.digest.size, sha256: corruptedSha256(bigFile.digest.sha256) };
      const error = await repository.putFile(key, bigFile.path, { expected: wrongSha, metadata: CONTRACT_METADATA }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(IntegrityError);
      expect((error as IntegrityError).key).toBe(key);

      const wrongSize = { size: smallFile.digest.size + 1, sha256: smallFile.digest.sha256 };
      await expect(repository.putFile(key, smallFile.path, { expected: wrongSize })).rejects.toBeInstanceOf(IntegrityError);

      expect(await repository.stat(key)).toBeUndefined();
      expect(await listKeys('integrity/')).toEqual([]);
    });

    it('putFile rejects a malformed expected digest, naming the argument', async () => {
      await expect(
        repository.putFile('bad-digest/x.bin', smallFile.path, { expected: { size: smallFile.digest.size, sha256: 'abc' } }),
      ).rejects.toThrow(/expected\.sha256/);
      await expect(
        repository.putFile('bad-digest/x.bin', smallFile.path, { expected: { size: -1, sha256: smallFile.digest.sha256 } }),
      ).rejects.toThrow(/expected\.size/);
      expect(await listKeys('bad-digest/')).toEqual([]);
    });

    it('putting the same content again is a no-op success', async () => {
      const key = 'idempotent/db/again.dump';
      await repository.putFile(key, smallFile.path, { expected: smallFile.digest, metadata: CONTRACT_METADATA });
      const first = await repository.stat(key);
      // Whole-second timestamps (S3, SFTP): a rewrite would show a later time.
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      const progress: number[] = [];
      await repository.putFile(key, smallFile.path, {
        expected: smallFile.digest,
        metadata: CONTRACT_METADATA,
        onProgress: (bytes) => progress.push(bytes),
      });
      const second = await repository.stat(key);
      expect(second).toEqual(first);
      expect(progress.at(-1)).toBe(smallFile.digest.size);
      await repository.putBytes('idempotent/meta/m.json', Buffer.from('{}'));
      await repository.putBytes('idempotent/meta/m.json', Buffer.from('{}'));
      expect(await listKeys('idempotent/')).toEqual(['idempotent/db/again.dump', 'idempotent/meta/m.json']);
    });

    it('after puts, list shows exactly the keys put and no temporary objects', async () => {
      await repository.putFile('clean/db/a.dump', smallFile.path, { expected: smallFile.digest });
      await repository.putFile('clean/db/b.dump', bigFile.path, { expected: bigFile.digest });
      await repository.putBytes('clean/meta/a.json', Buffer.from('{"a":1}'));
      expect(await listKeys('clean/')).toEqual(['clean/db/a.dump', 'clean/db/b.dump', 'clean/meta/a.json']);
    });

    it('rejects unsafe keys in every operation', async () => {
      for (const key of UNSAFE_KEYS) {
        await expect(repository.putFile(key, smallFile.path, { expected: smallFile.digest }), key).rejects.toThrow(/invalid storage key/);
        await expect(repository.putBytes(key, Buffer.from('x')), key).rejects.toThrow(/invalid storage key/);
        await expect(repository.getFile(key, join(workDir, 'unsafe')), key).rejects.toThrow(/invalid storage key/);
        await expect(repository.getBytes(key), key).rejects.toThrow(/invalid storage key/);
        await expect(repository.openRead(key), key).rejects.toThrow(/invalid storage key/);
        await expect(repository.stat(key), key).rejects.toThrow(/invalid storage key/);
        await expect(repository.delete(key), key).rejects.toThrow(/invalid storage key/);
      }
      for (const prefix of ['../', '/abs', 'a//', 'a/../']) {
        await expect(repository.list(prefix), prefix).rejects.toThrow(/invalid storage key/);
      }
    });

    it('openRead streams the bytes of an object', async () => {
      const key = 'open-read/db/big.dump';
      await repository.putFile(key, bigFile.path, { expected: bigFile.digest });
      expect(await sha256OfStream(await repository.openRead(key))).toEqual(bigFile.digest);
      const small = Buffer.from('small object');
      await repository.putBytes('open-read/small.txt', small);
      expect(await sha256OfStream(await repository.openRead('open-read/small.txt'))).toEqual(sha256OfBytes(small));
    });

    it('reading a missing key rejects with ObjectNotFoundError naming the key', async () => {
      const key = 'missing/nothing.bin';
      for (const read of [
        () => repository.getBytes(key),
        () => repository.openRead(key),
        () => repository.getFile(key, join(workDir, 'missing', 'nothing.bin')),
      ]) {
        const error = await read().catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ObjectNotFoundError);
        expect((error as ObjectNotFoundError).key).toBe(key);
        expect((error as Error).message).toContain(key);
      }
      const leftovers = await readdir(join(workDir, 'missing')).catch(() => []);
      expect(leftovers).toEqual([]);
    });

    it('progress callbacks climb to the file size on put and get', async () => {
      const key = 'progress/db/big.dump';
      const sent: number[] = [];
      await repository.putFile(key, bigFile.path, { expected: bigFile.digest, onProgress: (bytes) => sent.push(bytes) });
      expect(sent.length).toBeGreaterThan(1);
      expect(sent.at(-1)).toBe(BIG_FILE_SIZE);
      expect(sent).toEqual([...sent].sort((a, b) => a - b));

      const received: number[] = [];
      await repository.getFile(key, join(workDir, 'progress.dump'), { onProgress: (bytes) => received.push(bytes) });
      expect(received.length).toBeGreaterThan(1);
      expect(received.at(-1)).toBe(BIG_FILE_SIZE);
      expect(received).toEqual([...received].sort((a, b) => a - b));
    });

    it('an aborted putFile rejects with AbortError and leaves nothing visible', async () => {
      const key = 'abort/db/big.dump';
      const controller = new AbortController();
      const error = await repository
        .putFile(key, bigFile.path, {
          expected: bigFile.digest,
          metadata: CONTRACT_METADATA,
          signal: controller.signal,
          onProgress: (bytes) => {
            if (bytes > 0 && bytes < BIG_FILE_SIZE) controller.abort();
          },
        })
        .catch((e: unknown) => e);
      expect(controller.signal.aborted).toBe(true);
      expect(error).toMatchObject({ name: 'AbortError' });

      const early = await repository
        .putFile('abort/db/early.dump', smallFile.path, { expected: smallFile.digest, signal: AbortSignal.abort() })
        .catch((e: unknown) => e);
      expect(early).toMatchObject({ name: 'AbortError' });

      expect(await repository.stat(key)).toBeUndefined();
      expect(await listKeys('abort/')).toEqual([]);
    });

    it('an aborted getFile rejects with AbortError and leaves no file behind', async () => {
      const key = 'abort-get/db/big.dump';
      await repository.putFile(key, bigFile.path, { expected: bigFile.digest });
      const downloadDir = join(workDir, 'abort-get');
      const controller = new AbortController();
      const error = await repository
        .getFile(key, join(downloadDir, 'partial.dump'), {
          signal: controller.signal,
          onProgress: (bytes) => {
            if (bytes > 0 && bytes < BIG_FILE_SIZE) controller.abort();
          },
        })
        .catch((e: unknown) => e);
      expect(controller.signal.aborted).toBe(true);
      expect(error).toMatchObject({ name: 'AbortError' });
      expect(await readdir(downloadDir).catch(() => [])).toEqual([]);
    });

    it('getFile replaces an existing destination file only when complete', async () => {
      const key = 'replace/meta/report.json';
      const body = Buffer.from('{"report":"new"}');
      await repository.putBytes(key, body);
      const destPath = join(workDir, 'replace.json');
      await writeFile(destPath, 'old contents');
      await repository.getFile(key, destPath);
      expect(await readFile(destPath)).toEqual(body);
    });
  });
}

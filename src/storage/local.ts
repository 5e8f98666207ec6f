import { constants, createReadStream, type Stats } from 'node:fs';
import { lstat, open, readdir, rm, stat, type FileHandle } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { Readable, addAbortSignal } from 'node:stream';
import { assertNotTemporaryKey, isTemporaryName, linkFileAtomically, writeFileAtomically } from './atomic-file.js';
import { assertDigest, sameDigest, sha256OfBytes, sha256OfFile, type Digest } from './hash.js';
import {
  assertSafeKey,
  assertSafePrefix,
  IntegrityError,
  ObjectNotFoundError,
  storageFailure,
  type GetOptions,
  type ObjectInfo,
  type PutOptions,
  type Repository,
} from './repository.js';

export interface LocalRepositoryOptions {
  /** Absolute directory the keys map under (BACKUP_DIR); created on the first write. */
  root: string;
  /** Defaults to `local`. */
  name?: string;
}

function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

async function statOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

/** A directory on a local (or mounted) file system. */
export class LocalRepository implements Repository {
  readonly name: string;
  private readonly root: string;

  constructor(options: LocalRepositoryOptions) {
    if (!options.root || !isAbsolute(options.root)) {
      throw new Error(`LocalRepository root must be an absolute directory path, got ${JSON.stringify(options.root)}`);
    }
    this.root = resolve(options.root);
    this.name = options.name ?? 'local';
  }

  private pathOf(key: string): string {
    assertSafeKey(key);
    assertNotTemporaryKey(key);
    return join(this.root, ...key.split('/'));
  }

  private verifier(key: string, expected: Digest): (written: Digest) => void {
    return (written) => {
      if (!sameDigest(written, expected)) throw new IntegrityError(key, expected, written);
    };
  }

  /** True when `path` is a regular file with exactly the `expected` content. */
  private async holds(path: string, expected: Digest, signal?: AbortSignal): Promise<boolean> {
    const info = await statOrUndefined(path);
    if (!info?.isFile() || info.size !== expected.size) return false;
    return sameDigest(await sha256OfFile(path, signal), expected);
  }

  async putFile(key: string, sourcePath: string, options: PutOptions): Promise<void> {
    const path = this.pathOf(key);
    assertDigest(key, options.expected);
    try {
      options.signal?.throwIfAborted();
      const [source, existing] = await Promise.all([stat(sourcePath), statOrUndefined(path)]);
      if (existing && existing.dev === source.dev && existing.ino === source.ino) {
        // Staging is the repository, or an earlier put linked this staged file: the file is
        // already in place, only check it. A mismatch is reported, never "repaired" by deleting
        // the caller's only copy.
        if (options.staged) this.checkStagedSize(key, options.expected, existing.size);
        else {
          const actual = await sha256OfFile(path, options.signal);
          if (!sameDigest(actual, options.expected)) throw new IntegrityError(key, options.expected, actual);
        }
      } else if (!(await this.holds(path, options.expected, options.signal))) {
        // A staged file on this file system is linked, not copied: no bytes read or written. Its
        // sha256 is not recomputed: the link is the very inode whose bytes were hashed as they
        // were written, once (stageStream), and nothing writes into a staged file afterwards;
        // its size is checked, which catches a file truncated or replaced since.
        const linked =
          options.staged &&
          (await linkFileAtomically(path, sourcePath, { verifySize: (size) => this.checkStagedSize(key, options.expected, size) }));
        if (!linked) {
          await writeFileAtomically(path, createReadStream(sourcePath), {
            onProgress: options.onProgress,
            signal: options.signal,
            verify: this.verifier(key, options.expected),
          });
        }
      }
      options.onProgress?.(options.expected.size);
    } catch (error) {
      throw storageFailure(this.name, 'putFile', key, error);
    }
  }

  private checkStagedSize(key: string, expected: Digest, size: number): void {
    if (size !== expected.size) throw new IntegrityError(key, expected, { size });
  }

  async putBytes(key: string, body: Uint8Array, options: Omit<PutOptions, 'expected' | 'onProgress'> = {}): Promise<void> {
    const path = this.pathOf(key);
    try {
      options.signal?.throwIfAborted();
      const digest = sha256OfBytes(body);
      if (await this.holds(path, digest, options.signal)) return;
      await writeFileAtomically(path, Readable.from([body]), { signal: options.signal, verify: this.verifier(key, digest) });
    } catch (error) {
      throw storageFailure(this.name, 'putBytes', key, error);
    }
  }

  async getFile(key: string, destPath: string, options: GetOptions = {}): Promise<void> {
    const path = this.pathOf(key);
    try {
      options.signal?.throwIfAborted();
      const input = (await this.openFile(key, path)).createReadStream();
      try {
        await writeFileAtomically(resolve(destPath), input, { onProgress: options.onProgress, signal: options.signal });
      } finally {
        // Closes the file when the write failed before the stream was consumed.
        input.destroy();
      }
    } catch (error) {
      throw storageFailure(this.name, 'getFile', key, error);
    }
  }

  async getBytes(key: string): Promise<Buffer> {
    const path = this.pathOf(key);
    try {
      const handle = await this.openFile(key, path);
      try {
        return await handle.readFile();
      } finally {
        await handle.close();
      }
    } catch (error) {
      throw storageFailure(this.name, 'getBytes', key, error);
    }
  }

  async openRead(key: string, options: { signal?: AbortSignal } = {}): Promise<Readable> {
    const path = this.pathOf(key);
    try {
      options.signal?.throwIfAborted();
      const stream = (await this.openFile(key, path)).createReadStream();
      return options.signal ? addAbortSignal(options.signal, stream) : stream;
    } catch (error) {
      throw storageFailure(this.name, 'openRead', key, error);
    }
  }

  /** Opens the object's file for reading; a symbolic link is not an object (as in stat and list). */
  private async openFile(key: string, path: string): Promise<FileHandle> {
    try {
      return await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (error) {
      const notAnObject = isMissing(error) || (error as NodeJS.ErrnoException).code === 'ELOOP';
      throw notAnObject ? new ObjectNotFoundError(this.name, key) : error;
    }
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    const path = this.pathOf(key);
    try {
      const info = await statOrUndefined(path);
      return info?.isFile() ? { key, size: info.size, modifiedAt: info.mtime } : undefined;
    } catch (error) {
      throw storageFailure(this.name, 'stat', key, error);
    }
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    assertSafePrefix(prefix);
    // Walk only the deepest directory the prefix names completely ('a/b/c' -> 'a/b').
    const startKey = prefix.slice(0, Math.max(prefix.lastIndexOf('/'), 0));
    const found: ObjectInfo[] = [];
    const walk = async (dirKey: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dirKey ? join(this.root, ...dirKey.split('/')) : this.root, { withFileTypes: true });
      } catch (error) {
        if (isMissing(error)) return;
        throw error;
      }
      for (const entry of entries) {
        const key = dirKey ? `${dirKey}/${entry.name}` : entry.name;
        // Symbolic links are neither listed nor followed: nothing outside the root is reachable.
        if (entry.isDirectory() && (`${key}/`.startsWith(prefix) || prefix.startsWith(`${key}/`))) {
          await walk(key);
        } else if (entry.isFile() && !isTemporaryName(entry.name) && key.startsWith(prefix)) {
          const info = await statOrUndefined(join(this.root, ...key.split('/')));
          if (info?.isFile()) found.push({ key, size: info.size, modifiedAt: info.mtime });
        }
      }
    };
    try {
      await walk(startKey);
    } catch (error) {
      throw storageFailure(this.name, 'list', prefix, error);
    }
    return found;
  }

  async delete(key: string): Promise<void> {
    const path = this.pathOf(key);
    try {
      await rm(path, { force: true });
    } catch (error) {
      throw storageFailure(this.name, 'delete', key, error);
    }
  }

  async close(): Promise<void> {}

  /**
   * The file that holds `key`, for a consumer that reads it in place instead of through a copy
   * (`copy` from this repository). Whoever reads it checks its content against the manifest.
   */
  fileOf(key: string): string {
    return this.pathOf(key);
  }
}

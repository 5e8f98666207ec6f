import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { link, mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Sha256Meter, type Digest } from './hash.js';

/**
 * Files are written under a temporary name in their destination directory and renamed into
 * place, so readers see nothing or the whole file (local files, downloads, and the SFTP
 * backend's remote files). Temporary names are hidden from list() and never accepted as keys.
 */
const TEMPORARY_NAME = /^\..+\.tmp-[0-9a-f]{16}$/;

/** `.<name>.tmp-<random>`: the temporary name for a file to be renamed to `name`. */
export function temporaryName(name: string): string {
  return `.${name}.tmp-${randomBytes(8).toString('hex')}`;
}

export function isTemporaryName(name: string): boolean {
  return TEMPORARY_NAME.test(name);
}

/** Throws when the last segment of `key` looks like a temporary name (it would be hidden from list()). */
export function assertNotTemporaryKey(key: string): void {
  const name = key.slice(key.lastIndexOf('/') + 1);
  if (isTemporaryName(name)) {
    throw new Error(`invalid storage key ${JSON.stringify(key)}: the name is reserved for temporary files`);
  }
}

/** Backup files hold the whole database: readable by the owner only. */
const FILE_MODE = 0o600;

export interface AtomicWriteOptions {
  onProgress?: (bytes: number) => void;
  signal?: AbortSignal;
  /** Sees what was written (after fsync, before the rename) and throws to refuse it. */
  verify?: (written: Digest) => void;
}

async function syncPath(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Writes `source` to the local `path` atomically: a temporary file in the same directory,
 * fsync, size check, `verify`, rename, directory fsync (so the rename survives a crash).
 * On any failure (an abort included) the temporary file is removed and `path` is untouched.
 * Returns the size and sha256 of what was written.
 */
export async function writeFileAtomically(path: string, source: Readable, options: AtomicWriteOptions = {}): Promise<Digest> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const temporaryPath = join(dir, temporaryName(basename(path)));
  try {
    const meter = new Sha256Meter({ onProgress: options.onProgress });
    await pipeline(source, meter, createWriteStream(temporaryPath, { flags: 'wx', mode: FILE_MODE }), { signal: options.signal });
    await syncPath(temporaryPath);
    const written = meter.digest();
    // The meter counted what was handed to the file; the file system must agree.
    const { size } = await stat(temporaryPath);
    if (size !== written.size) throw new Error(`${path}: wrote ${written.size} bytes but the file has ${size}`);
    options.verify?.(written);
    await rename(temporaryPath, path);
    await syncPath(dir);
    return written;
  } catch (error) {
    await rm(temporaryPath, { force: true });
    throw error;
  }
}

export interface AtomicLinkOptions {
  /** Sees the linked file's size (after fsync, before the rename) and throws to refuse it. */
  verifySize?: (size: number) => void;
}

/**
 * Puts `sourcePath` at `path` as a hard link, atomically: a link under a temporary name in the
 * destination directory, fsync (the source may still be in the page cache only), owner-only
 * mode, `verifySize`, rename, directory fsync. Returns false, leaving nothing behind, when the
 * file system refuses the link (another device: EXDEV; a file system or a policy without hard
 * links: EPERM, ENOTSUP, EMLINK, ...): the caller then copies. Other failures are thrown, with
 * the temporary link removed and `path` untouched.
 *
 * The two names share one inode: this is only sound for a source nobody writes in place again
 * (a staged artifact is renamed into place once, and replaced by a rename, never rewritten).
 */
export async function linkFileAtomically(path: string, sourcePath: string, options: AtomicLinkOptions = {}): Promise<boolean> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const temporaryPath = join(dir, temporaryName(basename(path)));
  try {
    await link(sourcePath, temporaryPath);
  } catch {
    return false;
  }
  try {
    const handle = await open(temporaryPath, 'r');
    try {
      await handle.chmod(FILE_MODE);
      await handle.sync();
      options.verifySize?.((await handle.stat()).size);
    } finally {
      await handle.close();
    }
    await rename(temporaryPath, path);
    await syncPath(dir);
    return true;
  } catch (error) {
    await rm(temporaryPath, { force: true });
    throw error;
  }
}

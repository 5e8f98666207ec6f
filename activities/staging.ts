import { mkdir, rename, rm } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DiskFullError, isDiskFull } from '../src/errors.js';
import { Sha256Meter } from '../src/storage/hash.js';

/**
 * Writes one artifact to the staging area in ONE streaming pass: producer bytes ->
 * (optional OpenPGP encryption) -> sha256 and byte count -> temporary file -> rename.
 * Memory stays flat whatever the size; a crash leaves only a `.partial` file, never a file
 * under the final name with missing bytes.
 *
 * A staged file is never written again once it has its final name (a retry writes a new
 * `.partial` and renames it over the old name, leaving the old inode alone): the local
 * repository relies on this to hard-link staged files (src/storage/local.ts, PutOptions.staged).
 */
export interface StagedFile {
  path: string;
  size: number;
  sha256: string;
}

export interface StageOptions {
  /** Turns the plaintext stream into the stored stream (OpenPGP encryption), when configured. */
  encrypt?: (plaintext: Readable) => Promise<Readable>;
  onProgress?: (bytesWritten: number) => void;
  signal?: AbortSignal;
  /**
   * Resolves when the producer (pg_dump, ...) exited successfully. The file only gets its final
   * name after that: a tool that dies mid-stream closes its stdout like one that finished.
   */
  producerExited?: Promise<void>;
}

export async function stageStream(source: Readable, path: string, options: StageOptions = {}): Promise<StagedFile> {
  await mkdir(dirname(path), { recursive: true });
  const partial = `${path}.partial`;
  const meter = new Sha256Meter({ onProgress: options.onProgress });
  try {
    const stored = options.encrypt ? await options.encrypt(source) : source;
    await Promise.all([
      pipeline(stored, meter, createWriteStream(partial), { signal: options.signal }),
      options.producerExited,
    ]);
    await rename(partial, path);
  } catch (error) {
    source.destroy();
    await rm(partial, { force: true });
    if (isDiskFull(error)) {
      throw new DiskFullError(
        `BACKUP_DIR is full: no space left on the file system holding ${dirname(path)} while staging ${basename(path)}; ` +
          'free space there or point BACKUP_DIR at a larger disk',
        { cause: error },
      );
    }
    throw error;
  }
  return { path, ...meter.digest() };
}

import { lstat, mkdir, readdir, rename, rm, rmdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { extract } from 'tar';
import { InputError } from '../src/errors.js';

export interface RestoredFiles {
  dir: string;
  fileCount: number;
  bytes: number;
}

/**
 * Unpacks the assets archive (the PDF files, S2) into `targetDir`, which must be absent or
 * empty. The files land in a sibling directory first and are renamed into place when complete,
 * so a failure leaves the target as it was. The count and bytes returned are of the files on
 * disk afterwards: the "assets complete" check compares them with the manifest.
 */
export async function restoreAssetArchive(archivePath: string, targetDir: string, runId: string): Promise<RestoredFiles> {
  await assertEmptyOrAbsent(targetDir, 'the asset directory');
  const unpacking = unpackingDir(targetDir, runId);
  // A previous attempt of this run may have left a half-unpacked directory.
  await rm(unpacking, { recursive: true, force: true });
  await mkdir(unpacking, { recursive: true, mode: 0o700 });
  // strict: any warning (a bad header, a path that would leave the directory) is an error.
  await extract({ file: archivePath, cwd: unpacking, strict: true, preservePaths: false });
  const { fileCount, bytes } = await countFiles(unpacking);
  await mkdir(dirname(targetDir), { recursive: true });
  if (await isDirectory(targetDir)) await rmdir(targetDir);
  await rename(unpacking, targetDir);
  return { dir: targetDir, fileCount, bytes };
}

/** The sibling directory a run unpacks into (removed by the run's cleanup when left behind). */
export function unpackingDir(targetDir: string, runId: string): string {
  return `${targetDir}.restoring-${runId}`;
}

export async function assertEmptyOrAbsent(dir: string, what: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    if (code === 'ENOTDIR') throw new InputError(`${what} ${dir} exists and is not a directory`);
    throw error;
  }
  if (entries.length > 0) {
    throw new InputError(`${what} ${dir} is not empty (${entries.length} entries): a restore only fills an empty or new directory`);
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await lstat(path)).isDirectory();
  } catch {
    return false;
  }
}

async function countFiles(dir: string): Promise<{ fileCount: number; bytes: number }> {
  let fileCount = 0;
  let bytes = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    fileCount += 1;
    bytes += (await lstat(join(entry.parentPath, entry.name))).size;
  }
  return { fileCount, bytes };
}

import { lstat, mkdir, readdir, rename, rm, rmdir, writeFile } from 'node:fs/promises';
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
 *
 * Just before the rename the run leaves a marker beside the target (removed by the run's
 * cleanup): a retry after a crash between the rename and the report finds the marker and no
 * unpacking directory, so the full target is its own work and it reports it, instead of
 * refusing its own directory as "not empty".
 */
export async function restoreAssetArchive(archivePath: string, targetDir: string, runId: string): Promise<RestoredFiles> {
  const unpacking = unpackingDir(targetDir, runId);
  const renamed = renamedMarker(targetDir, runId);
  if ((await exists(renamed)) && !(await exists(unpacking)) && (await isDirectory(targetDir))) return { dir: targetDir, ...(await countFiles(targetDir)) };
  await assertEmptyOrAbsent(targetDir, 'the asset directory');
  // A previous attempt of this run may have left a half-unpacked directory.
  await rm(unpacking, { recursive: true, force: true });
  await mkdir(unpacking, { recursive: true, mode: 0o700 });
  // strict: any warning (a bad header, a path that would leave the directory) is an error.
  // maxReadSize: node-tar reads the archive 16 MiB at a time by default, and file bodies keep
  // their chunk alive until written: peak RSS of unpacking 200 MB of PDFs 139-143 -> 109-112 MB
  // at 1 MiB, at the same speed (measured alone on this machine; 256 KiB was slower).
  await extract({ file: archivePath, cwd: unpacking, strict: true, preservePaths: false, maxReadSize: 1024 * 1024 });
  const { fileCount, bytes } = await countFiles(unpacking);
  await mkdir(dirname(targetDir), { recursive: true });
  if (await isDirectory(targetDir)) await rmdir(targetDir);
  await writeFile(renamed, `${runId}\n`, { mode: 0o600 });
  await rename(unpacking, targetDir);
  return { dir: targetDir, fileCount, bytes };
}

/** The sibling directory a run unpacks into (removed by the run's cleanup when left behind). */
export function unpackingDir(targetDir: string, runId: string): string {
  return `${targetDir}.restoring-${runId}`;
}

/** The sibling file saying that this run renamed its files into `targetDir` (removed by the run's cleanup). */
export function renamedMarker(targetDir: string, runId: string): string {
  return `${targetDir}.restored-${runId}`;
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

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await lstat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** Number and total size of the regular files under `dir`, recursively (symbolic links not followed). */
export async function countFiles(dir: string): Promise<{ fileCount: number; bytes: number }> {
  let fileCount = 0;
  let bytes = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    fileCount += 1;
    bytes += (await lstat(join(entry.parentPath, entry.name))).size;
  }
  return { fileCount, bytes };
}

import { createReadStream } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Readable } from 'node:stream';
import { list as listTar } from 'tar';
import { stageStream } from '../activities/staging.js';
import { readCatalog } from './catalog.js';
import { runTool } from './child-process.js';
import { InputError } from './errors.js';
import { artifactKey, backupIdFor, manifestKey, type ArtifactName, type LayoutOptions } from './layout.js';
import { MANIFEST_FORMAT, serializeManifest, type Manifest, type ManifestArtifact } from './manifest.js';
import { ARCHIVE_HEADER_BYTES, NotAnArchiveError, parseArchiveHeader, type ArchiveHeader } from './pg/archive-header.js';
import { sha256OfFile, type Digest } from './storage/hash.js';
import type { Repository } from './storage/repository.js';

/**
 * `erp4-backup import`: brings a dump made by the old shell scripts (BACKUP_FILE: `pg_dump -Fc`,
 * with BACKUP_GLOBALS_FILE: `pg_dumpall --globals-only` and BACKUP_ASSETS_FILE: a tar of the
 * PDF files, both optional) into a repository's catalog as a `manual` backup.
 *
 * Nobody read the source database when such a dump was taken, so there is no fingerprint to
 * demand: the manifest records an empty one and an `imported` section, and drills of it check
 * that pg_restore succeeds and record the restored row counts, marked "not verified against its
 * source" (src/restore/checks.ts). The backup id comes from the time pg_dump wrote into the
 * archive (its wall clock, read in TIME_ZONE), unless the operator gives one.
 *
 * Safe to re-run: importing the same file again finds its manifest and changes nothing; the
 * manifest is written LAST, so an interrupted import leaves no backup (prune reaps the pieces).
 */
export interface ImportSettings {
  layout: LayoutOptions;
  /** TIME_ZONE: the zone the old scripts' host kept its clock in. */
  timeZone: string;
  dumpFile: string;
  globalsFile?: string;
  assetsFile?: string;
  /** The repository the backup goes into (opened with the writing role) and the same one read. */
  writer: Repository;
  reader: Repository;
  /** pg_restore, to prove the archive's table of contents is readable. */
  pgRestore: string;
  stagingRoot: string;
  /** OpenPGP encryption to GPG_RECIPIENT, when configured: imported artifacts are stored like every other. */
  encrypt?: (plaintext: Readable) => Promise<Readable>;
  label?: string;
  /** Overrides the archive's own creation time (a dump whose host clock was wrong). */
  generatedAt?: Date;
  signal?: AbortSignal;
}

export interface ImportResult {
  manifest: Manifest;
  /** False when this file had been imported before: nothing was written. */
  written: boolean;
}

export async function importDump(settings: ImportSettings): Promise<ImportResult> {
  const header = await readArchiveHeader(settings.dumpFile);
  await listArchive(settings.pgRestore, settings.dumpFile, settings.signal);
  if (settings.globalsFile) await checkGlobalsScript(settings.globalsFile);
  const assets = settings.assetsFile ? await countTarFiles(settings.assetsFile) : undefined;

  const generatedAt = settings.generatedAt ?? wallTimeToUtc(header.createdAt, settings.timeZone);
  const id = backupIdFor('manual', generatedAt);
  const source = await sha256OfFile(settings.dumpFile, settings.signal);
  const existing = (await readCatalog(settings.reader, settings.layout.env)).backups.find((manifest) => manifest.id === id);
  if (existing) {
    if (existing.imported?.sha256 === source.sha256) return { manifest: existing, written: false };
    throw new InputError(
      `BACKUP_FILE: repository ${settings.reader.name} already holds a different backup ${id} (the id comes from the archive's creation time); ` +
        'give this import another time with --generated-at',
    );
  }

  const encryption: ManifestArtifact['encryption'] = settings.encrypt ? 'openpgp' : 'none';
  const files: Array<[ArtifactName, string, ManifestArtifact['format']]> = [
    ['db', settings.dumpFile, 'pg_dump-custom'],
    ...(settings.globalsFile ? [['globals', settings.globalsFile, 'sql'] as [ArtifactName, string, ManifestArtifact['format']]] : []),
    ...(settings.assetsFile ? [['assets', settings.assetsFile, 'tar'] as [ArtifactName, string, ManifestArtifact['format']]] : []),
  ];
  const staging = join(settings.stagingRoot, `import-${id}`);
  const metadata = { env: settings.layout.env, generated_at: generatedAt.toISOString(), schema_version: UNKNOWN_SCHEMA_VERSION };
  const artifacts: Manifest['artifacts'] = {};
  try {
    for (const [name, file, format] of files) {
      const key = artifactKey(settings.layout, name, id, encryption !== 'none');
      const stored: { path: string } & Digest = settings.encrypt
        ? await stageStream(createReadStream(file), join(staging, basename(key)), { encrypt: settings.encrypt, signal: settings.signal })
        : { path: file, ...(name === 'db' ? source : await sha256OfFile(file, settings.signal)) };
      await settings.writer.putFile(key, stored.path, { expected: { size: stored.size, sha256: stored.sha256 }, metadata, signal: settings.signal });
      artifacts[name] = { key, size: stored.size, sha256: stored.sha256, encryption, format };
    }
    const manifest: Manifest = {
      format: MANIFEST_FORMAT,
      id,
      env: settings.layout.env,
      kind: 'manual',
      label: settings.label ?? `imported ${basename(settings.dumpFile)}`,
      pinned: false,
      generatedAt: generatedAt.toISOString(),
      schemaVersion: UNKNOWN_SCHEMA_VERSION,
      database: { name: header.database, serverVersion: header.serverVersion, pgDumpVersion: header.pgDumpVersion },
      artifacts,
      ...(assets ? { assets } : {}),
      fingerprint: [],
      fingerprintScope: 'configured',
      imported: { file: basename(settings.dumpFile), size: source.size, sha256: source.sha256, importedAt: new Date().toISOString() },
    };
    await settings.writer.putBytes(manifestKey(settings.layout, id), serializeManifest(manifest), { metadata, signal: settings.signal });
    return { manifest, written: true };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** The schema version of an imported dump: SCHEMA_VERSION_QUERY never ran on its source. */
const UNKNOWN_SCHEMA_VERSION = 'unknown (imported)';

async function readArchiveHeader(file: string): Promise<ArchiveHeader> {
  const handle = await openInput('BACKUP_FILE', file);
  try {
    const { buffer, bytesRead } = await handle.read({ buffer: Buffer.alloc(ARCHIVE_HEADER_BYTES), position: 0 });
    return parseArchiveHeader(buffer.subarray(0, bytesRead));
  } catch (error) {
    if (error instanceof NotAnArchiveError) throw new InputError(`BACKUP_FILE: ${file} ${error.message}`);
    throw error;
  } finally {
    await handle.close();
  }
}

/** pg_restore reads the whole table of contents: a header alone does not prove the archive is usable. */
async function listArchive(pgRestore: string, file: string, signal?: AbortSignal): Promise<void> {
  try {
    await runTool(pgRestore, ['--list', file], { signal });
  } catch (error) {
    throw new InputError(`BACKUP_FILE: ${file} is not a readable pg_dump archive: pg_restore --list failed: ${(error as Error).message}`);
  }
}

/** pg_dumpall's own first lines: anything else is not the roles of a cluster. */
const GLOBALS_SIGNATURE = '--\n-- PostgreSQL database cluster dump\n--';

async function checkGlobalsScript(file: string): Promise<void> {
  const handle = await openInput('BACKUP_GLOBALS_FILE', file);
  try {
    const { buffer, bytesRead } = await handle.read({ buffer: Buffer.alloc(GLOBALS_SIGNATURE.length), position: 0 });
    if (buffer.subarray(0, bytesRead).toString('utf8') !== GLOBALS_SIGNATURE) {
      throw new InputError(`BACKUP_GLOBALS_FILE: ${file} is not a pg_dumpall --globals-only script (it does not start with "-- PostgreSQL database cluster dump")`);
    }
  } finally {
    await handle.close();
  }
}

/** Regular files and their bytes in a tar archive: what a restore of it must unpack (the drill's files check). */
async function countTarFiles(file: string): Promise<{ fileCount: number; bytes: number }> {
  await (await openInput('BACKUP_ASSETS_FILE', file)).close();
  let fileCount = 0;
  let bytes = 0;
  let entries = 0;
  try {
    await listTar({
      file,
      strict: true,
      onReadEntry: (entry) => {
        entries += 1;
        if (entry.type === 'File' || entry.type === 'OldFile' || entry.type === 'ContiguousFile') {
          fileCount += 1;
          bytes += entry.size;
        }
      },
    });
  } catch (error) {
    throw new InputError(`BACKUP_ASSETS_FILE: ${file} is not a readable tar archive: ${(error as Error).message}`);
  }
  if (entries === 0) throw new InputError(`BACKUP_ASSETS_FILE: ${file} is not a tar archive of the PDF files (no entries)`);
  return { fileCount, bytes };
}

async function openInput(variable: string, file: string) {
  try {
    return await open(file, 'r');
  } catch (error) {
    throw new InputError(`${variable}: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

/** The UTC instant a wall-clock time in `timeZone` names (the later one when a DST change repeats it). */
export function wallTimeToUtc(wall: ArchiveHeader['createdAt'], timeZone: string): Date {
  const asUtc = Date.UTC(wall.year, wall.month - 1, wall.day, wall.hour, wall.minute, wall.second);
  const offset = (at: number) => {
    const parts = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    }).formatToParts(new Date(at));
    const part = (type: Intl.DateTimeFormatPartTypes) => Number(parts.find((p) => p.type === type)?.value);
    return Date.UTC(part('year'), part('month') - 1, part('day'), part('hour'), part('minute'), part('second')) - at;
  };
  const guess = asUtc - offset(asUtc);
  return new Date(asUtc - offset(guess));
}

import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { readCatalog, verifyBackup } from './catalog.js';
import type { ArtifactName } from './layout.js';
import { serializeManifest, type Manifest } from './manifest.js';
import { sameDigest, sha256OfFile } from './storage/hash.js';
import { LocalRepository } from './storage/local.js';
import { IntegrityError, type Repository } from './storage/repository.js';

/**
 * `erp4-backup copy`: brings every complete backup that one repository holds and another lacks
 * into the other, under the same id with the same bytes (restic's `copy`). For each backup, oldest
 * first: every artifact is put (each put verifies what the target stored), then every artifact is
 * read back from the target through the reading role and compared with the manifest's sha256, and
 * only then is the manifest written, LAST: until then the backup does not exist in the target.
 *
 * Idempotent and safe to interrupt: puts of content already stored are no-ops, a backup whose
 * manifest the target has is skipped, and artifacts an interrupted run left without a manifest
 * are completed by the next run (or reaped by prune after PRUNE_ABANDONED_AFTER).
 */
export interface CopyTarget {
  /** Opened with the writing role: puts artifacts and the manifest. */
  writer: Repository;
  /** Opened with the reading role: the target's catalog, and the read-back after the copy. */
  reader: Repository;
}

export type CopyEvent =
  | { type: 'backup'; backupId: string; index: number; count: number; bytes: number }
  | { type: 'artifact'; backupId: string; artifact: string; bytesDone: number; bytes: number }
  | { type: 'verified'; backupId: string }
  | { type: 'done'; outcome: CopyOutcome };

export interface CopyOutcome {
  backupId: string;
  /** copied: now complete in the target; present: the target had it already; conflict/failed: see detail. */
  status: 'copied' | 'present' | 'conflict' | 'failed';
  bytes: number;
  detail?: string;
}

export interface CopyOptions {
  env: string;
  source: Repository;
  target: CopyTarget;
  /** Where artifacts of a remote source are downloaded before the put (`${BACKUP_DIR}/.staging`). */
  stagingRoot: string;
  /** The key the manifest of `manifest` gets in the target (src/layout.ts manifestKey). */
  manifestKeyOf: (manifest: Manifest) => string;
  /** Object tags for the target's objects (S3 lifecycle tiers); undefined: the target's own. */
  tagsOf?: (manifest: Manifest, object: 'artifact' | 'manifest') => Record<string, string> | undefined;
  /** Only this backup id; default: every complete backup the target lacks. */
  backupId?: string;
  onEvent?: (event: CopyEvent) => void;
  signal?: AbortSignal;
}

export async function copyBackups(options: CopyOptions): Promise<CopyOutcome[]> {
  const { source, target } = options;
  const [sourceCatalog, targetCatalog] = await Promise.all([readCatalog(source, options.env), readCatalog(target.reader, options.env)]);
  const held = new Map(targetCatalog.backups.map((manifest) => [manifest.id, manifest]));
  const brokenInTarget = (id: string) => targetCatalog.invalid.find((bad) => bad.key.endsWith(`-${id}.manifest.json`));
  const wanted = sourceCatalog.backups.filter((manifest) => options.backupId === undefined || manifest.id === options.backupId);
  const outcomes: CopyOutcome[] = [];
  const finish = (outcome: CopyOutcome) => {
    outcomes.push(outcome);
    options.onEvent?.({ type: 'done', outcome });
  };
  const toCopy: Manifest[] = [];
  for (const manifest of wanted) {
    const existing = held.get(manifest.id);
    const broken = brokenInTarget(manifest.id);
    const bytes = totalBytes(manifest);
    if (existing) {
      const differs = artifactDifference(manifest, existing);
      finish(
        differs
          ? { backupId: manifest.id, status: 'conflict', bytes, detail: `${target.reader.name} holds a different backup under this id (${differs}); nothing was overwritten` }
          : { backupId: manifest.id, status: 'present', bytes },
      );
    } else if (broken) {
      finish({ backupId: manifest.id, status: 'conflict', bytes, detail: `${target.reader.name} holds an invalid manifest ${broken.key} for this id; nothing was overwritten` });
    } else {
      toCopy.push(manifest);
    }
  }
  for (const [index, manifest] of toCopy.entries()) {
    options.signal?.throwIfAborted();
    options.onEvent?.({ type: 'backup', backupId: manifest.id, index: index + 1, count: toCopy.length, bytes: totalBytes(manifest) });
    try {
      await copyOne(options, manifest);
      finish({ backupId: manifest.id, status: 'copied', bytes: totalBytes(manifest) });
    } catch (error) {
      if ((error as Error).name === 'AbortError') throw error;
      finish({ backupId: manifest.id, status: 'failed', bytes: totalBytes(manifest), detail: (error as Error).message });
    }
  }
  return outcomes;
}

async function copyOne(options: CopyOptions, manifest: Manifest): Promise<void> {
  const { source, target, signal } = options;
  const metadata = { env: manifest.env, generated_at: manifest.generatedAt, schema_version: manifest.schemaVersion };
  const staging = join(options.stagingRoot, `copy-${manifest.id}`);
  try {
    for (const [artifact, entry] of Object.entries(manifest.artifacts) as Array<[ArtifactName, NonNullable<Manifest['artifacts'][ArtifactName]>]>) {
      const expected = { size: entry.size, sha256: entry.sha256 };
      const onProgress = (bytesDone: number) => options.onEvent?.({ type: 'artifact', backupId: manifest.id, artifact, bytesDone, bytes: entry.size });
      // A local source is read in place; any other is downloaded first (streamed to disk, never
      // held in memory) and checked, so a damaged source is named as the source's fault.
      let file: string;
      if (source instanceof LocalRepository) {
        file = source.fileOf(entry.key);
      } else {
        await mkdir(staging, { recursive: true });
        file = join(staging, artifact);
        await source.getFile(entry.key, file, { signal });
        const downloaded = await sha256OfFile(file, signal);
        if (!sameDigest(downloaded, expected)) {
          throw new IntegrityError(`${source.name}:${entry.key}`, expected, downloaded, 'the source does not hold what its manifest says; run verify on it');
        }
      }
      await target.writer.putFile(entry.key, file, { expected, metadata, tags: options.tagsOf?.(manifest, 'artifact'), onProgress, signal });
    }
    // Read back through the reading role: what a restore from the target will see.
    const mismatches = (await verifyBackup(target.reader, manifest, { signal })).filter((check) => !check.ok);
    if (mismatches.length > 0) {
      const first = mismatches[0]!;
      throw new IntegrityError(
        `${target.reader.name}:${first.key}`,
        first.expected,
        first.actual ?? { size: -1 },
        `read back after the copy${first.error ? `: ${first.error}` : ''}; the manifest was not written`,
      );
    }
    options.onEvent?.({ type: 'verified', backupId: manifest.id });
    await target.writer.putBytes(options.manifestKeyOf(manifest), serializeManifest(manifest), { metadata, tags: options.tagsOf?.(manifest, 'manifest'), signal });
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

function totalBytes(manifest: Manifest): number {
  return Object.values(manifest.artifacts).reduce((sum, artifact) => sum + (artifact?.size ?? 0), 0);
}

/** What differs between two manifests of the same id (artifact checksums), or undefined when they hold the same backup. */
function artifactDifference(a: Manifest, b: Manifest): string | undefined {
  const names = new Set([...Object.keys(a.artifacts), ...Object.keys(b.artifacts)]) as Set<ArtifactName>;
  for (const name of names) {
    const left = a.artifacts[name];
    const right = b.artifacts[name];
    if (left?.sha256 !== right?.sha256 || left?.size !== right?.size) return `${name}: sha256 ${left?.sha256 ?? 'none'} here, ${right?.sha256 ?? 'none'} there`;
  }
  return undefined;
}

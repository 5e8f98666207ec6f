import { InputError } from './errors.js';
import { MANIFEST_SUFFIX, manifestDirectory, type BackupKind } from './layout.js';
import { ManifestError, parseManifest, type Manifest } from './manifest.js';
import { Sha256Meter } from './storage/hash.js';
import type { Repository } from './storage/repository.js';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/**
 * The catalog of a repository is its manifests, nothing else: it works with Temporal's history
 * gone, on a store copied elsewhere, or on a bucket seen only through read-only credentials.
 */
export interface Catalog {
  /** Complete backups, oldest first. */
  backups: Manifest[];
  /** Manifests that failed validation (hand-edited, truncated): listed, never trusted. */
  invalid: Array<{ key: string; error: string }>;
}

const READ_CONCURRENCY = 8;

export async function readCatalog(repository: Repository, env: string): Promise<Catalog> {
  const directory = manifestDirectory({ env });
  const keys = (await repository.list(directory))
    .map((object) => object.key)
    // Drill reports live under meta/drills/; manifests sit directly in meta/.
    .filter((key) => key.endsWith(MANIFEST_SUFFIX) && !key.slice(directory.length).includes('/'));
  const backups: Manifest[] = [];
  const invalid: Catalog['invalid'] = [];
  for (let i = 0; i < keys.length; i += READ_CONCURRENCY) {
    await Promise.all(
      keys.slice(i, i + READ_CONCURRENCY).map(async (key) => {
        try {
          backups.push(parseManifest(await repository.getBytes(key), `${repository.name}:${key}`));
        } catch (error) {
          invalid.push({ key, error: (error as Error).message });
        }
      }),
    );
  }
  backups.sort((a, b) => a.id.localeCompare(b.id));
  return { backups, invalid };
}

/** A backup by id, or the newest complete one (of `kind`, when given) for `latest`. */
export async function findBackup(repository: Repository, env: string, idOrLatest: string, kind?: BackupKind): Promise<Manifest> {
  const { backups, invalid } = await readCatalog(repository, env);
  if (idOrLatest === 'latest') {
    const candidates = backups.filter((b) => kind === undefined || b.kind === kind);
    const newest = candidates.at(-1);
    if (!newest) throw new InputError(`no complete ${kind ?? ''} backup in repository ${repository.name} for env ${env}`.replace('  ', ' '));
    return newest;
  }
  const found = backups.find((b) => b.id === idOrLatest);
  // A manifest that fails validation is refused by name, not reported as a missing backup.
  const broken = invalid.find((bad) => bad.key.endsWith(`${idOrLatest}${MANIFEST_SUFFIX}`));
  if (!found && broken) throw new ManifestError(`${repository.name}:${broken.key}`, broken.error.replace(/^manifest \S+ is invalid: /, ''));
  if (!found) throw new InputError(`backup ${JSON.stringify(idOrLatest)} not found in repository ${repository.name} for env ${env} (no valid manifest)`);
  return found;
}

export interface ArtifactCheck {
  artifact: string;
  key: string;
  expected: { size: number; sha256: string };
  actual?: { size: number; sha256: string };
  ok: boolean;
  error?: string;
}

/** Re-reads every artifact of a backup and compares size and sha256 with its manifest (pgBackRest's verify). */
export async function verifyBackup(
  repository: Repository,
  manifest: Manifest,
  options: { onProgress?: (artifact: string, bytes: number) => void; signal?: AbortSignal } = {},
): Promise<ArtifactCheck[]> {
  const checks: ArtifactCheck[] = [];
  for (const [artifact, entry] of Object.entries(manifest.artifacts)) {
    const expected = { size: entry.size, sha256: entry.sha256 };
    try {
      const meter = new Sha256Meter({ onProgress: (bytes) => options.onProgress?.(artifact, bytes) });
      const discard = new Writable({ write: (_chunk, _encoding, callback) => callback() });
      await pipeline(await repository.openRead(entry.key, { signal: options.signal }), meter, discard, { signal: options.signal });
      const actual = meter.digest();
      checks.push({ artifact, key: entry.key, expected, actual, ok: actual.size === expected.size && actual.sha256 === expected.sha256 });
    } catch (error) {
      checks.push({ artifact, key: entry.key, expected, ok: false, error: (error as Error).message });
    }
  }
  return checks;
}

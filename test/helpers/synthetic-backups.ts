import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.js';
import { artifactKey, manifestKey, type LayoutOptions } from '../../src/layout.js';
import { MANIFEST_FORMAT, serializeManifest, type Manifest } from '../../src/manifest.js';
import type { BackupRecord } from '../../src/retention.js';
import { openRepository } from '../../src/repositories.js';
import type { Repository } from '../../src/storage/repository.js';

/**
 * Tiny, valid backups for retention and prune tests: a `db` and a `globals` artifact of a few
 * bytes and a manifest that describes them exactly (so `verify` would pass), written to a real
 * repository the way NightlyBackup writes them: artifacts first, the manifest last.
 */
export function syntheticArtifacts(layout: LayoutOptions, id: string): Array<{ name: 'db' | 'globals'; key: string; bytes: Buffer }> {
  return (['db', 'globals'] as const).map((name) => ({
    name,
    key: artifactKey(layout, name, id, false),
    bytes: Buffer.from(`synthetic ${name} of ${id}\n`),
  }));
}

export function syntheticManifest(layout: LayoutOptions, record: BackupRecord): Manifest {
  const artifacts = syntheticArtifacts(layout, record.id);
  return {
    format: MANIFEST_FORMAT,
    id: record.id,
    env: layout.env,
    kind: record.kind,
    ...(record.label !== undefined ? { label: record.label } : {}),
    pinned: record.pinned,
    generatedAt: new Date(record.generatedAt).toISOString(),
    schemaVersion: 'synthetic',
    database: { name: 'erp4', serverVersion: '15', pgDumpVersion: '15' },
    artifacts: Object.fromEntries(
      artifacts.map(({ name, key, bytes }) => [
        name,
        {
          key,
          size: bytes.length,
          sha256: createHash('sha256').update(bytes).digest('hex'),
          encryption: 'none' as const,
          format: name === 'db' ? ('pg_dump-custom' as const) : ('sql' as const),
        },
      ]),
    ),
    fingerprint: [],
    fingerprintScope: 'every-table',
  };
}

/** Writes the artifacts, then (unless `withManifest` is false) the manifest; returns the manifest. */
export async function writeSyntheticBackup(
  repository: Repository,
  layout: LayoutOptions,
  record: BackupRecord,
  options: { withManifest?: boolean } = {},
): Promise<Manifest> {
  for (const artifact of syntheticArtifacts(layout, record.id)) await repository.putBytes(artifact.key, artifact.bytes);
  const manifest = syntheticManifest(layout, record);
  if (options.withManifest ?? true) await repository.putBytes(manifestKey(layout, record.id), serializeManifest(manifest));
  return manifest;
}

/** Every stored key of a backup id under the layout (manifest and artifacts). */
export function syntheticKeys(layout: LayoutOptions, id: string): string[] {
  return [manifestKey(layout, id), ...syntheticArtifacts(layout, id).map((artifact) => artifact.key)].sort();
}

/**
 * In the local repository (BACKUP_DIR) of a product environment, under its BACKUP_ENV: backup
 * `good`, which verifies, and backup `corrupt`, whose db artifact no longer matches its manifest.
 */
export async function writeGoodAndCorruptBackups(env: Record<string, string>, ids: { good: string; corrupt: string }): Promise<void> {
  const local = openRepository(loadConfig(env), 'writer', 'local')!;
  const layout = { env: env.BACKUP_ENV!, prefix: 'erp4' };
  try {
    await writeSyntheticBackup(local, layout, { id: ids.good, kind: 'daily', generatedAt: '2026-11-01T17:00:00Z', pinned: false });
    const manifest = await writeSyntheticBackup(local, layout, { id: ids.corrupt, kind: 'daily', generatedAt: '2026-11-02T17:00:00Z', pinned: false });
    await writeFile(join(env.BACKUP_DIR!, manifest.artifacts.db!.key), 'not what the manifest says\n');
  } finally {
    await local.close();
  }
}

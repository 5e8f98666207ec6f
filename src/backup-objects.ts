import { ARTIFACT_NAMES, MANIFEST_SUFFIX, type ArtifactName, type BackupKind } from './layout.js';

/**
 * Which backup a stored object belongs to, read from its key alone (src/layout.ts):
 *
 *   <env>/<db|globals|assets>/<prefix>-<id>.<dump|sql|tar>[.gpg]   an artifact
 *   <env>/meta/<prefix>-<id>.manifest.json                         a manifest
 *
 * Prune needs it to find artifacts left without a manifest, and S3 puts use it to tag each
 * object with its lifecycle tier. Any BACKUP_PREFIX is recognised (a prefix may have changed
 * since a backup was made). Drill reports (`<env>/meta/drills/...`) and anything else are not
 * backup objects. Pure: workflow code may import it.
 */
export interface BackupObject {
  env: string;
  backupId: string;
  kind: BackupKind;
  object: 'manifest' | 'artifact';
  /** The artifact's name (db, globals, assets); undefined for a manifest. */
  artifact?: ArtifactName;
}

const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*-(\d{8}T\d{6}Z-(daily|critical|weekly-full|manual))(\.[a-z.]+)$/;
const ARTIFACT_EXTENSIONS: Record<ArtifactName, readonly string[]> = {
  db: ['.dump', '.dump.gpg'],
  globals: ['.sql', '.sql.gpg'],
  assets: ['.tar', '.tar.gpg'],
};

export function backupObjectOf(key: string): BackupObject | undefined {
  const parts = key.split('/');
  if (parts.length !== 3) return undefined;
  const [env, area, file] = parts as [string, string, string];
  const match = FILE_NAME.exec(file);
  if (!env || !match?.[1] || !match[2] || !match[3]) return undefined;
  const found = { env, backupId: match[1], kind: match[2] as BackupKind };
  if (area === 'meta') return match[3] === MANIFEST_SUFFIX ? { ...found, object: 'manifest' } : undefined;
  const artifact = ARTIFACT_NAMES.find((name) => name === area);
  if (artifact === undefined || !ARTIFACT_EXTENSIONS[artifact].includes(match[3])) return undefined;
  return { ...found, object: 'artifact', artifact };
}

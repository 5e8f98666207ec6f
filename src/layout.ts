/**
 * Backup ids and the storage layout, shared by every repository (S14):
 *
 *   <env>/db/<prefix>-<id>.dump[.gpg]           pg_dump -Fc of the database (or of the important tables)
 *   <env>/globals/<prefix>-<id>.sql[.gpg]       pg_dumpall --globals-only
 *   <env>/assets/<prefix>-<id>.tar[.gpg]        the PDF directory (PDF_PROVIDER=local)
 *   <env>/meta/<prefix>-<id>.manifest.json      written LAST: a backup without it does not exist
 *   <env>/meta/drills/<id>/<drill-id>.{json,md} restore drill reports
 *
 * S3 puts the whole layout under S3_PREFIX (default `erp4`), giving the seed's
 * `s3://<bucket>/erp4/<env>/{db,globals,assets,meta}/`; the local and SFTP repositories put it
 * under BACKUP_DIR and REMOTE_DIR.
 *
 * Pure and deterministic: workflow code imports this module.
 */

export const BACKUP_KINDS = ['daily', 'critical', 'weekly-full', 'manual'] as const;
export type BackupKind = (typeof BACKUP_KINDS)[number];

export const ARTIFACT_NAMES = ['db', 'globals', 'assets'] as const;
export type ArtifactName = (typeof ARTIFACT_NAMES)[number];

const ARTIFACT_EXTENSIONS: Record<ArtifactName, string> = { db: '.dump', globals: '.sql', assets: '.tar' };

/** `20261126T170000Z-daily`: sorts by time as a plain string; unique per kind and second. */
export function backupIdFor(kind: BackupKind, at: Date): string {
  const stamp = at.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
  return `${stamp}-${kind}`;
}

const BACKUP_ID_PATTERN = /^(\d{8}T\d{6}Z)-(daily|critical|weekly-full|manual)$/;

export function isBackupId(value: string): boolean {
  return BACKUP_ID_PATTERN.test(value);
}

/** The time a backup id was taken at. */
export function backupIdTime(id: string): Date {
  const match = BACKUP_ID_PATTERN.exec(id);
  if (!match?.[1]) throw new Error(`not a backup id: ${JSON.stringify(id)}`);
  const s = match[1];
  return new Date(`${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6, 8)}T${s.slice(9, 11)}:${s.slice(11, 13)}:${s.slice(13, 15)}Z`);
}

export interface LayoutOptions {
  env: string;
  /** BACKUP_PREFIX: the file-name prefix (S19), e.g. `erp4`. */
  prefix: string;
}

export function artifactKey(layout: LayoutOptions, artifact: ArtifactName, id: string, encrypted: boolean): string {
  return `${layout.env}/${artifact}/${layout.prefix}-${id}${ARTIFACT_EXTENSIONS[artifact]}${encrypted ? '.gpg' : ''}`;
}

export function manifestKey(layout: LayoutOptions, id: string): string {
  return `${manifestDirectory(layout)}${layout.prefix}-${id}${MANIFEST_SUFFIX}`;
}

export const MANIFEST_SUFFIX = '.manifest.json';

/** The listing prefix under which every manifest of an env lives. */
export function manifestDirectory(layout: Pick<LayoutOptions, 'env'>): string {
  return `${layout.env}/meta/`;
}

export function drillReportKey(layout: Pick<LayoutOptions, 'env'>, backupId: string, drillId: string, extension: 'json' | 'md'): string {
  return `${layout.env}/meta/drills/${backupId}/${drillId}.${extension}`;
}

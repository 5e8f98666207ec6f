import { z } from 'zod';
import { ARTIFACT_NAMES, BACKUP_KINDS, isBackupId } from './layout.js';

/**
 * The manifest of one backup (pgBackRest's idea): what was taken, from which server, with a
 * size and sha256 per artifact and a fingerprint of the data taken in the dump's own snapshot.
 * It is written LAST to every repository; readers treat a backup without a manifest as
 * non-existent, and `verify` re-reads every artifact against it.
 *
 * Every manifest read is validated by this schema, so a hand-edited or truncated manifest is
 * refused with the field that is wrong instead of being half-trusted.
 */
export const MANIFEST_FORMAT = 1;

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lowercase hex digits');

export const artifactSchema = z.object({
  key: z.string().min(1),
  /** Bytes stored (after encryption, when encrypted). */
  size: z.number().int().nonnegative(),
  /** sha256 of the stored bytes (after encryption, when encrypted). */
  sha256: sha256Hex,
  encryption: z.enum(['none', 'openpgp']),
  /** What the bytes are once decrypted: how to restore them by hand. */
  format: z.enum(['pg_dump-custom', 'sql', 'tar']),
  /**
   * OpenPGP artifacts: the keys the message is encrypted to (any one decrypts it), so a restore
   * picks the fitting private key after a key rotation and `erp4-backup keys` lists backups no
   * configured key opens. Optional: manifests written before it was recorded lack it (the
   * restore then reads the key ids from the artifact's OpenPGP packets).
   */
  recipients: z
    .array(
      z.object({
        /** The key id a PKESK packet of the artifact names (the encryption subkey). */
        keyId: z.string().regex(/^[0-9A-F]{16}$/, 'expected 16 upper-case hex digits'),
        /** The fingerprint of the primary key holding it: the key to look for. */
        primaryFingerprint: z.string().regex(/^[0-9A-F]{40}$/, 'expected 40 upper-case hex digits'),
      }),
    )
    .min(1)
    .optional(),
});
export type ManifestArtifact = z.infer<typeof artifactSchema>;

export const fingerprintEntrySchema = z.object({
  /** `schema.table` */
  table: z.string().min(1),
  rowCount: z.string().regex(/^\d+$/),
  /** Sum of each numeric column (exact decimal strings, never floats): column -> sum. */
  sums: z.record(z.string(), z.string()),
});
export type FingerprintEntry = z.infer<typeof fingerprintEntrySchema>;

export const manifestSchema = z.object({
  format: z.literal(MANIFEST_FORMAT),
  id: z.string().refine(isBackupId, 'expected a backup id like 20261126T170000Z-daily'),
  env: z.string().min(1),
  kind: z.enum(BACKUP_KINDS),
  label: z.string().optional(),
  pinned: z.boolean(),
  /** ISO 8601 UTC time of the dump's snapshot. */
  generatedAt: z.iso.datetime(),
  schemaVersion: z.string(),
  database: z.object({
    name: z.string(),
    serverVersion: z.string(),
    pgDumpVersion: z.string(),
    /** CRITICAL_TABLES of a `critical`/`weekly-full` backup; absent for a whole-database dump. */
    tables: z.array(z.string()).optional(),
    /**
     * Present when the dump holds the WHOLE schema but the rows of these tables only (the
     * important tables, a partitioned one by its partitions): it restores on its own into an
     * empty database, and can be laid over a restored daily (src/restore/overlay.ts). Absent for
     * a whole-database dump, and in older critical backups that dumped the tables alone.
     */
    dataTables: z.array(z.string()).optional(),
  }),
  artifacts: z.partialRecord(z.enum(ARTIFACT_NAMES), artifactSchema),
  assets: z.object({ fileCount: z.number().int().nonnegative(), bytes: z.number().int().nonnegative() }).optional(),
  fingerprint: z.array(fingerprintEntrySchema),
  /**
   * `every-table`: the fingerprint covers every table in the dump, so a restored table it does not
   * name is a difference. `configured`: FINGERPRINT_QUERIES_FILE chose some tables and columns.
   */
  fingerprintScope: z.enum(['every-table', 'configured']),
  /**
   * Set only on a backup brought in by `erp4-backup import` (a dump made by the old shell
   * scripts): nobody read the source database when it was taken, so its fingerprint is empty and
   * nothing about it can be verified against its source; drills record the restored row counts
   * instead. Absent on every backup NightlyBackup took.
   */
  imported: z
    .object({
      /** BACKUP_FILE's file name (not its path). */
      file: z.string().min(1),
      /** Size and sha256 of BACKUP_FILE as it was read (before any encryption). */
      size: z.number().int().nonnegative(),
      sha256: sha256Hex,
      importedAt: z.iso.datetime(),
    })
    .optional(),
});
export type Manifest = z.infer<typeof manifestSchema>;

export class ManifestError extends Error {
  constructor(where: string, detail: string) {
    super(`manifest ${where} is invalid: ${detail}`);
    this.name = 'ManifestError';
  }
}

/** Parses and validates manifest bytes; `where` (a key or path) names it in errors. */
export function parseManifest(bytes: Uint8Array | string, where: string): Manifest {
  let json: unknown;
  try {
    json = JSON.parse(typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('utf8'));
  } catch (error) {
    throw new ManifestError(where, `not JSON (${(error as Error).message})`);
  }
  const result = manifestSchema.safeParse(json);
  if (!result.success) {
    const issues = result.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
    throw new ManifestError(where, issues.join('; '));
  }
  return result.data;
}

export function serializeManifest(manifest: Manifest): Buffer {
  return Buffer.from(JSON.stringify(manifestSchema.parse(manifest), null, 2) + '\n', 'utf8');
}

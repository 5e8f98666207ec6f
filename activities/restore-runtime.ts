import type { Readable } from 'node:stream';
import type { BackupKind } from '../src/layout.js';
import type { DbConnection } from '../src/pg/connection.js';
import type { Approver } from '../src/restore/approval.js';
import type { NamedQuery } from '../src/restore/checks-file.js';
import type { Repository } from '../src/storage/repository.js';

/**
 * The part of the worker's runtime that restores use (RestoreDrill, Restore). Built from the
 * worker's own environment by src/runtime.ts; the private key stays here, in the worker.
 */
export interface RestoreSettings {
  /**
   * Opens a configured repository with the READ-ONLY credentials (S15); the caller closes it.
   * Undefined for a name that is not configured. Reports are written with the writer set.
   */
  openReader(name: string): Repository | undefined;
  /** Repository names in the order a restore prefers them when none is given: s3, sftp, local. */
  readerNames: readonly string[];
  /** OpenPGP decryption with the keys of GPG_PRIVATE_KEY_FILE, when configured. */
  decryption?: {
    /** Upper-case hex key ids of every private (sub)key held: a backup encrypted to none of them cannot be restored here. */
    keyIds: readonly string[];
    /** `<fingerprint> (<user id>)` of each key, for messages. */
    describeKeys(): string;
    decrypt(ciphertext: Readable): Promise<Readable>;
  };
  approvers: readonly Approver[];
  approvalTimeoutMs: number;
  /** DRILL_PREAPPROVED: scheduled drills restore into their scratch database without waiting. */
  drillPreApproved: boolean;
  /** RESTORE_ALLOWED_SIGNERS_FILE: re-read before every verification, so an edit counts at once. */
  allowedSignersFile?: string;
  /** DRILL_ACCEPT_UNSIGNED_APPROVALS: a drill counts an unsigned approval from a configured approver. */
  drillAcceptUnsigned: boolean;
  /** DRILL_DECRYPT_BEFORE_APPROVAL: drills may decrypt while they wait; a production Restore never does. */
  drillDecryptBeforeApproval: boolean;
  /** RESTORE_TARGET_DB: the database a production Restore creates (default DB_NAME). */
  targetDatabase: string;
  /** RESTORE_JOBS: pg_restore --jobs; undefined: the cores (src/pg/restore.ts). */
  restoreJobs?: number;
  /** RESTORE_ASSET_DIR: where a production Restore puts the PDF files (default ASSET_DIR). */
  targetAssetDir?: string;
  /**
   * DRILL_DB_*: the separate PostgreSQL drills restore into (its `postgres` database for
   * administration); undefined: drills use the production cluster. DRILL_RESTORE_OWNERS says
   * whether a drill there creates the backup's roles and keeps owners, or restores without them.
   */
  drillServer?: { db: DbConnection; restoreOwners: 'apply-roles' | 'skip' };
  checks: {
    latestDataQuery?: string;
    sqlChecks: readonly NamedQuery[];
    batchResumeQuery?: string;
    drillSmokeUrls: readonly string[];
    restoreSmokeUrls: readonly string[];
    /** RPO per backup kind (S9), for the latest-data check. */
    rpoMs: Record<BackupKind, number>;
  };
}

/**
 * The server a restore step works on: a drill goes to DRILL_DB_HOST when configured (production
 * is then never connected to by a drill), everything else to the production cluster.
 */
export function restoreServer(production: DbConnection, settings: Pick<RestoreSettings, 'drillServer'>, mode: 'drill' | 'restore'): DbConnection {
  return mode === 'drill' && settings.drillServer ? settings.drillServer.db : production;
}

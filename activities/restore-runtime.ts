import type { Readable } from 'node:stream';
import type { BackupKind } from '../src/layout.js';
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
  /** OpenPGP decryption with GPG_PRIVATE_KEY_FILE, when configured. */
  decryption?: { decrypt(ciphertext: Readable): Promise<Readable> };
  approvers: readonly Approver[];
  approvalTimeoutMs: number;
  /** DRILL_PREAPPROVED: scheduled drills restore into their scratch database without waiting. */
  drillPreApproved: boolean;
  /** DRILL_DECRYPT_BEFORE_APPROVAL: drills may decrypt while they wait; a production Restore never does. */
  drillDecryptBeforeApproval: boolean;
  /** RESTORE_TARGET_DB: the database a production Restore creates (default DB_NAME). */
  targetDatabase: string;
  /** RESTORE_ASSET_DIR: where a production Restore puts the PDF files (default ASSET_DIR). */
  targetAssetDir?: string;
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

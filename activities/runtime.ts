import type { Readable } from 'node:stream';
import type { RecipientKeyRef } from '../src/crypto/openpgp.js';
import type { LayoutOptions } from '../src/layout.js';
import type { PruneRuntime } from '../src/prune-policy.js';
import type { DbConnection } from '../src/pg/connection.js';
import type { FingerprintTable, TableRef } from '../src/pg/fingerprint.js';
import type { Repository } from '../src/storage/repository.js';
import type { RestoreSettings } from './restore-runtime.js';

/**
 * Everything the activities need, built once by the worker from its own environment
 * (src/runtime.ts). Secrets (DB password, keys, passphrases) live here, in the worker
 * process, and never cross Temporal: workflows pass only ids, keys, paths, sizes and checksums.
 */
export interface BackupRuntime {
  /** This worker's host (src/host.ts): its id, its own task queue, and the shared one. */
  host: { id: string; taskQueue: string; sharedTaskQueue: string };
  layout: LayoutOptions;
  db: DbConnection;
  pgBinDir?: string;
  /** Where artifacts are staged before transfer: `${BACKUP_DIR}/.staging`. */
  stagingRoot: string;
  criticalTables: readonly TableRef[];
  /** FINGERPRINT_QUERIES_FILE's tables and columns; undefined: every table, every numeric column. */
  fingerprintTables?: readonly FingerprintTable[];
  schemaVersionQuery?: string;
  /** DB_LOCK_TIMEOUT: how long one attempt of a dump waits for a table lock. */
  lockTimeoutMs: number;
  /** ASSET_DIR when PDF_PROVIDER=local (S2); undefined means no assets artifact. */
  assetDir?: string;
  /** OpenPGP encryption to GPG_RECIPIENT (S12), when configured. */
  encryption?: {
    recipient: string;
    /** The (sub)keys it encrypts to, recorded in the manifest of each encrypted artifact. */
    recipients: readonly RecipientKeyRef[];
    encrypt(plaintext: Readable): Promise<Readable>;
  };
  /** The configured repositories by name: `local` always, `s3` and `sftp` when configured. */
  repositories: ReadonlyMap<string, Repository>;
  notifyWebhookUrl?: string;
  /** Thresholds of the Freshness watchdog (RPO_DAILY, RPO_CRITICAL, DRILL_MAX_AGE, OFFSITE_MAX_LAG). */
  freshness: { rpoDailyMs: number; rpoCriticalMs: number; drillMaxAgeMs: number; offsiteMaxLagMs: number };
  /** What RestoreDrill and Restore need: reader repositories, the decryption key, approvers, checks. */
  restore: RestoreSettings;
  /** What Prune needs: the policy of each repository, the pruning credentials, the off-site copy. */
  prune: PruneRuntime;
}

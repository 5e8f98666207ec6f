import { defineQuery, defineSignal } from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import type { BackupKind } from '../src/layout.js';
import type { RepositoryPrunePlan } from '../src/prune-plan.js';
import type { ApprovalState } from '../src/restore/approval.js';
import type { CheckResult, DecryptionRecord, GlobalsPlan, OverlayReport, PhaseTiming, RestoreMode, RestoreOutcome } from '../src/restore/report.js';

/**
 * The messages of every workflow, defined once and shared by the workflows, the CLI and
 * tests (Temporal samples' shape). Operators see these names in the Web UI and use them with
 * `temporal workflow query --type progress`.
 */

export interface NightlyBackupInput {
  kind: BackupKind;
  /** `manual` backups: why it was taken, e.g. `before release 2026.11` (S8). */
  label?: string;
  /** Never pruned (S8). */
  pin?: boolean;
  /** Defaults to one derived from the workflow's start time (e.g. `20261126T170000Z-daily`). */
  backupId?: string;
  /**
   * How fast a lost worker or a hung transfer is noticed, in seconds (default 30, at least 5):
   * a dump or upload silent this long is retried on its host (first retry after a third of it,
   * retries at most 10x it apart; a host that does not take the retry within hostTimeoutSeconds
   * is lost), and a short step (plan, manifest, cleanup) must finish within 4x it. Lower it where workers restart fast (the reliability tests use 5).
   */
  heartbeatTimeoutSeconds?: number;
  /**
   * How long a step may wait for its host to pick it up, in seconds (default 60, 5-3600): a
   * host that stops polling this long is lost and the backup starts again from the dump on a
   * live host (workflows/on-one-host.ts). The reliability tests use 5.
   */
  hostTimeoutSeconds?: number;
}

export type BackupPhase = 'planning' | 'dumping' | 'transferring' | 'writing-manifest' | 'cleaning-up' | 'completed' | 'failed';

export interface BackupProgress {
  backupId: string;
  kind: BackupKind;
  phase: BackupPhase;
  /** Bytes staged per artifact (db, globals, assets), and per repository once uploaded. */
  artifacts: Record<string, { bytes: number; sha256?: string }>;
  repositoriesDone: string[];
  startedAt: string;
  elapsedMs: number;
  error?: string;
  /** The host (WORKER_HOST_ID) running the dump-to-cleanup chain, and the hosts lost before it. */
  host?: string;
  hostsLost: string[];
}

export interface NightlyBackupResult {
  backupId: string;
  kind: BackupKind;
  generatedAt: string;
  repositories: string[];
  manifestKey: string;
  totalBytes: number;
  /** The host (WORKER_HOST_ID) whose local repository holds this backup. */
  host: string;
}

/** Phase, bytes done per artifact and elapsed time. Bytes of the step in flight are in the pending activity's heartbeat. */
export const progressQuery = defineQuery<BackupProgress>('progress');

export interface FreshnessInput {
  /** ISO 8601 time to judge at instead of the workflow's clock (tests, "what if" questions). */
  now?: string;
}

export interface FreshnessResult {
  checkedAt: string;
  /** Every problem found in this run (src/freshness.ts names the checks). */
  findings: Array<{ id: string; summary: string }>;
  /** Incidents announced by this run, and incidents whose recovery it announced. */
  opened: string[];
  recovered: string[];
  /** Incidents announced and not yet recovered, after this run. */
  open: string[];
}

// --- RestoreDrill and Restore (S13, S21-S28) --------------------------------------------------

/** Shared by RestoreDrill and Restore. Every field is optional: `{}` drills the newest daily backup. */
export interface RestoreSelection {
  /** A backup id like `20261126T170000Z-daily`, or `latest` (default): the newest complete backup of `kind`. */
  backupId?: string;
  /** `s3`, `sftp` or `local`; default: the first configured of s3, sftp, local (the off-site copy first). */
  repository?: string;
  /** The kind `latest` picks (default `daily`). */
  kind?: BackupKind;
  /** Overrides RESTORE_APPROVAL_TIMEOUT for this run, in seconds. */
  approvalTimeoutSeconds?: number;
  /**
   * The 6-hour RPO path (S9): `latest-critical` (the newest critical or weekly-full backup) or a
   * backup id, whose important tables are laid over the restored backup in one transaction
   * (src/restore/overlay.ts). Refused at plan time when it is not newer than the backup.
   */
  overlay?: string;
  /**
   * How fast a lost worker is noticed in a long step (download, decrypt, pg_restore, checks), in
   * seconds (default 120, at least 5): the step is retried on a live worker after this long
   * without a heartbeat. Lower it where workers restart fast (the reliability tests use 5).
   */
  heartbeatTimeoutSeconds?: number;
  /**
   * How long a step may wait for its host to pick it up, in seconds (default 60, 5-3600): a
   * host that stops polling this long is lost, and the restore starts again from the download
   * on a live host (workflows/on-one-host.ts).
   */
  hostTimeoutSeconds?: number;
}

export interface RestoreDrillInput extends RestoreSelection {
  /** Keep the scratch database and files for inspection (default: dropped after the checks). */
  keepScratch?: boolean;
}

export interface RestoreInput extends RestoreSelection {
  /** Apply the backup's roles (pg_dumpall --globals-only) before the restore; the plan is shown first. */
  applyGlobals?: boolean;
}

/**
 * `erp4-backup approve <workflow-id> --as alice --key ~/.ssh/id_ed25519` sends it; by hand:
 * `temporal workflow signal --name approve-restore --input '{"approver":"alice","statement":"...","signature":"-----BEGIN SSH SIGNATURE-----..."}'`
 * where `statement` is `status.approvals.statement` (optionally plus a `comment:` line) and
 * `signature` is its `ssh-keygen -Y sign -n erp4-backup-approve` (src/restore/approval-statement.ts).
 * Unsigned (`{"approver":"alice","comment":"ok"}`) counts only for drills with DRILL_ACCEPT_UNSIGNED_APPROVALS.
 */
export interface ApproveRestoreSignal {
  approver: string;
  /** Unsigned approvals only; a signed approval's comment is the statement's `comment:` line. */
  comment?: string;
  statement?: string;
  signature?: string;
}

/** `temporal workflow signal --name cancel-restore --input '{"by":"alice","reason":"wrong backup"}'` */
export interface CancelRestoreSignal {
  by?: string;
  reason?: string;
}

export type RestorePhase =
  | 'selecting'
  | 'downloading'
  | 'decrypting'
  | 'awaiting-approval'
  | 'applying-globals'
  | 'restoring-database'
  | 'overlaying'
  | 'restoring-assets'
  | 'checking'
  | 'cleaning-up'
  | 'reporting'
  | RestoreOutcome;

export interface RestoreStatus {
  mode: RestoreMode;
  phase: RestorePhase;
  startedAt: string;
  elapsedMs: number;
  repository?: string;
  backup?: { id: string; kind: BackupKind; generatedAt: string };
  /** The scratch database of a drill, or the production target. */
  database?: string;
  assetDir?: string;
  approvals: ApprovalState & {
    preApproved: boolean;
    deadline?: string;
    /** While it awaits approval: the exact text an approver signs (erp4-backup approve does it). */
    statement?: string;
  };
  /** With `overlay`: the critical backup laid over the restored one, and (once done) what it found. */
  overlay?: OverlayReport;
  /** Restore only: the roles the backup's globals would create or change, and whether they will be applied. */
  globals?: GlobalsPlan & { apply: boolean };
  /** Finished phases with their durations; the phase in progress is `phase`. */
  phases: PhaseTiming[];
  /** The host (WORKER_HOST_ID) holding this run's files, and the hosts lost before it. */
  host?: string;
  hostsLost: string[];
  /** When the artifacts were decrypted (the end of the `decrypting` phase), on which host, and whether before approval. */
  decryption?: DecryptionRecord;
  checks: CheckResult[];
  failure?: { step: string; cause: string };
  /** `repository:key` of the stored report (JSON and Markdown). */
  reportKeys: string[];
}

/** A failed drill or restore FAILS the workflow (after storing its report); these outcomes complete it. */
export interface RestoreResult {
  outcome: Exclude<RestoreOutcome, 'failed'>;
  backupId?: string;
  database?: string;
  checks: CheckResult[];
  /** Measured recovery time: every phase except waiting for approval, cleanup and reporting. */
  rtoMs: number;
  reportKeys: string[];
}

export const approveRestoreSignal = defineSignal<[ApproveRestoreSignal]>('approve-restore');
export const cancelRestoreSignal = defineSignal<[CancelRestoreSignal?]>('cancel-restore');
/** `temporal workflow query --type status`: the phase, the backup, approvals, checks, report keys. */
export const restoreStatusQuery = defineQuery<RestoreStatus>('status');

/**
 * Keyword search attributes of the backup workflows (registered with the server, see
 * test/helpers/temporal-server.ts). A RestoreDrill upserts `BackupId` (and `BackupEnv`) as soon
 * as it knows which backup it restores, before it reads the manifest; the starter may also set
 * them at start. Prune lists running RestoreDrills by them and never deletes a backup one uses.
 */
export const backupIdSearchAttribute = defineSearchAttributeKey('BackupId', SearchAttributeType.KEYWORD);
export const backupEnvSearchAttribute = defineSearchAttributeKey('BackupEnv', SearchAttributeType.KEYWORD);
export const backupKindSearchAttribute = defineSearchAttributeKey('BackupKind', SearchAttributeType.KEYWORD);

export interface PruneInput {
  /** Plan only: return what a real run would delete, delete nothing. */
  dryRun?: boolean;
  /** Repositories to prune (default: every configured one). */
  repositories?: string[];
  /** ISO 8601 time to plan at instead of the workflow's clock (tests). */
  now?: string;
  /** How long a host's step may wait for that host, in seconds (default 60): a host that does not answer is listed in `unreachableHosts`. */
  hostTimeoutSeconds?: number;
}

/** What one repository's prune did; `skipped` names deletions the plan had that were not done, and why. */
export interface RepositoryPruneResult {
  repository: string;
  /** For `local`: the host whose local repository this is. */
  host?: string;
  deletedBackups: string[];
  deletedKeys: string[];
  skipped: Array<{ backupId: string; reason: string }>;
  reapedKeys: string[];
  abortedUploads: Array<{ key: string; uploadId: string }>;
  retagged: Array<{ backupId: string; tier: string }>;
}

export interface PruneResult {
  env: string;
  now: string;
  dryRun: boolean;
  /** The plan, per repository: what the run acts on (or, for a dry run, would act on). */
  plans: RepositoryPrunePlan[];
  /** Empty for a dry run. */
  results: RepositoryPruneResult[];
  /** Hosts seen polling whose local repository could not be reached (lost since): pruned by a later run. */
  unreachableHosts: string[];
}

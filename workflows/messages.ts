import { defineQuery } from '@temporalio/workflow';
import type { BackupKind } from '../src/layout.js';

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
}

export interface NightlyBackupResult {
  backupId: string;
  kind: BackupKind;
  generatedAt: string;
  repositories: string[];
  manifestKey: string;
  totalBytes: number;
}

/** Phase, bytes done per artifact and elapsed time. Bytes of the step in flight are in the pending activity's heartbeat. */
export const progressQuery = defineQuery<BackupProgress>('progress');

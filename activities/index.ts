import { createBackupActivities } from './backup.js';
import { createRestoreActivities } from './restore.js';
import { createOverlayActivities } from './restore-overlay.js';
import { createApprovalActivities } from './approval.js';
import { failFastOnPermanentErrors } from './failures.js';
import { createFreshnessActivities } from './freshness.js';
import { createHostActivities } from './host.js';
import { createPruneActivities } from './prune.js';
import type { BackupRuntime } from './runtime.js';

export type { BackupRuntime } from './runtime.js';
export type { StagedArtifact, BackupPlan } from './backup.js';
export type { RestorePlan, PlainDigests } from './restore.js';
export type { OverlayPlan } from './restore-overlay.js';
export type { VerifyApprovalsInput } from './approval.js';
export type { HostClaim } from './host.js';

/**
 * Every activity, bound to the worker's runtime (samples-typescript's createActivities(deps)).
 * Workflows import this module as a TYPE only. Permanent errors (configuration, keys, bad
 * input) fail fast without retries; see failures.ts.
 */
export function createActivities(runtime: BackupRuntime) {
  const activities = {
    ...createBackupActivities(runtime),
    ...createRestoreActivities(runtime),
    ...createOverlayActivities(runtime),
    ...createApprovalActivities(runtime),
    ...createFreshnessActivities(runtime),
    ...createPruneActivities(runtime),
    ...createHostActivities(runtime),
  };
  return Object.fromEntries(
    Object.entries(activities).map(([name, fn]) => [name, failFastOnPermanentErrors(fn as (...args: unknown[]) => Promise<unknown>)]),
  ) as typeof activities;
}

export type Activities = ReturnType<typeof createActivities>;

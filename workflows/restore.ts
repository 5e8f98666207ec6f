import type { RestoreInput, RestoreResult } from './messages.js';
import { runRestorePipeline } from './restore-pipeline.js';

/**
 * Restore (S21-S24; the old `RESTORE_CONFIRM=1`): the drill's pipeline into the real target,
 * RESTORE_TARGET_DB (default DB_NAME), which must not exist: it is created empty first (S21).
 * Files go to RESTORE_ASSET_DIR, which must be absent or empty. Dual control (S13): it proceeds
 * only after `approve-restore` from two different approvers of two different roles. Roles from
 * the backup's globals are applied only with `applyGlobals`, after `status` has shown which roles
 * would be created or changed.
 */
export async function Restore(input: RestoreInput = {}): Promise<RestoreResult> {
  return runRestorePipeline({
    mode: 'restore',
    rule: 'dual-control',
    backupId: input.backupId,
    repository: input.repository,
    kind: input.kind,
    approvalTimeoutSeconds: input.approvalTimeoutSeconds,
    overlay: input.overlay,
    heartbeatTimeoutSeconds: input.heartbeatTimeoutSeconds,
    hostTimeoutSeconds: input.hostTimeoutSeconds,
    keepScratch: false,
    applyGlobals: input.applyGlobals === true,
  });
}

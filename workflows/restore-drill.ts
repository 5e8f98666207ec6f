import type { RestoreDrillInput, RestoreResult } from './messages.js';
import { runRestorePipeline } from './restore-pipeline.js';

/**
 * RestoreDrill (S7, S25-S28): restores a backup into a NEW scratch database (a name derived from
 * the backup id, never DB_NAME) and a scratch directory, checks it, stores a report beside the
 * backup, and drops the scratch copies unless `keepScratch`. It waits for one `approve-restore`
 * signal from a configured approver (unless DRILL_PREAPPROVED), queryable with `status`.
 *
 *   temporal workflow start --type RestoreDrill --task-queue erp4-backup --workflow-id drill-1 \
 *     --input '{"backupId":"latest","repository":"s3"}'
 *   temporal workflow signal --workflow-id drill-1 --name approve-restore --input '{"approver":"alice"}'
 */
export async function RestoreDrill(input: RestoreDrillInput = {}): Promise<RestoreResult> {
  return runRestorePipeline({
    mode: 'drill',
    rule: 'single',
    backupId: input.backupId,
    repository: input.repository,
    kind: input.kind,
    approvalTimeoutSeconds: input.approvalTimeoutSeconds,
    overlay: input.overlay,
    heartbeatTimeoutSeconds: input.heartbeatTimeoutSeconds,
    hostTimeoutSeconds: input.hostTimeoutSeconds,
    keepScratch: input.keepScratch === true,
    applyGlobals: false,
  });
}

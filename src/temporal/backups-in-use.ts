import type { Client } from '@temporalio/client';
import type { BackupsInUse } from '../prune-plan.js';
import { backupEnvSearchAttribute, backupIdSearchAttribute } from '../../workflows/messages.js';

/**
 * The backups running workflows use, from Temporal's visibility store: RestoreDrills and
 * Restores (never delete what is being restored) and NightlyBackups (never reap the artifacts of a backup still
 * being made). Each workflow names its backup in the `BackupId` search attribute; one whose
 * `BackupEnv` names another env is not ours. Visibility lags writes by a moment, which is why
 * a drill records `BackupId` before it reads the manifest, and why Prune deletes manifests first.
 */
export const BACKUPS_IN_USE_QUERY =
  "WorkflowType IN ('RestoreDrill', 'Restore', 'NightlyBackup') AND ExecutionStatus = 'Running'";

export async function listBackupsInUse(client: Client, env: string): Promise<BackupsInUse> {
  const inUse: BackupsInUse = { restoreDrills: {}, inProgress: [] };
  for await (const execution of client.workflow.list({ query: BACKUPS_IN_USE_QUERY })) {
    const backupId = execution.typedSearchAttributes.get(backupIdSearchAttribute);
    const backupEnv = execution.typedSearchAttributes.get(backupEnvSearchAttribute);
    if (backupId === undefined || (backupEnv !== undefined && backupEnv !== env)) continue;
    if (execution.type === 'RestoreDrill' || execution.type === 'Restore') {
      inUse.restoreDrills[backupId] = [...(inUse.restoreDrills[backupId] ?? []), execution.workflowId];
    } else {
      inUse.inProgress.push(backupId);
    }
  }
  return inUse;
}

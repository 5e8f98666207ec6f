import type { Config } from '../config.js';
import type { BackupKind } from '../layout.js';
import { startOnce } from '../temporal/start-once.js';
import { connectClient } from '../temporal/client.js';
import type { Restore } from '../../workflows/index.js';
import type { RestoreInput, RestoreResult } from '../../workflows/messages.js';
import { timestamp } from './drill.js';
import { followRestore } from './follow-restore.js';
import { formatDuration } from './format.js';
import { humanOutput, reportRun, writeJson } from './json-output.js';

export interface RestoreCommandOptions {
  backup: string;
  repo?: string;
  kind: BackupKind;
  /** `latest-critical` or a backup id: its important tables laid over the restored backup (6-hour RPO). */
  overlay?: string;
  applyGlobals: boolean;
  follow: boolean;
  /** One JSON document on stdout (the workflow id and the result, or the failure); progress goes to stderr. */
  json?: boolean;
}

/**
 * `erp4-backup restore`: starts a production Restore into RESTORE_TARGET_DB (the old
 * `RESTORE_CONFIRM=1`) and follows it. It proceeds only after two approvals from two approvers
 * of two different roles, each signed (`erp4-backup approve <workflow-id> --as <name> --key <ssh key>`).
 */
export async function restoreCommand(config: Config, options: RestoreCommandOptions, stdout: NodeJS.WritableStream = process.stdout): Promise<RestoreResult | undefined> {
  const out = humanOutput(options.json, stdout);
  const client = await connectClient(config.temporal);
  try {
    const input: RestoreInput = {
      backupId: options.backup,
      kind: options.kind,
      applyGlobals: options.applyGlobals,
      ...(options.repo ? { repository: options.repo } : {}),
      ...(options.overlay ? { overlay: options.overlay } : {}),
    };
    const handle = await startOnce<typeof Restore>(client, 'Restore', {
      taskQueue: config.temporal.taskQueue,
      workflowId: `restore-${config.env}-${timestamp()}`,
      args: [input],
    });
    out.write(`started Restore into ${config.restore.targetDatabase}: workflow id ${handle.workflowId}\n`);
    out.write('it needs two approvals signed by two approvers of two different roles (RESTORE_APPROVERS, RESTORE_ALLOWED_SIGNERS_FILE)\n');
    if (!options.follow) {
      if (options.json) writeJson(stdout, { workflowId: handle.workflowId });
      return undefined;
    }
    return await reportRun(options, stdout, handle.workflowId, async () => {
      const result = await followRestore(handle, out);
      out.write(`restore ${result.outcome}: backup ${result.backupId ?? '-'} into ${result.database ?? '-'}, measured RTO ${formatDuration(result.rtoMs)}\n`);
      return result;
    });
  } finally {
    await client.connection.close();
  }
}

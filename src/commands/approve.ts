import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../config.js';
import { connectClient } from '../temporal/client.js';
import { approveRestoreSignal, restoreStatusQuery } from '../../workflows/messages.js';

/**
 * `erp4-backup approve <workflow-id> --as NAME`: sends `approve-restore` (the same as
 * `temporal workflow signal --name approve-restore`), then reads the status back and says
 * whether the approval counts. Resolves true when it was accepted.
 */
export async function approveCommand(
  config: Config,
  workflowId: string,
  options: { as: string; comment?: string },
  out: NodeJS.WritableStream = process.stdout,
): Promise<boolean> {
  const client = await connectClient(config.temporal);
  try {
    const handle = client.workflow.getHandle(workflowId);
    const seen = async () => {
      const { approvals } = await handle.query(restoreStatusQuery);
      return { approvals, count: approvals.accepted.length + approvals.ignored.length };
    };
    const before = (await seen()).count;
    await handle.signal(approveRestoreSignal, { approver: options.as, ...(options.comment !== undefined ? { comment: options.comment } : {}) });
    for (let attempt = 0; attempt < 50; attempt++) {
      const { approvals, count } = await seen();
      if (count > before) {
        const name = options.as.trim();
        if (approvals.accepted.some((a) => a.approver === name)) {
          out.write(`${workflowId}: approval by ${name} accepted${approvals.satisfied ? '; the restore proceeds' : `; still needed: ${approvals.missing ?? '-'}`}\n`);
          return true;
        }
        const ignored = approvals.ignored.filter((a) => a.approver === name).at(-1) ?? approvals.ignored.at(-1);
        out.write(`${workflowId}: approval by ${name} IGNORED: ${ignored?.ignoredBecause ?? 'not accepted'}\n`);
        return false;
      }
      await sleep(200);
    }
    out.write(`${workflowId}: approve-restore sent by ${options.as}; the workflow has not processed it yet (check: temporal workflow query --workflow-id ${workflowId} --name status)\n`);
    return false;
  } finally {
    await client.connection.close();
  }
}

import { setTimeout as sleep } from 'node:timers/promises';
import type { WorkflowHandle } from '@temporalio/client';
import { pendingActivityProgress } from '../temporal/client.js';
import { restoreStatusQuery, type RestoreResult, type RestoreStatus } from '../../workflows/messages.js';
import { ProgressDisplay } from './progress-line.js';

/**
 * Live progress of a RestoreDrill or Restore for `erp4-backup drill|restore`: a line whenever
 * the phase, the bytes in flight, the approvals or the checks move, and how to approve while it
 * waits. Returns the result; a failed run rejects with the workflow's failure.
 */
export async function followRestore(handle: WorkflowHandle, out: NodeJS.WritableStream): Promise<RestoreResult> {
  let settled = false;
  const result = (handle.result() as Promise<RestoreResult>).finally(() => {
    settled = true;
  });
  const printed = new Set<string>();
  const display = new ProgressDisplay(out);
  const once = (line: string) => {
    if (printed.has(line)) return;
    printed.add(line);
    display.endLine();
    out.write(`${line}\n`);
  };
  let last: RestoreStatus | undefined;
  while (!settled) {
    try {
      const [status, pending] = await Promise.all([handle.query(restoreStatusQuery), pendingActivityProgress(handle)]);
      last = status;
      describe(status, handle.workflowId, once);
      display.show({
        elapsedMs: status.elapsedMs,
        phase: status.phase,
        inFlight: pending.flatMap((p) => (p.step ? [{ step: p.step, bytes: p.bytes ?? 0, attempt: p.attempt }] : [])),
        at: Date.now(),
      });
    } catch {
      // The first workflow task may not have run yet, or the run just ended: ask again.
    }
    await Promise.race([result.catch(() => undefined), sleep(1000)]);
  }
  display.endLine();
  // The last poll may have missed the end: what happened between it and the result.
  const settle = async () => {
    const status = await handle.query(restoreStatusQuery).catch(() => last);
    if (status) describe(status, handle.workflowId, once);
    return status;
  };
  try {
    const final = await result;
    await settle();
    for (const check of final.checks) once(`${check.passed ? 'pass' : 'FAIL'}  ${check.kind} ${check.name}: expected ${check.expected}, actual ${check.actual}`);
    for (const key of final.reportKeys) once(`report: ${key}`);
    return final;
  } catch (error) {
    const status = await settle();
    for (const check of status?.checks ?? []) once(`${check.passed ? 'pass' : 'FAIL'}  ${check.kind} ${check.name}: expected ${check.expected}, actual ${check.actual}`);
    for (const key of status?.reportKeys ?? []) once(`report: ${key}`);
    throw error;
  }
}

function describe(status: RestoreStatus, workflowId: string, once: (line: string) => void): void {
  if (status.backup) once(`backup ${status.backup.id} (${status.backup.kind}, generated at ${status.backup.generatedAt}) from ${status.repository}`);
  if (status.database) once(`restores into database ${status.database}${status.assetDir ? ` and ${status.assetDir}` : ''}`);
  if (status.globals) {
    const g = status.globals;
    once(`roles in the backup: would create ${g.create.join(', ') || '-'}; would change ${g.change.join(', ') || '-'}; ${g.apply ? 'WILL be applied' : 'not applied (--apply-globals to apply)'}`);
  }
  if (status.phase === 'awaiting-approval' && !status.approvals.preApproved) {
    once(
      `waiting for ${status.approvals.missing ?? 'approval'} until ${status.approvals.deadline ?? '?'}: ` +
        `erp4-backup approve ${workflowId} --as <name> --key <your ssh key>  (or sign status.approvals.statement with ssh-keygen -Y sign -n erp4-backup-approve and send it: see the README)`,
    );
  }
  for (const a of status.approvals.accepted) once(`approved by ${a.approver} (${a.role ?? '?'})${a.comment ? `: ${a.comment}` : ''}`);
  for (const a of status.approvals.ignored) once(`ignored approval from ${a.approver}: ${a.ignoredBecause ?? ''}`);
  if (status.failure) once(`FAILED at ${status.failure.step}: ${status.failure.cause}`);
}

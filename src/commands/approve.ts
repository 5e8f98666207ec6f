import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../config.js';
import { approvalStatement, type StatementFields } from '../restore/approval-statement.js';
import { signStatement } from '../restore/ssh-signatures.js';
import { connectClient } from '../temporal/client.js';
import { humanOutput, writeJson } from './json-output.js';
import { approveRestoreSignal, restoreStatusQuery, type ApproveRestoreSignal, type RestoreStatus } from '../../workflows/messages.js';

/**
 * `erp4-backup approve <workflow-id> --as NAME --key KEY`: reads the run's `status`, builds the
 * statement of what it will do (this run, backup, target, roles plan), signs it on this machine
 * with `ssh-keygen -Y sign` (a private key file, or a public key whose private key is in
 * ssh-agent: the key never leaves), and sends `approve-restore` with the statement and the
 * signature; then reads the status back and says whether the approval counts. Without --key
 * it sends an unsigned approval (counted only by drills with DRILL_ACCEPT_UNSIGNED_APPROVALS).
 * Resolves true when it was accepted. With --json stdout holds one document: the workflow id,
 * the approver, `accepted` and the verdict in words (`detail`).
 */
export async function approveCommand(
  config: Config,
  workflowId: string,
  options: { as: string; key?: string; comment?: string; json?: boolean },
  stdout: NodeJS.WritableStream = process.stdout,
): Promise<boolean> {
  const out = humanOutput(options.json, stdout);
  const verdict = (accepted: boolean, detail: string): boolean => {
    out.write(`${workflowId}: ${detail}\n`);
    if (options.json) writeJson(stdout, { workflowId, approver: options.as.trim(), accepted, detail });
    return accepted;
  };
  const client = await connectClient(config.temporal);
  try {
    const handle = client.workflow.getHandle(workflowId);
    const status = await handle.query(restoreStatusQuery);
    if (status.phase !== 'awaiting-approval') {
      return verdict(false, `not sent: the run is ${status.phase}; approvals count only while it awaits approval`);
    }
    const name = options.as.trim();
    let signal: ApproveRestoreSignal = { approver: name, ...(options.comment !== undefined ? { comment: options.comment } : {}) };
    if (options.key !== undefined) {
      const fields = statementFields(workflowId, (await handle.describe()).runId, status);
      if (typeof fields === 'string' || status.approvals.statement !== approvalStatement(fields)) {
        return verdict(false, `not sent: the statement in status does not match the plan it shows (${typeof fields === 'string' ? fields : 'worker and CLI versions differ?'})`);
      }
      const statement = approvalStatement(fields, options.comment);
      out.write(`${workflowId}: signing as ${name} with ${options.key}:\n${statement.replace(/^/gm, '  ')}`);
      signal = { approver: name, statement, signature: await signStatement(statement, options.key) };
    }

    const seen = async () => {
      const { approvals } = await handle.query(restoreStatusQuery);
      return { approvals, count: approvals.accepted.length + approvals.ignored.length };
    };
    const before = (await seen()).count;
    await handle.signal(approveRestoreSignal, signal);
    for (let attempt = 0; attempt < 50; attempt++) {
      const { approvals, count } = await seen();
      if (count > before) {
        if (approvals.accepted.some((a) => a.approver === name)) {
          return verdict(true, `approval by ${name} accepted${approvals.satisfied ? '; the restore proceeds' : `; still needed: ${approvals.missing ?? '-'}`}`);
        }
        const ignored = approvals.ignored.filter((a) => a.approver === name).at(-1) ?? approvals.ignored.at(-1);
        return verdict(false, `approval by ${name} IGNORED: ${ignored?.ignoredBecause ?? 'not accepted'}`);
      }
      await sleep(200);
    }
    return verdict(false, `approve-restore sent by ${name}; the workflow has not processed it yet (check: temporal workflow query --workflow-id ${workflowId} --name status)`);
  } finally {
    await client.connection.close();
  }
}

/** The statement's fields as `status` shows them: the approver signs what they were shown. */
export function statementFields(workflowId: string, runId: string, status: RestoreStatus): StatementFields | string {
  if (!status.backup || status.repository === undefined || status.database === undefined) return 'the status shows no backup, repository or database yet';
  return {
    workflowId,
    runId,
    mode: status.mode,
    backupId: status.backup.id,
    repository: status.repository,
    database: status.database,
    ...(status.assetDir !== undefined ? { assetDir: status.assetDir } : {}),
    ...(status.overlay ? { overlayBackupId: status.overlay.backupId } : {}),
    ...(status.globals ? { roles: { apply: status.globals.apply, create: status.globals.create, change: status.globals.change } } : {}),
  };
}

import { Context } from '@temporalio/activity';
import { readFile } from 'node:fs/promises';
import { parseAllowedSigners, unknownPrincipalProblem, type AllowedSigner } from '../src/restore/allowed-signers.js';
import type { ApprovalCandidate, ApprovalVerdict } from '../src/restore/approval.js';
import type { RestoreMode } from '../src/restore/report.js';
import { verifyStatement } from '../src/restore/ssh-signatures.js';
import type { RestoreSettings } from './restore-runtime.js';
import type { BackupRuntime } from './runtime.js';

/**
 * RESTORE_ALLOWED_SIGNERS_FILE's lines as the file is now, or why it cannot be used (then no
 * signed approval counts: fail closed).
 */
export async function currentAllowedSigners(settings: Pick<RestoreSettings, 'allowedSignersFile' | 'approvers'>): Promise<AllowedSigner[] | string> {
  const file = settings.allowedSignersFile;
  if (!file) return 'RESTORE_ALLOWED_SIGNERS_FILE is not set on this worker: signed approvals cannot be verified';
  try {
    const signers = parseAllowedSigners(await readFile(file, 'utf8'));
    const problem = unknownPrincipalProblem(signers, settings.approvers.map((a) => a.name));
    return problem ? `RESTORE_ALLOWED_SIGNERS_FILE (${file}) is invalid now: ${problem}` : signers;
  } catch (error) {
    return `RESTORE_ALLOWED_SIGNERS_FILE (${file}) cannot be used now: ${(error as Error).message}`;
  }
}

export interface VerifyApprovalsInput {
  mode: RestoreMode;
  /** Well-formed candidates whose statement the workflow already matched to this run. */
  approvals: ApprovalCandidate[];
}

/**
 * Verifies approvals against the worker's OWN configuration, read now: RESTORE_APPROVERS of this
 * process and RESTORE_ALLOWED_SIGNERS_FILE re-read from disk, so a key removed from the file
 * stops counting at the next verification (the workflow verifies again when the rule would be
 * satisfied). A verdict, never an exception, for anything an approver sent: only a missing
 * ssh-keygen fails the activity (permanently: see failures.ts). Short and idempotent.
 */
export function createApprovalActivities(runtime: BackupRuntime) {
  const settings = runtime.restore;
  const currentSigners = () => currentAllowedSigners(settings);

  const verifyOne = async (mode: RestoreMode, candidate: ApprovalCandidate, signers: () => Promise<AllowedSigner[] | string>): Promise<ApprovalVerdict> => {
    const approver = settings.approvers.find((a) => a.name === candidate.approver);
    if (!approver) return { counts: false, reason: `${JSON.stringify(candidate.approver)} is not a configured approver (RESTORE_APPROVERS)` };
    if (candidate.statement === undefined || candidate.signature === undefined) {
      if (mode === 'drill' && settings.drillAcceptUnsigned) return { counts: true, role: approver.role };
      return {
        counts: false,
        reason:
          mode === 'drill'
            ? 'unsigned: this worker counts only signed drill approvals (erp4-backup approve --key, or DRILL_ACCEPT_UNSIGNED_APPROVALS=true)'
            : 'unsigned: a production Restore counts only approvals signed with a key in RESTORE_ALLOWED_SIGNERS_FILE (erp4-backup approve --key)',
      };
    }
    const current = await signers();
    if (typeof current === 'string') return { counts: false, reason: current };
    const lines = current.filter((s) => s.principals.includes(approver.name)).map((s) => s.text);
    if (lines.length === 0) return { counts: false, reason: `RESTORE_ALLOWED_SIGNERS_FILE holds no key of ${approver.name}` };
    const verified = await verifyStatement(candidate.statement, candidate.signature, approver.name, lines, Context.current().cancellationSignal);
    return 'key' in verified ? { counts: true, role: approver.role, key: verified.key } : { counts: false, reason: verified.refused };
  };

  return {
    /** One verdict per candidate, in order. */
    async verifyApprovals(input: VerifyApprovalsInput): Promise<ApprovalVerdict[]> {
      let signers: Promise<AllowedSigner[] | string> | undefined;
      const readOnce = () => (signers ??= currentSigners());
      const verdicts: ApprovalVerdict[] = [];
      for (const candidate of input.approvals) verdicts.push(await verifyOne(input.mode, candidate, readOnce));
      return verdicts;
    },
  };
}

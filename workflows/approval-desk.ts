import { condition } from '@temporalio/workflow';
import type { VerifyApprovalsInput } from '../activities/index.js';
import { approvalStatement, judgeStatement, type StatementFields } from '../src/restore/approval-statement.js';
import {
  duplicateReason,
  evaluateApprovals,
  parseApproval,
  type ApprovalCandidate,
  type ApprovalRecord,
  type ApprovalRule,
  type ApprovalState,
  type ApprovalVerdict,
} from '../src/restore/approval.js';
import type { RestoreMode } from '../src/restore/report.js';

interface Entry {
  record: ApprovalRecord;
  /** Kept (in workflow memory only) to verify it again at decision time. */
  candidate?: ApprovalCandidate;
  /** Waiting for the worker's verification: not shown, not counted. */
  pending: boolean;
}

export interface ApprovalDeskOptions {
  mode: RestoreMode;
  rule: ApprovalRule;
  /** The pipeline's phase now, for the reason an early or late approval is ignored. */
  phase: () => string;
  /** The verifyApprovals activity (activities/approval.ts): the worker's keys, read now. */
  verify: (input: VerifyApprovalsInput) => Promise<ApprovalVerdict[]>;
}

/**
 * The approval part of the restore pipeline (workflow code, deterministic). It judges every
 * `approve-restore` signal: counted only while the run awaits approval, only when the statement
 * names this run and plan, and only after the worker verified the signature. When the rule
 * would be satisfied it verifies every counted approval again, so an approver whose key or name
 * left the worker's configuration meanwhile no longer counts.
 */
export function createApprovalDesk(options: ApprovalDeskOptions) {
  const entries: Entry[] = [];
  let expected: StatementFields | undefined;
  let decided = false;

  const state = (): ApprovalState => evaluateApprovals(entries.filter((e) => !e.pending).map((e) => e.record), options.rule);
  const ignore = (record: ApprovalRecord, reason: string): void => {
    entries.push({ record: { ...record, ignoredBecause: reason }, pending: false });
  };
  const verify = async (batch: Entry[]): Promise<ApprovalVerdict[]> =>
    options.verify({ mode: options.mode, approvals: batch.map((e) => e.candidate!) });

  /**
   * Verifies what arrived; then, if the rule would hold, verifies the counted approvals again.
   * The results are applied all at once, so `status` never shows a rule satisfied that the
   * second verification overturns. True when the rule holds after both.
   */
  const settle = async (): Promise<boolean> => {
    const batch = entries.filter((e) => e.pending);
    const updates = new Map<Entry, ApprovalRecord>();
    if (batch.length > 0) {
      const verdicts = await verify(batch);
      // A repeat (the same person, or the same key) is refused for good when it is judged, so
      // it never starts counting later because the approval it repeated was withdrawn.
      const counted = entries.filter((e) => !e.pending && e.record.ignoredBecause === undefined).map((e) => e.record);
      batch.forEach((entry, i) => {
        const verdict = verdicts[i]!;
        let record: ApprovalRecord = verdict.counts
          ? { ...entry.record, role: verdict.role, ...(verdict.key !== undefined ? { key: verdict.key } : {}) }
          : { ...entry.record, ignoredBecause: verdict.reason };
        if (record.ignoredBecause === undefined) {
          const duplicate = duplicateReason(record, counted);
          if (duplicate) record = { ...record, ignoredBecause: duplicate };
          else counted.push(record);
        }
        updates.set(entry, record);
      });
    }
    const judged = entries.filter((e) => !e.pending || updates.has(e));
    const recordOf = (e: Entry) => updates.get(e) ?? e.record;
    let satisfied = evaluateApprovals(judged.map(recordOf), options.rule).satisfied;
    if (satisfied) {
      const counting = judged.filter((e) => recordOf(e).ignoredBecause === undefined);
      const verdicts = await verify(counting);
      counting.forEach((entry, i) => {
        const verdict = verdicts[i]!;
        if (!verdict.counts) updates.set(entry, { ...recordOf(entry), ignoredBecause: `no longer counts at decision time: ${verdict.reason}` });
      });
      satisfied = evaluateApprovals(judged.map(recordOf), options.rule).satisfied;
    }
    for (const [entry, record] of updates) {
      entry.record = record;
      entry.pending = false;
    }
    // Approvals that arrived meanwhile are judged in the next round.
    return satisfied && !entries.some((e) => e.pending);
  };

  return {
    /** The `approve-restore` signal handler. */
    receive(payload: unknown): void {
      const at = new Date(Date.now()).toISOString();
      const candidate = parseApproval(payload);
      if (typeof candidate === 'string') {
        const name = (payload as { approver?: unknown } | null)?.approver;
        ignore({ approver: typeof name === 'string' && name.trim() !== '' ? name.trim().slice(0, 100) : '(unknown)', at }, candidate);
        return;
      }
      const record: ApprovalRecord = { approver: candidate.approver, at, ...(candidate.comment !== undefined ? { comment: candidate.comment } : {}) };
      if (decided || !expected) {
        return ignore(record, `sent while the run was not awaiting approval (phase ${options.phase()}): approvals count only while it awaits approval`);
      }
      if (candidate.statement === undefined) {
        if (options.mode === 'restore') {
          return ignore(record, 'unsigned: a production Restore counts only approvals signed with a key in RESTORE_ALLOWED_SIGNERS_FILE (erp4-backup approve --key)');
        }
      } else {
        const judged = judgeStatement(expected, candidate.statement);
        if ('refused' in judged) return ignore(record, judged.refused);
        if (judged.comment !== undefined) record.comment = judged.comment;
      }
      entries.push({ record, candidate, pending: true });
    },

    state,

    /** The text approvers sign, while the run awaits approval. */
    statement(): string | undefined {
      return expected && !decided ? approvalStatement(expected) : undefined;
    },

    /**
     * Awaits approval for `timeoutMs` (from now), the plan being `fields`: true when approved,
     * false at the deadline. `remind` is called once at half time if still unapproved.
     */
    async wait(fields: StatementFields, timeoutMs: number, remind: () => void): Promise<boolean> {
      expected = fields;
      const deadline = Date.now() + timeoutMs;
      const half = Date.now() + Math.floor(timeoutMs / 2);
      let reminded = false;
      try {
        for (;;) {
          if (await settle()) return true;
          const now = Date.now();
          if (now >= deadline) return false;
          if (!reminded && now >= half) {
            reminded = true;
            remind();
          }
          const until = reminded ? deadline : half;
          await condition(() => entries.some((e) => e.pending), Math.max(1, until - now));
        }
      } finally {
        decided = true;
      }
    },
  };
}

/**
 * Who may let a restore proceed (S13, S22). Pure and deterministic: the workflows evaluate the
 * `approve-restore` signals they received with it, and the status query shows the result.
 *
 * - A drill (`single`) needs one approval from a configured approver (RESTORE_APPROVERS).
 * - A production Restore (`dual-control`) needs approvals from two different people of two
 *   different roles: one person approving twice, or two people of the same role, is not enough.
 * - A signal from a name that is not configured, or with a malformed payload, is recorded and
 *   ignored: it never counts, and the status says why.
 */
export interface Approver {
  name: string;
  role: string;
}

export type ApprovalRule = 'single' | 'dual-control';

/** One `approve-restore` signal as received, with the workflow time it arrived at. */
export interface ReceivedApproval {
  payload: unknown;
  at: string;
}

export interface ApprovalRecord {
  approver: string;
  role?: string;
  comment?: string;
  at: string;
  /** Why it does not count (unknown approver, malformed, duplicate); absent when it counts. */
  ignoredBecause?: string;
}

export interface ApprovalState {
  rule: ApprovalRule;
  satisfied: boolean;
  accepted: ApprovalRecord[];
  ignored: ApprovalRecord[];
  /** What is still needed, in words, e.g. `an approval from a role other than admin`. */
  missing?: string;
}

const MAX_COMMENT = 500;
const MAX_NAME = 100;

export function describeRule(rule: ApprovalRule): string {
  return rule === 'single'
    ? 'one approval from a configured approver (RESTORE_APPROVERS)'
    : 'two approvals from two different approvers of two different roles (RESTORE_APPROVERS, dual control S13)';
}

/**
 * The approvals that count and those that do not. `approvers` is undefined until the worker's
 * configured list is known: signals received before that are kept and judged then.
 */
export function evaluateApprovals(received: readonly ReceivedApproval[], approvers: readonly Approver[] | undefined, rule: ApprovalRule): ApprovalState {
  const accepted: ApprovalRecord[] = [];
  const ignored: ApprovalRecord[] = [];
  for (const { payload, at } of received) {
    const parsed = parsePayload(payload);
    if (typeof parsed === 'string') {
      ignored.push({ approver: '(unknown)', at, ignoredBecause: parsed });
      continue;
    }
    const record: ApprovalRecord = { approver: parsed.approver, at, ...(parsed.comment !== undefined ? { comment: parsed.comment } : {}) };
    if (approvers === undefined) {
      ignored.push({ ...record, ignoredBecause: 'the approver list is not loaded yet' });
      continue;
    }
    const known = approvers.find((a) => a.name === parsed.approver);
    if (!known) {
      ignored.push({ ...record, ignoredBecause: `${JSON.stringify(parsed.approver)} is not a configured approver (RESTORE_APPROVERS)` });
    } else if (accepted.some((a) => a.approver === known.name)) {
      ignored.push({ ...record, role: known.role, ignoredBecause: `${known.name} already approved: one person counts once` });
    } else {
      accepted.push({ ...record, role: known.role });
    }
  }
  const roles = [...new Set(accepted.map((a) => a.role))];
  if (rule === 'single') {
    return { rule, satisfied: accepted.length >= 1, accepted, ignored, ...(accepted.length === 0 ? { missing: 'an approval from a configured approver' } : {}) };
  }
  const satisfied = roles.length >= 2;
  const missing =
    accepted.length === 0
      ? 'approvals from two approvers of two different roles'
      : satisfied
        ? undefined
        : `an approval from a role other than ${roles.join(', ')}`;
  return { rule, satisfied, accepted, ignored, ...(missing ? { missing } : {}) };
}

/** Problems with the configured list that make approval impossible; undefined when it can work. */
export function approverListProblem(approvers: readonly Approver[], rule: ApprovalRule): string | undefined {
  if (approvers.length === 0) return 'RESTORE_APPROVERS is empty: nobody could approve; expected name:role pairs, e.g. alice:admin,bob:management';
  if (rule === 'dual-control' && new Set(approvers.map((a) => a.role)).size < 2) {
    return 'RESTORE_APPROVERS has approvers of only one role: a production restore needs two approvers of two different roles (S13)';
  }
  return undefined;
}

function parsePayload(payload: unknown): { approver: string; comment?: string } | string {
  if (payload === null || typeof payload !== 'object') return 'malformed signal: expected {"approver": "<name>", "comment": "..."}';
  const { approver, comment } = payload as { approver?: unknown; comment?: unknown };
  if (typeof approver !== 'string' || approver.trim() === '') return 'malformed signal: "approver" must be a non-empty string';
  if (comment !== undefined && typeof comment !== 'string') return 'malformed signal: "comment" must be a string';
  return {
    approver: approver.trim().slice(0, MAX_NAME),
    ...(comment !== undefined ? { comment: comment.slice(0, MAX_COMMENT) } : {}),
  };
}

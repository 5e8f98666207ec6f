/**
 * Who may let a restore proceed (S13, S22). Pure and deterministic: the workflows judge the
 * `approve-restore` signals they receive with it, and the status query shows the result.
 *
 * - An approval counts only when it arrives while the run awaits approval, and (signed) when
 *   its statement names this run, backup, target and roles plan (approval-statement.ts) and its
 *   signature verifies, on the worker, with a key of RESTORE_ALLOWED_SIGNERS_FILE listed for the
 *   approver. A drill may also count unsigned approvals (DRILL_ACCEPT_UNSIGNED_APPROVALS).
 * - A drill (`single`) needs one approval from a configured approver (RESTORE_APPROVERS).
 * - A production Restore (`dual-control`) needs approvals from two different people of two
 *   different roles, signed with two different keys: one person approving twice, one key
 *   signing for two names, or two people of the same role, is not enough.
 * - Everything else is recorded and ignored: it never counts, and the status says why.
 */
export interface Approver {
  name: string;
  role: string;
}

export type ApprovalRule = 'single' | 'dual-control';

/** An approval signal that is well-formed: the worker still has to verify it. */
export interface ApprovalCandidate {
  approver: string;
  /** Unsigned approvals only: the approver's note. A signed approval's note is in its statement. */
  comment?: string;
  /** Both or neither: the statement and its armoured SSH signature (`-----BEGIN SSH SIGNATURE-----`). */
  statement?: string;
  signature?: string;
}

/** What the worker's verification (activities/approval.ts) says about one candidate. */
export type ApprovalVerdict = { counts: true; role: string; key?: string } | { counts: false; reason: string };

export interface ApprovalRecord {
  approver: string;
  role?: string;
  comment?: string;
  at: string;
  /** SHA256 fingerprint of the key that signed it; absent for an unsigned approval. */
  key?: string;
  /** Why it does not count (unsigned, forged, replayed, early, unknown approver, duplicate); absent when it counts. */
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
const MAX_SIGNED_TEXT = 8192;
const SSH_SIGNATURE = /^-----BEGIN SSH SIGNATURE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END SSH SIGNATURE-----\r?\n?$/;

export function describeRule(rule: ApprovalRule): string {
  return rule === 'single'
    ? 'one approval from a configured approver (RESTORE_APPROVERS)'
    : 'two approvals signed by two different approvers of two different roles (RESTORE_APPROVERS, RESTORE_ALLOWED_SIGNERS_FILE, dual control S13)';
}

/** The candidate in a signal's payload, or why it is malformed. */
export function parseApproval(payload: unknown): ApprovalCandidate | string {
  if (payload === null || typeof payload !== 'object') return 'malformed signal: expected {"approver": "<name>", "statement": "...", "signature": "-----BEGIN SSH SIGNATURE-----..."}';
  const { approver, comment, statement, signature } = payload as Record<string, unknown>;
  if (typeof approver !== 'string' || approver.trim() === '') return 'malformed signal: "approver" must be a non-empty string';
  if (comment !== undefined && typeof comment !== 'string') return 'malformed signal: "comment" must be a string';
  if ((statement === undefined) !== (signature === undefined)) return 'malformed signal: "statement" and "signature" go together';
  const candidate: ApprovalCandidate = {
    approver: approver.trim().slice(0, MAX_NAME),
    ...(comment !== undefined ? { comment: comment.slice(0, MAX_COMMENT) } : {}),
  };
  if (statement === undefined) return candidate;
  if (typeof statement !== 'string' || statement.length > MAX_SIGNED_TEXT) return `malformed signal: "statement" must be a string of at most ${MAX_SIGNED_TEXT} characters`;
  if (typeof signature !== 'string' || signature.length > MAX_SIGNED_TEXT || !SSH_SIGNATURE.test(signature)) {
    return 'the signature is not an SSH signature: expected the -----BEGIN SSH SIGNATURE----- block that ssh-keygen -Y sign writes';
  }
  return { approver: candidate.approver, statement, signature };
}

/**
 * The approvals that count and those that do not, from the judged records in arrival order: a
 * record already carrying `ignoredBecause` never counts; of the rest, the first of each person
 * and of each key counts.
 */
export function evaluateApprovals(records: readonly ApprovalRecord[], rule: ApprovalRule): ApprovalState {
  const accepted: ApprovalRecord[] = [];
  const ignored: ApprovalRecord[] = [];
  for (const record of records) {
    if (record.ignoredBecause !== undefined) {
      ignored.push(record);
      continue;
    }
    const duplicate = duplicateReason(record, accepted);
    if (duplicate) ignored.push({ ...record, ignoredBecause: duplicate });
    else accepted.push(record);
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

/** Why `record` repeats one of the `counted` approvals (the same person, or the same key), or undefined. */
export function duplicateReason(record: ApprovalRecord, counted: readonly ApprovalRecord[]): string | undefined {
  if (counted.some((a) => a.approver === record.approver)) return `${record.approver} already approved: one person counts once`;
  const sameKey = record.key === undefined ? undefined : counted.find((a) => a.key === record.key);
  return sameKey ? `signed with the key that signed ${sameKey.approver}'s approval (${record.key}): two approvals need two different keys` : undefined;
}

/** Problems with the configured list that make approval impossible; undefined when it can work. */
export function approverListProblem(approvers: readonly Approver[], rule: ApprovalRule): string | undefined {
  if (approvers.length === 0) return 'RESTORE_APPROVERS is empty: nobody could approve; expected name:role pairs, e.g. alice:admin,bob:management';
  if (rule === 'dual-control' && new Set(approvers.map((a) => a.role)).size < 2) {
    return 'RESTORE_APPROVERS has approvers of only one role: a production restore needs two approvers of two different roles (S13)';
  }
  return undefined;
}

/**
 * Whether anyone could approve at all: a Restore counts only signed approvals, so it needs
 * RESTORE_ALLOWED_SIGNERS_FILE with keys of two roles; a drill needs a key, or
 * DRILL_ACCEPT_UNSIGNED_APPROVALS. Undefined when approval is possible.
 */
export function approvalSetupProblem(
  approvers: readonly Approver[],
  rule: ApprovalRule,
  signing: { allowedSigners?: readonly { principals: readonly string[] }[]; acceptUnsigned: boolean },
): string | undefined {
  const listProblem = approverListProblem(approvers, rule);
  if (listProblem) return listProblem;
  if (rule === 'single' && signing.acceptUnsigned) return undefined;
  if (!signing.allowedSigners) {
    return rule === 'single'
      ? 'RESTORE_ALLOWED_SIGNERS_FILE is not set and DRILL_ACCEPT_UNSIGNED_APPROVALS is false: no drill approval could count'
      : 'RESTORE_ALLOWED_SIGNERS_FILE is not set: a production Restore counts only signed approvals, so nobody could approve it';
  }
  const keyed = approvers.filter((a) => signing.allowedSigners!.some((s) => s.principals.includes(a.name)));
  if (rule === 'dual-control' && new Set(keyed.map((a) => a.role)).size < 2) {
    return `RESTORE_ALLOWED_SIGNERS_FILE has keys of approvers of ${keyed.length === 0 ? 'no' : 'only one'} role: a production Restore needs signed approvals of two roles (S13)`;
  }
  if (keyed.length === 0) return 'RESTORE_ALLOWED_SIGNERS_FILE has no key of any RESTORE_APPROVERS name: no drill approval could count';
  return undefined;
}

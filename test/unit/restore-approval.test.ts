import { describe, expect, it } from 'vitest';
import { parseAllowedSigners, unknownPrincipalProblem } from '../../src/restore/allowed-signers.js';
import { approvalStatement, judgeStatement, type StatementFields } from '../../src/restore/approval-statement.js';
import { approvalSetupProblem, approverListProblem, evaluateApprovals, parseApproval, type Approver, type ApprovalRecord } from '../../src/restore/approval.js';

const approvers: Approver[] = [
  { name: 'alice', role: 'admin' },
  { name: 'carol', role: 'admin' },
  { name: 'bob', role: 'management' },
];
const at = (i: number) => `2026-11-26T00:00:0${i}Z`;
/** Verified records as the worker judges them: role from RESTORE_APPROVERS, key = the signing key's fingerprint. */
const verified = (...names: Array<string | [string, string]>): ApprovalRecord[] =>
  names.map((entry, i) => {
    const [name, key] = typeof entry === 'string' ? [entry, `SHA256:${entry}-key`] : entry;
    return { approver: name, role: approvers.find((a) => a.name === name)!.role, key, at: at(i) };
  });

describe('evaluateApprovals: a drill (single)', () => {
  it('is satisfied by one verified approval, and not by an ignored one', () => {
    expect(evaluateApprovals(verified('alice'), 'single')).toMatchObject({ satisfied: true, accepted: [{ approver: 'alice', role: 'admin' }] });
    const state = evaluateApprovals([{ approver: 'mallory', at: at(0), ignoredBecause: '"mallory" is not a configured approver (RESTORE_APPROVERS)' }], 'single');
    expect(state).toMatchObject({ satisfied: false, missing: 'an approval from a configured approver', accepted: [] });
    expect(state.ignored[0]?.ignoredBecause).toContain('mallory');
  });
});

describe('evaluateApprovals: a production restore (dual control, S13)', () => {
  it.each([
    ['one approval', verified('alice'), false, 'an approval from a role other than admin'],
    ['one person twice', verified('alice', ['alice', 'SHA256:alice-second-key']), false, 'an approval from a role other than admin'],
    ['two people of the same role', verified('alice', 'carol'), false, 'an approval from a role other than admin'],
    ['one key signing for two people of two roles', verified('alice', ['bob', 'SHA256:alice-key']), false, 'an approval from a role other than admin'],
    ['two people of two roles with two keys', verified('alice', 'bob'), true, undefined],
    ['none', [], false, 'approvals from two approvers of two different roles'],
  ])('%s -> satisfied %s', (_title, records, satisfied, missing) => {
    const state = evaluateApprovals(records, 'dual-control');
    expect(state.satisfied).toBe(satisfied);
    expect(state.missing).toBe(missing);
  });

  it('records why a repeat does not count: the same person, or the same key', () => {
    expect(evaluateApprovals(verified('alice', 'alice'), 'dual-control').ignored[0]?.ignoredBecause).toBe('alice already approved: one person counts once');
    expect(evaluateApprovals(verified('alice', ['bob', 'SHA256:alice-key']), 'dual-control').ignored[0]?.ignoredBecause).toBe(
      "signed with the key that signed alice's approval (SHA256:alice-key): two approvals need two different keys",
    );
  });

  it('never counts a record the workflow or the worker refused', () => {
    const refused = { ...verified('bob')[0]!, ignoredBecause: 'unsigned: ...' };
    expect(evaluateApprovals([...verified('alice'), refused], 'dual-control').satisfied).toBe(false);
  });
});

const SIGNATURE = '-----BEGIN SSH SIGNATURE-----\nU1NIU0lHAAAAAQAAADMAAAALc3NoLWVkMjU1MTkAAAAg\n-----END SSH SIGNATURE-----\n';

describe('parseApproval', () => {
  it('takes unsigned and signed approvals', () => {
    expect(parseApproval({ approver: ' alice ', comment: 'go' })).toEqual({ approver: 'alice', comment: 'go' });
    expect(parseApproval({ approver: 'alice', statement: 's\n', signature: SIGNATURE })).toEqual({ approver: 'alice', statement: 's\n', signature: SIGNATURE });
  });

  it('names what is malformed, and refuses a signature that is not an SSH signature', () => {
    expect(parseApproval('alice')).toContain('malformed signal: expected {"approver"');
    expect(parseApproval({ approver: '' })).toBe('malformed signal: "approver" must be a non-empty string');
    expect(parseApproval({ approver: 'bob', comment: 42 })).toBe('malformed signal: "comment" must be a string');
    expect(parseApproval({ approver: 'bob', statement: 'x' })).toBe('malformed signal: "statement" and "signature" go together');
    for (const signature of ['trust me', '-----BEGIN PGP SIGNATURE-----\nabc\n-----END PGP SIGNATURE-----\n', 42]) {
      expect(parseApproval({ approver: 'bob', statement: 'x', signature })).toBe(
        'the signature is not an SSH signature: expected the -----BEGIN SSH SIGNATURE----- block that ssh-keygen -Y sign writes',
      );
    }
  });
});

const fields: StatementFields = {
  workflowId: 'restore-prod-20261126T170000Z',
  runId: '3f0c7a4e-1111-4222-8333-944455556666',
  mode: 'restore',
  backupId: '20261126T020000Z-daily',
  repository: 's3',
  database: 'erp4 "new"',
  assetDir: '/srv/erp4/files',
  roles: { apply: true, create: ['erp4_report'], change: ['erp4_app'] },
};

describe('approvalStatement and judgeStatement', () => {
  it('names the run, backup, target and roles plan, one JSON value per line', () => {
    expect(approvalStatement(fields, 'incident 42')).toBe(
      [
        'erp4-backup approve-restore v1',
        'workflow-id: "restore-prod-20261126T170000Z"',
        'run-id: "3f0c7a4e-1111-4222-8333-944455556666"',
        'mode: "restore"',
        'backup-id: "20261126T020000Z-daily"',
        'repository: "s3"',
        'database: "erp4 \\"new\\""',
        'asset-dir: "/srv/erp4/files"',
        'apply-roles: yes',
        'create-roles: ["erp4_report"]',
        'change-roles: ["erp4_app"]',
        'comment: "incident 42"',
        '',
      ].join('\n'),
    );
    expect(approvalStatement({ ...fields, assetDir: undefined, roles: { apply: false, create: ['x'], change: [] } })).toMatch(/asset-dir: none\napply-roles: no\n$/);
  });

  it('accepts the statement it expects, with or without a comment', () => {
    expect(judgeStatement(fields, approvalStatement(fields))).toEqual({});
    expect(judgeStatement(fields, approvalStatement(fields, 'line\nbreak'))).toEqual({ comment: 'line\nbreak' });
  });

  it('refuses a statement of another run as replayed, and one of another plan naming the field', () => {
    expect(judgeStatement(fields, approvalStatement({ ...fields, runId: 'aaaaaaaa-1111-4222-8333-944455556666' }))).toEqual({
      refused:
        'replayed from another run: signed for workflow "restore-prod-20261126T170000Z" run "aaaaaaaa-1111-4222-8333-944455556666", this is workflow "restore-prod-20261126T170000Z" run "3f0c7a4e-1111-4222-8333-944455556666"',
    });
    expect(judgeStatement(fields, approvalStatement({ ...fields, workflowId: 'restore-old' }))).toMatchObject({ refused: expect.stringContaining('replayed from another run') });
    expect(judgeStatement(fields, approvalStatement({ ...fields, backupId: '20261125T020000Z-daily' }))).toEqual({
      refused: 'signed for another plan: backup-id is "20261125T020000Z-daily", this restore\'s is "20261126T020000Z-daily"',
    });
    expect(judgeStatement(fields, approvalStatement({ ...fields, roles: { apply: true, create: [], change: ['erp4_app'] } }))).toMatchObject({
      refused: expect.stringContaining('create-roles is []'),
    });
  });

  it('refuses other text and extra lines', () => {
    expect(judgeStatement(fields, 'I approve everything\n')).toMatchObject({ refused: expect.stringContaining('not an approval statement') });
    expect(judgeStatement(fields, `${approvalStatement(fields)}also: "drop everything"\n`)).toMatchObject({ refused: expect.stringContaining('lines an approval statement does not have') });
  });
});

// Well-formed ed25519 public key blobs (type prefix and base64), used as data only: nothing verifies with them.
const ALICE_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHW+SQ3MmlHKKYoFgV2LJSzvNgxEcnP1zKBq+JYiMyqo';
const BOB_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFzO7dOw+4MJbBn7eSNVVYK/O6uhQ6OpN8QxIPTcbJpE';

describe('parseAllowedSigners', () => {
  it('reads principals, options and keys; skips comments and blank lines', () => {
    const signers = parseAllowedSigners(`# approvers\n\nalice ${ALICE_KEY} alice@laptop\nbob,carol namespaces="file,erp4-backup-approve" ${BOB_KEY}\n`);
    expect(signers).toEqual([
      { line: 3, principals: ['alice'], key: ALICE_KEY, text: `alice ${ALICE_KEY} alice@laptop` },
      { line: 4, principals: ['bob', 'carol'], key: BOB_KEY, text: `bob,carol namespaces="file,erp4-backup-approve" ${BOB_KEY}` },
    ]);
    expect(unknownPrincipalProblem(signers, ['alice', 'bob', 'carol'])).toBeUndefined();
    expect(unknownPrincipalProblem(signers, ['alice', 'bob'])).toBe('line 4: "carol" is not in RESTORE_APPROVERS (alice, bob); expected a key per configured approver only');
  });

  it.each([
    ['a wildcard principal', `*@example.com ${ALICE_KEY}`, 'line 1: principal "*@example.com" is not an approver name'],
    ['a certificate authority', `alice cert-authority ${ALICE_KEY}`, 'line 1: cert-authority is not accepted'],
    ['another namespace only', `alice namespaces="git" ${ALICE_KEY}`, 'namespaces="git" excludes erp4-backup-approve'],
    ['no key', 'alice', 'line 1: no key'],
    ['not a key type', 'alice ssh-dss AAAA', '"ssh-dss" is not an OpenSSH key type'],
    ['a key blob of another type', `alice ssh-rsa ${ALICE_KEY.split(' ')[1]}`, 'the ssh-rsa key is missing or is not a base64 ssh-rsa public key'],
    ['text instead of a key', 'alice ssh-ed25519 not-base64!', 'the ssh-ed25519 key is missing or is not a base64'],
  ])('refuses %s, naming the line', (_title, text, message) => {
    expect(() => parseAllowedSigners(`${text}\n`)).toThrow(message);
  });
});

describe('approverListProblem and approvalSetupProblem', () => {
  const keys = (...names: string[]) => names.map((name) => ({ principals: [name] }));
  it('refuses an empty list, and a list of one role for dual control', () => {
    expect(approverListProblem([], 'single')).toContain('RESTORE_APPROVERS is empty');
    expect(approverListProblem([{ name: 'alice', role: 'admin' }, { name: 'carol', role: 'admin' }], 'dual-control')).toContain('only one role');
    expect(approverListProblem([{ name: 'alice', role: 'admin' }], 'single')).toBeUndefined();
    expect(approverListProblem(approvers, 'dual-control')).toBeUndefined();
  });

  it('needs keys of two roles for a Restore, and a key or DRILL_ACCEPT_UNSIGNED_APPROVALS for a drill', () => {
    expect(approvalSetupProblem(approvers, 'dual-control', { acceptUnsigned: false })).toContain('RESTORE_ALLOWED_SIGNERS_FILE is not set');
    expect(approvalSetupProblem(approvers, 'dual-control', { allowedSigners: keys('alice', 'carol'), acceptUnsigned: false })).toContain('only one role');
    expect(approvalSetupProblem(approvers, 'dual-control', { allowedSigners: keys('alice', 'bob'), acceptUnsigned: false })).toBeUndefined();
    expect(approvalSetupProblem(approvers, 'single', { acceptUnsigned: false })).toContain('DRILL_ACCEPT_UNSIGNED_APPROVALS is false');
    expect(approvalSetupProblem(approvers, 'single', { acceptUnsigned: true })).toBeUndefined();
    expect(approvalSetupProblem(approvers, 'single', { allowedSigners: keys('bob'), acceptUnsigned: false })).toBeUndefined();
  });
});

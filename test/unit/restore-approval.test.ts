import { describe, expect, it } from 'vitest';
import { approverListProblem, evaluateApprovals, type Approver, type ReceivedApproval } from '../../src/restore/approval.js';

const approvers: Approver[] = [
  { name: 'alice', role: 'admin' },
  { name: 'carol', role: 'admin' },
  { name: 'bob', role: 'management' },
];
const signals = (...payloads: unknown[]): ReceivedApproval[] => payloads.map((payload, i) => ({ payload, at: `2026-11-26T00:00:0${i}Z` }));

describe('evaluateApprovals: a drill (single)', () => {
  it('is satisfied by one configured approver', () => {
    const state = evaluateApprovals(signals({ approver: 'alice', comment: 'go' }), approvers, 'single');
    expect(state.satisfied).toBe(true);
    expect(state.accepted).toEqual([{ approver: 'alice', role: 'admin', comment: 'go', at: '2026-11-26T00:00:00Z' }]);
  });

  it('ignores and records an unknown approver and malformed signals', () => {
    const state = evaluateApprovals(signals({ approver: 'mallory' }, 'alice', { approver: '' }, { approver: 'bob', comment: 42 }), approvers, 'single');
    expect(state.satisfied).toBe(false);
    expect(state.missing).toBe('an approval from a configured approver');
    expect(state.ignored.map((r) => [r.approver, r.ignoredBecause])).toEqual([
      ['mallory', '"mallory" is not a configured approver (RESTORE_APPROVERS)'],
      ['(unknown)', 'malformed signal: expected {"approver": "<name>", "comment": "..."}'],
      ['(unknown)', 'malformed signal: "approver" must be a non-empty string'],
      ['(unknown)', 'malformed signal: "comment" must be a string'],
    ]);
  });

  it('judges signals received before the approver list was known once it is', () => {
    const received = signals({ approver: 'alice' });
    expect(evaluateApprovals(received, undefined, 'single').satisfied).toBe(false);
    expect(evaluateApprovals(received, approvers, 'single').satisfied).toBe(true);
  });
});

describe('evaluateApprovals: a production restore (dual control, S13)', () => {
  it.each([
    ['one approval', [{ approver: 'alice' }], false, 'an approval from a role other than admin'],
    ['one person twice', [{ approver: 'alice' }, { approver: 'alice' }], false, 'an approval from a role other than admin'],
    ['two people of the same role', [{ approver: 'alice' }, { approver: 'carol' }], false, 'an approval from a role other than admin'],
    ['an unknown second approver', [{ approver: 'alice' }, { approver: 'mallory' }], false, 'an approval from a role other than admin'],
    ['two people of two roles', [{ approver: 'alice' }, { approver: 'bob' }], true, undefined],
    ['none', [], false, 'approvals from two approvers of two different roles'],
  ])('%s -> satisfied %s', (_title, payloads, satisfied, missing) => {
    const state = evaluateApprovals(signals(...payloads), approvers, 'dual-control');
    expect(state.satisfied).toBe(satisfied);
    expect(state.missing).toBe(missing);
  });

  it('records the repeated approval as ignored, naming the person', () => {
    const state = evaluateApprovals(signals({ approver: 'alice' }, { approver: 'alice' }), approvers, 'dual-control');
    expect(state.accepted).toHaveLength(1);
    expect(state.ignored[0]?.ignoredBecause).toBe('alice already approved: one person counts once');
  });
});

describe('approverListProblem', () => {
  it('refuses an empty list, and a list of one role for dual control', () => {
    expect(approverListProblem([], 'single')).toContain('RESTORE_APPROVERS is empty');
    expect(approverListProblem([{ name: 'alice', role: 'admin' }, { name: 'carol', role: 'admin' }], 'dual-control')).toContain('only one role');
    expect(approverListProblem([{ name: 'alice', role: 'admin' }], 'single')).toBeUndefined();
    expect(approverListProblem(approvers, 'dual-control')).toBeUndefined();
  });
});

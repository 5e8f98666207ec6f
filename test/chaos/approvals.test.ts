import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import type { WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities/index.js';
import { approveCommand } from '../../src/commands/approve.js';
import { loadConfig } from '../../src/config.js';
import { createBackupRuntime } from '../../src/runtime.js';
import { approvalStatement, type StatementFields } from '../../src/restore/approval-statement.js';
import type { ApprovalRecord } from '../../src/restore/approval.js';
import type { RestoreReport } from '../../src/restore/report.js';
import { NightlyBackup, Restore, RestoreDrill } from '../../workflows/index.js';
import { approveRestoreSignal, cancelRestoreSignal, type ApproveRestoreSignal, type NightlyBackupResult, type RestoreStatus } from '../../workflows/messages.js';
import { createApprovers, type TestApprovers } from '../helpers/approvers.js';
import { databasesLike, inPhase, waitForStatus } from '../helpers/drill.js';
import { productEnv, startProduct, type RunningProduct } from '../helpers/product.js';
import { services } from '../helpers/services.js';
import { recordResult, trialCount } from './reliability.js';

const TEST_FILE = 'test/chaos/approvals.test.ts';

// Signed approvals (issue 14, S13) against an adversarial operator who can send any signal:
// only approvals signed by keys the WORKER lists for the named approver, for THIS run and plan,
// sent while the run awaits approval, count. Real Temporal dev server, worker and ssh-keygen.
describe('signed approvals of a production Restore', () => {
  const s = services();
  const target = `erp4_approvals_${process.pid}`;
  let approvers: TestApprovers;
  let product: RunningProduct;
  let env: Record<string, string>;
  let backup: NightlyBackupResult;
  /** A valid approval by alice for an earlier run (the early-approval test's), to replay. */
  let earlierRunApproval: ApproveRestoreSignal | undefined;

  const startRestore = (workflowId: string, options: { startDelay?: string; approvalTimeoutSeconds?: number } = {}) =>
    product.client.workflow.start(Restore, {
      taskQueue: product.config.temporal.taskQueue,
      workflowId,
      args: [{ backupId: backup.backupId, repository: 'local', approvalTimeoutSeconds: options.approvalTimeoutSeconds ?? 600 }],
      ...(options.startDelay ? { startDelay: options.startDelay } : {}),
    });
  /** Sends one signal and waits until the workflow has judged it. */
  const send = async (handle: WorkflowHandle, payload: unknown): Promise<RestoreStatus> => {
    const seen = (st: RestoreStatus) => st.approvals.accepted.length + st.approvals.ignored.length;
    const before = seen(await waitForStatus(handle, () => true));
    await handle.signal(approveRestoreSignal, payload as ApproveRestoreSignal);
    return waitForStatus(handle, (st) => seen(st) > before);
  };
  const reasonFor = (status: RestoreStatus, approver: string): string | undefined =>
    status.approvals.ignored.filter((a) => a.approver === approver).at(-1)?.ignoredBecause;
  const readReport = async (keys: string[]): Promise<RestoreReport> => {
    const key = keys.find((k) => k.startsWith('local:') && k.endsWith('.json'))!;
    return JSON.parse((await product.runtime.repositories.get('local')!.getBytes(key.slice('local:'.length))).toString('utf8')) as RestoreReport;
  };
  const cancel = async (handle: WorkflowHandle) => {
    await handle.signal(cancelRestoreSignal, { by: 'test', reason: 'outcome checked' });
    return (await handle.result()) as Awaited<ReturnType<typeof Restore>>;
  };

  beforeAll(async () => {
    // dave:management shares carol's key: one key must not approve for two people.
    approvers = await createApprovers(['alice', 'carol', 'bob', 'dave', 'mallory'], ['alice', 'carol', 'bob']);
    await approvers.allow({ alice: 'alice', carol: 'carol', bob: 'bob', dave: 'carol' });
    env = await productEnv(s, 'approvals', {
      assets: false,
      env: {
        RESTORE_APPROVERS: 'alice:admin,carol:admin,bob:management,dave:management',
        RESTORE_ALLOWED_SIGNERS_FILE: approvers.allowedSignersFile,
        RESTORE_TARGET_DB: target,
      },
    });
    product = await startProduct(s, env);
    backup = await product.client.workflow.execute(NightlyBackup, {
      taskQueue: product.config.temporal.taskQueue,
      workflowId: `approvals-backup-${process.pid}-${Date.now()}`,
      args: [{ kind: 'daily' }],
    });
  });

  afterAll(async () => {
    await product?.close();
    if (product) await rm(product.config.local.backupDir, { recursive: true, force: true });
    await approvers?.close();
  });

  it('ignores approvals sent before awaiting-approval, even validly signed ones of two roles', async () => {
    const trials = trialCount({ ci: 1, chaos: 3 });
    const notes: string[] = [];
    let survived = 0;
    try {
      for (let trial = 0; trial < trials; trial++) {
        const workflowId = `approvals-early-${process.pid}-${trial}`;
        // Delayed start: the run exists (its run id is known) but has not run a step when the
        // signals arrive, so they are delivered in its very first activation, phase `selecting`.
        const handle = await startRestore(workflowId, { startDelay: '5s' });
        const fields: StatementFields = {
          workflowId,
          runId: handle.firstExecutionRunId,
          mode: 'restore',
          backupId: backup.backupId,
          repository: 'local',
          database: target,
        };
        const early = [await approvers.signed(fields, 'alice'), await approvers.signed(fields, 'bob')];
        for (const payload of early) await handle.signal(approveRestoreSignal, payload);
        earlierRunApproval ??= early[0];

        const waiting = await waitForStatus(handle, inPhase('awaiting-approval'));
        // The signatures were right for this run: only their timing is wrong.
        expect(waiting.approvals.statement).toBe(approvalStatement(fields));
        expect(waiting.approvals).toMatchObject({ satisfied: false, accepted: [] });
        expect(waiting.approvals.ignored.map((a) => [a.approver, a.ignoredBecause])).toEqual([
          ['alice', 'sent while the run was not awaiting approval (phase selecting): approvals count only while it awaits approval'],
          ['bob', 'sent while the run was not awaiting approval (phase selecting): approvals count only while it awaits approval'],
        ]);
        const result = await cancel(handle);
        expect(result.outcome).toBe('cancelled');
        expect((await readReport(result.reportKeys)).approvals.ignored.map((a) => a.approver)).toEqual(['alice', 'bob']);
        expect(await databasesLike(s, target)).toEqual([]);
        notes.push(`trial ${trial + 1}: 2 signed approvals before awaiting-approval ignored; cancelled, no database`);
        survived += 1;
      }
    } finally {
      recordResult({
        id: '50-approvals-early',
        fault: 'Approvals of a production Restore sent before it awaits approval (validly signed by two roles, delivered in its first activation): ignored',
        trials,
        survived,
        dataLost: 0,
        notes: notes.join(' | '),
        test: TEST_FILE,
      });
    }
  }, 180_000);

  it('counts only valid signatures of two keys of two roles given while it waits: unsigned, forged, replayed, repeated, one role, one key for two names, and removed keys do not count', async () => {
    const handle = await startRestore(`approvals-forged-${process.pid}`);
    const waiting = await waitForStatus(handle, inPhase('awaiting-approval'));
    expect(waiting.approvals).toMatchObject({ rule: 'dual-control', satisfied: false, statement: expect.stringContaining(`run-id: "${handle.firstExecutionRunId}"`) });
    const forged: string[] = [];

    let status = await send(handle, { approver: 'alice', comment: 'trust me' });
    expect(reasonFor(status, 'alice')).toBe('unsigned: a production Restore counts only approvals signed with a key in RESTORE_ALLOWED_SIGNERS_FILE (erp4-backup approve --key)');
    forged.push('unsigned');

    status = await send(handle, await approvers.signedFor(handle, 'alice', { keyOf: 'mallory' }));
    expect(reasonFor(status, 'alice')).toMatch(/^the signature does not verify with alice's key in RESTORE_ALLOWED_SIGNERS_FILE \(forged, signed by another key or over another text\)/);
    forged.push("signed by mallory's key as alice");

    status = await send(handle, await approvers.signedFor(handle, 'mallory'));
    expect(reasonFor(status, 'mallory')).toBe('"mallory" is not a configured approver (RESTORE_APPROVERS)');
    forged.push('a stranger (mallory)');

    const genuine = await approvers.signedFor(handle, 'alice');
    status = await send(handle, { ...genuine, signature: 'I, alice, approve' });
    expect(reasonFor(status, 'alice')).toBe('the signature is not an SSH signature: expected the -----BEGIN SSH SIGNATURE----- block that ssh-keygen -Y sign writes');
    forged.push('not a signature');

    status = await send(handle, { ...genuine, statement: genuine.statement!.replace(/^mode: .*$/m, 'mode: "drill"') });
    expect(reasonFor(status, 'alice')).toBe('signed for another plan: mode is "drill", this restore\'s is "restore"');
    forged.push('statement of another plan');

    expect(earlierRunApproval, 'the early-approval test ran first').toBeDefined();
    status = await send(handle, earlierRunApproval);
    expect(reasonFor(status, 'alice')).toMatch(/^replayed from another run: signed for workflow "approvals-early-\d+-0" run "[0-9a-f-]{36}", this is workflow "approvals-forged-\d+" run /);
    recordResult({
      id: '51-approvals-replayed',
      fault: "A production Restore sent another run's validly signed approval (replayed signal): ignored",
      trials: 1,
      survived: 1,
      dataLost: 0,
      notes: reasonFor(status, 'alice')!.slice(0, 140),
      test: TEST_FILE,
    });
    expect(status.approvals.accepted).toEqual([]);

    // Genuine approvals: alice counts once; carol is a second admin; dave signs with carol's key.
    status = await send(handle, await approvers.signedFor(handle, 'alice', { comment: 'incident 42' }));
    expect(status.approvals.accepted).toMatchObject([{ approver: 'alice', role: 'admin', comment: 'incident 42', key: await approvers.fingerprint('alice') }]);
    status = await send(handle, await approvers.signedFor(handle, 'alice'));
    expect(reasonFor(status, 'alice')).toBe('alice already approved: one person counts once');
    status = await send(handle, await approvers.signedFor(handle, 'carol'));
    expect(status.approvals).toMatchObject({ satisfied: false, missing: 'an approval from a role other than admin' });
    status = await send(handle, await approvers.signedFor(handle, 'dave', { keyOf: 'carol' }));
    expect(reasonFor(status, 'dave')).toBe(`signed with the key that signed carol's approval (${await approvers.fingerprint('carol')}): two approvals need two different keys`);
    forged.push("dave signing with carol's key");
    expect(status.approvals.accepted.map((a) => a.approver)).toEqual(['alice', 'carol']);
    expect(status.phase).toBe('awaiting-approval');

    // The admins' keys are withdrawn while the restore waits: bob's approval would complete the
    // rule, the worker verifies again, and alice's and carol's approvals no longer count.
    await approvers.allow({ bob: 'bob' });
    status = await send(handle, await approvers.signedFor(handle, 'bob'));
    status = await waitForStatus(handle, (st) => st.approvals.ignored.some((a) => a.ignoredBecause?.startsWith('no longer counts')));
    expect(status.approvals).toMatchObject({ satisfied: false, accepted: [{ approver: 'bob', role: 'management' }] });
    const withdrawn = status.approvals.ignored.filter((a: ApprovalRecord) => a.ignoredBecause?.startsWith('no longer counts'));
    expect(withdrawn.map((a) => [a.approver, a.ignoredBecause])).toEqual([
      ['alice', 'no longer counts at decision time: RESTORE_ALLOWED_SIGNERS_FILE holds no key of alice'],
      ['carol', 'no longer counts at decision time: RESTORE_ALLOWED_SIGNERS_FILE holds no key of carol'],
    ]);
    expect(status.phase).toBe('awaiting-approval');

    const result = await cancel(handle);
    expect(result.outcome).toBe('cancelled');
    expect(await databasesLike(s, target)).toEqual([]);
    const report = await readReport(result.reportKeys);
    expect(report.approvals.accepted.map((a) => a.approver)).toEqual(['bob']);
    expect(report.approvals.ignored.map((a) => a.ignoredBecause)).toEqual(expect.arrayContaining([expect.stringContaining('forged'), expect.stringContaining('replayed from another run')]));
    recordResult({
      id: '52-approvals-forged',
      fault: 'Forged approvals of a production Restore (unsigned, signed by another key, not a signature, another plan, a stranger, one key for two names) and keys withdrawn while it waits: none counted',
      trials: forged.length,
      survived: forged.length,
      dataLost: 0,
      notes: `${forged.join(', ')}; withdrawn keys of alice and carol stopped counting when bob's approval would have completed the rule; nothing restored`,
      test: TEST_FILE,
    });
  }, 240_000);

  it('an approver removed from RESTORE_APPROVERS while the restore waits no longer counts once the worker runs with the new list', async () => {
    await approvers.allow({ alice: 'alice', bob: 'bob' });
    const workflowId = `approvals-removed-${process.pid}`;
    let handle: WorkflowHandle = await startRestore(workflowId);
    await waitForStatus(handle, inPhase('awaiting-approval'));
    let status = await send(handle, await approvers.signedFor(handle, 'alice'));
    expect(status.approvals.accepted.map((a) => a.approver)).toEqual(['alice']);

    // The operators drop alice (her name and her key) and restart the worker on the same queue.
    await product.close();
    await approvers.allow({ bob: 'bob' });
    product = await startProduct(s, { ...env, RESTORE_APPROVERS: 'carol:admin,bob:management,dave:management' });
    handle = product.client.workflow.getHandle(workflowId);
    status = await send(handle, await approvers.signedFor(handle, 'bob'));
    expect(status.approvals).toMatchObject({ satisfied: false, accepted: [{ approver: 'bob' }] });
    expect(reasonFor(status, 'alice')).toBe('no longer counts at decision time: "alice" is not a configured approver (RESTORE_APPROVERS)');
    expect((await cancel(handle)).outcome).toBe('cancelled');
    expect(await databasesLike(s, target)).toEqual([]);
  }, 180_000);

  it('without keys of two roles a Restore stops before fetching anything; a drill needs a key or DRILL_ACCEPT_UNSIGNED_APPROVALS', async () => {
    const plan = async (overrides: Record<string, string>, mode: 'restore' | 'drill') => {
      const runtime = await createBackupRuntime(loadConfig({ ...env, ...overrides }));
      try {
        return await createActivities(runtime).planRestore({ workflowId: `approvals-plan-${process.pid}`, runId: randomUUID(), mode, backupId: backup.backupId });
      } finally {
        await Promise.all([...runtime.repositories.values()].map((r) => r.close()));
      }
    };
    await expect(plan({ RESTORE_ALLOWED_SIGNERS_FILE: '' }, 'restore')).rejects.toThrow(
      'RESTORE_ALLOWED_SIGNERS_FILE is not set: a production Restore counts only signed approvals, so nobody could approve it',
    );
    await expect(plan({ RESTORE_ALLOWED_SIGNERS_FILE: '' }, 'drill')).rejects.toThrow('RESTORE_ALLOWED_SIGNERS_FILE is not set and DRILL_ACCEPT_UNSIGNED_APPROVALS is false');
    await expect(plan({ RESTORE_ALLOWED_SIGNERS_FILE: '', DRILL_ACCEPT_UNSIGNED_APPROVALS: 'true' }, 'drill')).resolves.toMatchObject({ preApproved: false });
    await approvers.allow({ alice: 'alice', carol: 'carol' });
    await expect(plan({}, 'restore')).rejects.toThrow('RESTORE_ALLOWED_SIGNERS_FILE has keys of approvers of only one role');
    // Keys of two roles (and names the running worker, restarted above without alice, knows too).
    await approvers.allow({ carol: 'carol', bob: 'bob' });
    await expect(plan({}, 'restore')).resolves.toMatchObject({ database: target });
    expect(await databasesLike(s, target)).toEqual([]);
  });

  it('a drill refuses unsigned approvals by default and takes one signed with `erp4-backup approve --key`', async () => {
    const handle = await product.client.workflow.start(RestoreDrill, {
      taskQueue: product.config.temporal.taskQueue,
      workflowId: `approvals-drill-${process.pid}`,
      args: [{ backupId: backup.backupId, repository: 'local' }],
    });
    await waitForStatus(handle, inPhase('awaiting-approval'));
    const status = await send(handle, { approver: 'bob' });
    expect(reasonFor(status, 'bob')).toBe('unsigned: this worker counts only signed drill approvals (erp4-backup approve --key, or DRILL_ACCEPT_UNSIGNED_APPROVALS=true)');

    let text = '';
    const out = new PassThrough().setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    expect(await approveCommand(product.config, handle.workflowId, { as: 'bob', key: approvers.keyFile('bob'), comment: 'monthly drill' }, out)).toBe(true);
    expect(text).toContain('mode: "drill"');
    expect(text).toContain('approval by bob accepted; the restore proceeds');
    const result = await handle.result();
    expect(result.outcome).toBe('passed');
    expect((await readReport(result.reportKeys)).approvals.accepted).toMatchObject([{ approver: 'bob', role: 'management', comment: 'monthly drill' }]);
  }, 180_000);
});

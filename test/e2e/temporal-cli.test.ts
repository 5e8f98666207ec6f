import { execFile } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approveCommand } from '../../src/commands/approve.js';
import { drillCommand } from '../../src/commands/drill.js';
import { restoreCommand } from '../../src/commands/restore.js';
import { NightlyBackup } from '../../workflows/index.js';
import type { NightlyBackupResult, RestoreResult, RestoreStatus } from '../../workflows/messages.js';
import { createApprovers, type TestApprovers } from '../helpers/approvers.js';
import { productEnv, startProduct, type RunningProduct } from '../helpers/product.js';
import { services } from '../helpers/services.js';

const run = promisify(execFile);

// The operators' entry points (issue 4, item 4): the real `temporal` CLI starts a drill and
// approves it, exactly as the README documents; and our own `drill` / `approve` commands.
describe('operators start and approve drills', () => {
  const s = services();
  let product: RunningProduct;
  let backup: NightlyBackupResult;
  let approvers: TestApprovers;

  /** The documented command line, plus where the server is. */
  const temporal = async (...args: string[]): Promise<string> =>
    (await run(s.temporal.cliPath, [...args, '--address', s.temporal.address, '--namespace', s.temporal.namespace], { timeout: 60_000 })).stdout;

  beforeAll(async () => {
    approvers = await createApprovers(['alice', 'bob']);
    product = await startProduct(
      s,
      await productEnv(s, 'cli', { env: { RESTORE_APPROVERS: 'alice:admin,bob:management', RESTORE_ALLOWED_SIGNERS_FILE: approvers.allowedSignersFile } }),
    );
    backup = await product.client.workflow.execute(NightlyBackup, {
      taskQueue: product.config.temporal.taskQueue,
      workflowId: `cli-backup-${process.pid}-${Date.now()}`,
      args: [{ kind: 'daily' }],
    });
  });

  afterAll(async () => {
    await product?.close();
    if (product) await rm(product.config.local.backupDir, { recursive: true, force: true });
    await approvers?.close();
  });

  it('`temporal workflow start --type RestoreDrill` and the README\'s signed `temporal workflow signal --name approve-restore` run a drill to the end', async () => {
    const workflowId = `drill-cli-${process.pid}`;
    const taskQueue = product.config.temporal.taskQueue;
    await temporal('workflow', 'start', '--type', 'RestoreDrill', '--task-queue', taskQueue, '--workflow-id', workflowId, '--input', '{"backupId":"latest","repository":"local"}');

    let status: RestoreStatus | undefined;
    for (let attempt = 0; attempt < 100 && status?.phase !== 'awaiting-approval'; attempt++) {
      if (attempt > 0) await sleep(200);
      const output = await temporal('workflow', 'query', '--workflow-id', workflowId, '--name', 'status', '--output', 'json').catch(() => '');
      if (output) status = (JSON.parse(output) as { queryResult: RestoreStatus[] }).queryResult[0];
    }
    expect(status).toMatchObject({ phase: 'awaiting-approval', backup: { id: backup.backupId } });

    // The README's block, run as written, with this drill's id and alice's key.
    const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
    const block = /<!-- signed-approval:begin -->\n```sh\n([\s\S]*?)```\n<!-- signed-approval:end -->/.exec(readme)?.[1];
    expect(block, "README's signed-approval block").toBeDefined();
    const script = block!.replace(/^WORKFLOW_ID=\S+$/m, `WORKFLOW_ID='${workflowId}'`).replace(/^KEY=\S+$/m, `KEY='${approvers.keyFile('alice')}'`);
    expect(script).toContain(`WORKFLOW_ID='${workflowId}'`);
    expect(script).toContain(`KEY='${approvers.keyFile('alice')}'`);
    await run('bash', ['-euo', 'pipefail', '-c', script], {
      cwd: approvers.dir,
      timeout: 60_000,
      env: { ...process.env, PATH: `${dirname(s.temporal.cliPath)}:${process.env.PATH}`, TEMPORAL_ADDRESS: s.temporal.address, TEMPORAL_NAMESPACE: s.temporal.namespace },
    });
    const output = await temporal('workflow', 'result', '--workflow-id', workflowId, '--output', 'json');
    const result = (JSON.parse(output) as { result: RestoreResult }).result;
    expect(result).toMatchObject({ outcome: 'passed', backupId: backup.backupId });
    const final = (JSON.parse(await temporal('workflow', 'query', '--workflow-id', workflowId, '--name', 'status', '--output', 'json')) as { queryResult: RestoreStatus[] }).queryResult[0]!;
    expect(final.approvals.accepted).toMatchObject([{ approver: 'alice', role: 'admin', key: await approvers.fingerprint('alice') }]);
    expect(result.checks.length).toBeGreaterThan(0);
    expect(result.checks.every((c) => c.passed)).toBe(true);
  });

  it('`erp4-backup drill --follow` shows progress and how to approve; `erp4-backup approve` refuses an unknown name and accepts alice signing with her key in ssh-agent', async () => {
    const out = new PassThrough();
    let text = '';
    out.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    const drill = drillCommand(product.config, { backup: 'latest', repo: 'local', kind: 'daily', keepScratch: false, follow: true }, out);

    for (let attempt = 0; attempt < 300 && !text.includes('waiting for'); attempt++) await sleep(100);
    const workflowId = /workflow id (\S+)/.exec(text)?.[1];
    expect(workflowId).toMatch(/^drill-test-\d{8}T\d{6}Z$/);
    expect(text).toContain(`waiting for an approval from a configured approver until`);
    expect(text).toContain(`erp4-backup approve ${workflowId} --as <name> --key <your ssh key>`);

    const approvals = new PassThrough();
    let approvalText = '';
    approvals.setEncoding('utf8').on('data', (chunk: string) => (approvalText += chunk));
    expect(await approveCommand(product.config, workflowId!, { as: 'mallory' }, approvals)).toBe(false);
    expect(approvalText).toContain('approval by mallory IGNORED: "mallory" is not a configured approver (RESTORE_APPROVERS)');
    // The private key is only in ssh-agent: approve gets the public key file.
    const agent = await approvers.agentWith('alice');
    const socket = process.env.SSH_AUTH_SOCK;
    process.env.SSH_AUTH_SOCK = agent.socket;
    try {
      expect(await approveCommand(product.config, workflowId!, { as: 'alice', key: `${approvers.keyFile('alice')}.pub`, comment: 'ok' }, approvals)).toBe(true);
    } finally {
      if (socket === undefined) delete process.env.SSH_AUTH_SOCK;
      else process.env.SSH_AUTH_SOCK = socket;
      await agent.stop();
    }
    expect(approvalText).toContain(`signing as alice with ${approvers.keyFile('alice')}.pub:\n  erp4-backup approve-restore v1\n  workflow-id: "${workflowId}"`);
    expect(approvalText).toContain('  comment: "ok"');
    expect(approvalText).toContain('approval by alice accepted; the restore proceeds');

    const result = await drill;
    expect(result).toMatchObject({ outcome: 'passed', backupId: backup.backupId });
    expect(text).toContain(`backup ${backup.backupId} (daily, generated at ${backup.generatedAt}) from local`);
    expect(text).toContain('approved by alice (admin): ok');
    expect(text).toContain('ignored approval from mallory');
    expect(text).toMatch(/report: local:test\/meta\/drills\/.+\.json/);
    expect(text).toContain(`drill passed: backup ${backup.backupId}`);
  });

  it('`erp4-backup restore` never overwrites an existing database: by default the target is DB_NAME, which exists', async () => {
    const out = new PassThrough();
    let text = '';
    out.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    await expect(restoreCommand(product.config, { backup: 'latest', repo: 'local', kind: 'daily', applyGlobals: false, follow: true }, out)).rejects.toThrow(
      'Workflow execution failed',
    );
    expect(text).toContain(`started Restore into ${s.postgres.sampleDb}: workflow id restore-test-`);
    expect(text).toContain('it needs two approvals signed by two approvers of two different roles');
    expect(text).toContain(`FAILED at selecting: RESTORE_TARGET_DB: database "${s.postgres.sampleDb}" already exists and was not created by this restore`);
  });
});

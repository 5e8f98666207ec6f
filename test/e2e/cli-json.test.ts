import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliResult } from '../helpers/cli.js';
import { productEnv, startProduct, type RunningProduct } from '../helpers/product.js';
import { services } from '../helpers/services.js';
import { writeGoodAndCorruptBackups } from '../helpers/synthetic-backups.js';

/** `--json`: stdout is exactly one JSON document (JSON.parse of the whole of it), whatever else the command says on stderr. */
function document(result: CliResult): Record<string, unknown> {
  expect(() => JSON.parse(result.stdout), result.stdout).not.toThrow();
  const parsed = JSON.parse(result.stdout) as unknown;
  expect(typeof parsed).toBe('object');
  return parsed as Record<string, unknown>;
}

describe('erp4-backup --json on every command that reports', () => {
  const s = services();
  let env: Record<string, string>;
  let product: RunningProduct;
  const good = '20261101T170000Z-daily';
  const corrupt = '20261102T170000Z-daily';

  beforeAll(async () => {
    env = await productEnv(s, 'json', { assets: false, env: { BACKUP_ENV: 'json', DRILL_PREAPPROVED: 'true' } });
    // Its own env: drill and restore workflow ids (`drill-<env>-<second>`) never meet another file's.
    await writeGoodAndCorruptBackups(env, { good, corrupt });
    product = await startProduct(s, env);
  });
  afterAll(async () => product?.close());

  it('verify: the checks of each artifact', async () => {
    const ok = await runCli(['verify', good, '--json'], env);
    expect(ok.code, ok.stderr).toBe(0);
    expect(document(ok)).toMatchObject({ repository: 'local', backupId: good, verified: true });
    expect(document(ok).checks).toHaveLength(2);
    const bad = await runCli(['verify', corrupt, '--json'], env);
    expect(bad.code).toBe(1);
    expect(document(bad)).toMatchObject({ backupId: corrupt, verified: false });
    expect((document(bad).checks as Array<{ artifact: string; ok: boolean }>).find((c) => c.artifact === 'db')).toMatchObject({ ok: false });
  });

  it('backup: the result; its progress goes to stderr', async () => {
    const backup = await runCli(['backup', '--kind', 'daily', '--json'], env);
    expect(backup.code, backup.stderr).toBe(0);
    expect(document(backup)).toMatchObject({ workflowId: expect.stringMatching(/^backup-json-/), kind: 'daily', repositories: ['local'] });
    expect(backup.stderr).toMatch(/started NightlyBackup daily/);
    expect(backup.stderr).toMatch(/backup \S+ complete/);
    const failed = await runCli(['backup', '--kind', 'manual', '--json'], env);
    expect(failed.code).toBe(2);
    expect(document(failed)).toMatchObject({ workflowId: expect.stringMatching(/^backup-json-/), outcome: 'failed', error: expect.stringMatching(/a manual backup needs a label/) });
  });

  it('drill and approve: a failed drill is still one document, so is an approval that does not count', async () => {
    const drill = await runCli(['drill', '--repo', 'local', '--backup', good, '--json'], env);
    expect(drill.code).toBe(1);
    const failed = document(drill);
    expect(failed).toMatchObject({ workflowId: expect.stringMatching(/^drill-json-/), outcome: 'failed', error: expect.stringMatching(/failed at restoring/) });
    expect(drill.stderr).toMatch(/started RestoreDrill/);

    const approve = await runCli(['approve', failed.workflowId as string, '--as', 'alice', '--json'], env);
    expect(approve.code).toBe(1);
    expect(document(approve)).toEqual({ workflowId: failed.workflowId, approver: 'alice', accepted: false, detail: expect.stringMatching(/^not sent: the run is failed/) });
  });

  it('restore --no-follow: the workflow id', async () => {
    const restore = await runCli(['restore', '--repo', 'local', '--backup', good, '--no-follow', '--json'], { ...env, RESTORE_TARGET_DB: 'json_restore_never' });
    expect(restore.code, restore.stderr).toBe(0);
    const { workflowId } = document(restore);
    expect(workflowId).toMatch(/^restore-json-/);
    // It waits for two approvals: nobody gives them here.
    await product.client.workflow.getHandle(workflowId as string).terminate('test over');
  });

  it('prune --dry-run: the plan per repository', async () => {
    const prune = await runCli(['prune', '--dry-run', '--json'], env);
    expect(prune.code, prune.stderr).toBe(0);
    const result = document(prune);
    expect(result).toMatchObject({ env: 'json', dryRun: true });
    const ids = (result.plans as Array<{ repository: string; backups: Array<{ id: string }> }>).flatMap((plan) => plan.backups.map((b) => b.id));
    expect(ids).toContain(good);
  });
});

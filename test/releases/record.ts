import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropDatabase } from '../../src/pg/restore.js';
import { Freshness, NightlyBackup, Prune, Restore, RestoreDrill } from '../../workflows/index.js';
import { approveRestoreSignal } from '../../workflows/messages.js';
import { harnessDb, inPhase, waitForStatus } from '../helpers/drill.js';
import { createApprovers, type TestApprovers } from '../helpers/approvers.js';
import { createSampleDatabase, productEnv, startProduct, type RunningProduct } from '../helpers/product.js';
import { services } from '../helpers/services.js';
import { RELEASE_DB, RELEASE_ENV } from './fixtures.js';

/**
 * `npm run record-release`: keeps what THIS release writes, for every later release to read
 * (docs/DEPLOYS.md). Run it once per release, before tagging it; it refuses to overwrite an
 * earlier recording.
 *
 *   test/releases/<version>/repository/          a local repository with one daily backup
 *                                                (compatibility.test.ts lists, verifies, drills it)
 *   test/releases/<version>/histories/<Type>--<scenario>.json
 *                                                workflow histories (histories.test.ts replays them),
 *                                                their workflow ids in workflow-ids.json
 */
const version = process.env.npm_package_version;
const releaseDir = fileURLToPath(new URL(`./${version}/`, import.meta.url));
const TARGET_DB = `${RELEASE_DB}_restored`;

describe(`record release ${version}`, () => {
  const s = services();
  let product: RunningProduct;
  let approvers: TestApprovers;
  let backupId: string;
  const workflowIds: Record<string, string> = {};
  const taskQueue = () => product.config.temporal.taskQueue;

  /** The history as `temporal workflow show --output json` writes it: the replay file format of Temporal's tools. */
  async function keepHistory(handle: WorkflowHandle, name: string): Promise<void> {
    const { stdout } = await promisify(execFile)(
      s.temporal.cliPath,
      ['workflow', 'show', '--address', s.temporal.address, '--namespace', s.temporal.namespace, '--workflow-id', handle.workflowId, '--output', 'json'],
      { maxBuffer: 64 * 1024 * 1024 },
    );
    await mkdir(join(releaseDir, 'histories'), { recursive: true });
    await writeFile(join(releaseDir, 'histories', `${name}.json`), stdout);
    // The workflow id is part of what a run signs and checks (approval statements): replay needs it.
    workflowIds[`${name}.json`] = handle.workflowId;
    await writeFile(join(releaseDir, 'histories', 'workflow-ids.json'), `${JSON.stringify(workflowIds, null, 2)}\n`);
  }

  beforeAll(async () => {
    expect(version, 'run it as `npm run record-release`').toMatch(/^\d+\.\d+\.\d+$/);
    const existing = await readdir(releaseDir).catch(() => []);
    expect(existing, `${releaseDir} exists: recordings of a release are never overwritten`).toEqual([]);
    await createSampleDatabase(s, RELEASE_DB);
    approvers = await createApprovers(['alice', 'bob']);
    const env = await productEnv(s, 'release', {
      env: { BACKUP_ENV: RELEASE_ENV, DB_NAME: RELEASE_DB, RESTORE_APPROVERS: 'alice:admin,bob:management', RESTORE_ALLOWED_SIGNERS_FILE: approvers.allowedSignersFile, RESTORE_TARGET_DB: TARGET_DB, RESTORE_ASSET_DIR: join(await mkdtemp(join(tmpdir(), 'release-assets-')), 'restored') },
    });
    product = await startProduct(s, env);
  });
  afterAll(async () => {
    await product?.close();
    await approvers?.close();
    await dropDatabase(harnessDb(s), TARGET_DB);
  });

  it('keeps a local repository holding one daily backup, and the NightlyBackup history', async () => {
    const handle = await product.client.workflow.start(NightlyBackup, { taskQueue: taskQueue(), workflowId: `release-${version}-daily`, args: [{ kind: 'daily' }] });
    backupId = (await handle.result()).backupId;
    await keepHistory(handle, 'NightlyBackup--daily');
    const target = join(releaseDir, 'repository');
    await mkdir(target, { recursive: true });
    await cp(join(product.config.local.backupDir, RELEASE_ENV), join(target, RELEASE_ENV), { recursive: true });
    await writeFile(join(releaseDir, 'backup-id'), `${backupId}\n`);
  });

  it('keeps a RestoreDrill waiting for approval, and one that passed', async () => {
    const handle = await product.client.workflow.start(RestoreDrill, { taskQueue: taskQueue(), workflowId: `release-${version}-drill`, args: [{ backupId, repository: 'local' }] });
    await waitForStatus(handle, inPhase('awaiting-approval'));
    await keepHistory(handle, 'RestoreDrill--awaiting-approval');
    await handle.signal(approveRestoreSignal, await approvers.signedFor(handle, 'alice', { comment: 'release recording' }));
    expect((await handle.result()).outcome).toBe('passed');
    await keepHistory(handle, 'RestoreDrill--passed');
  });

  it('keeps a Restore between its two approvals, and one that passed', async () => {
    const handle = await product.client.workflow.start(Restore, { taskQueue: taskQueue(), workflowId: `release-${version}-restore`, args: [{ backupId, repository: 'local' }] });
    await waitForStatus(handle, inPhase('awaiting-approval'));
    await handle.signal(approveRestoreSignal, await approvers.signedFor(handle, 'alice'));
    await waitForStatus(handle, (status) => status.approvals.accepted.length === 1);
    await keepHistory(handle, 'Restore--between-approvals');
    await handle.signal(approveRestoreSignal, await approvers.signedFor(handle, 'bob'));
    expect((await handle.result()).outcome).toBe('passed');
    await keepHistory(handle, 'Restore--passed');
  });

  it('keeps a Prune and a Freshness run', async () => {
    const prune = await product.client.workflow.start(Prune, { taskQueue: taskQueue(), workflowId: `release-${version}-prune`, args: [{}] });
    await prune.result();
    await keepHistory(prune, 'Prune--all-repositories');
    const freshness = await product.client.workflow.start(Freshness, { taskQueue: taskQueue(), workflowId: `release-${version}-freshness`, args: [{}] });
    await freshness.result();
    await keepHistory(freshness, 'Freshness--one-check');
  });
});

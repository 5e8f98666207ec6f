import { MockActivityEnvironment } from '@temporalio/testing';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPruneActivities } from '../../activities/prune.js';
import type { BackupKind } from '../../src/layout.js';
import { retentionPolicyOf } from '../../src/prune-policy.js';
import { planRetention, type BackupRecord } from '../../src/retention.js';
import type { Repository } from '../../src/storage/repository.js';
import { Prune } from '../../workflows/index.js';
import type { PruneResult } from '../../workflows/messages.js';
import { productEnv, startProduct, type RunningProduct } from '../helpers/product.js';
import { services } from '../helpers/services.js';
import { syntheticKeys, writeSyntheticBackup } from '../helpers/synthetic-backups.js';
import { simulateSchedule } from '../unit/retention-simulation.js';

const s = services();
const WORKFLOW_DAYS = 3;

/**
 * Issue 5's acceptance run: 400 days of the production schedule (nightly, 6-hourly critical,
 * weekly full, pinned and unpinned manual snapshots) written as real files into a real local
 * repository, pruned every simulated evening with `now` advanced. The daily prune runs the Prune
 * activities directly (the same functions the worker runs); the last days run the whole Prune
 * workflow through Temporal. Every day the repository must hold exactly what the pure policy
 * keeps, and nothing else (no leftover artifact of a deleted backup).
 */
describe('400 simulated days pruned every day in a real repository', () => {
  let product: RunningProduct;
  let local: Repository;

  beforeAll(async () => {
    product = await startProduct(s, await productEnv(s, 'prune-sim', { assets: false, env: { LOCAL_RETENTION: 'gfs' } }));
    local = product.runtime.repositories.get('local')!;
  });
  afterAll(async () => {
    await product?.close();
  });

  it('ends with exactly 14 daily, 8 weekly, 12 monthly, the pinned and manual ones and the critical ones of the last 48 h', async () => {
    const layout = product.runtime.layout;
    const policy = retentionPolicyOf({ kind: 'gfs' }, product.config.timeZone);
    const days = simulateSchedule({
      firstDate: '2025-10-01',
      days: 400,
      pinnedManual: { 30: 'before release 4.1', 31: 'after release 4.1', 390: 'before release 5.0' },
      unpinnedManual: { 200: 'ad-hoc before data fix' },
      pinnedNightly: { 89: 'fiscal quarter close' },
    });
    const activities = createPruneActivities(product.runtime);
    const environment = new MockActivityEnvironment(undefined, { client: product.client });
    const run = <A extends unknown[], R>(activity: (...args: A) => Promise<R>, ...args: A) => environment.run(activity, ...args) as Promise<R>;

    let expected: BackupRecord[] = [];
    let last: PruneResult | undefined;
    for (const [index, day] of days.entries()) {
      for (const backup of day.backups) await writeSyntheticBackup(local, layout, backup);
      const now = day.pruneAt.toISOString();
      if (index < days.length - WORKFLOW_DAYS) {
        const { plans } = await run(activities.planPrune, { now, repositories: ['local'] });
        await run(activities.applyPrune, { plan: plans[0]! });
      } else {
        last = await product.client.workflow.execute(Prune, {
          taskQueue: product.config.temporal.taskQueue,
          workflowId: `prune-sim-${day.date}-${randomBytes(3).toString('hex')}`,
          args: [{ now, repositories: ['local'] }],
        });
      }
      expected = planRetention([...expected, ...day.backups], day.pruneAt, policy)
        .decisions.filter((d) => d.action === 'keep')
        .map((d) => d.backup);
      const stored = (await local.list(`${layout.env}/`)).map((object) => object.key).sort();
      expect(stored, day.date).toEqual(expected.flatMap((backup) => syntheticKeys(layout, backup.id)).sort());
    }

    // The named tiers, as the last workflow run's plan gives them for what it kept.
    const decisions = last!.plans[0]!.backups.filter((d) => d.action === 'keep');
    expect(decisions.map((d) => d.id).sort()).toEqual(expected.map((b) => b.id).sort());
    const count = (kind: BackupKind, pattern: RegExp) => decisions.filter((d) => d.kind === kind && d.reasons.some((r) => pattern.test(r))).length;
    expect(count('daily', /^daily \d+\/14$/)).toBe(14);
    expect(count('daily', /^weekly \d{4}-W\d\d$/)).toBe(8);
    expect(count('daily', /^monthly \d{4}-\d\d$/)).toBe(12);
    expect(count('weekly-full', /^weekly /)).toBe(8);
    expect(count('weekly-full', /^monthly /)).toBe(12);
    expect(count('critical', /^within 48h$/)).toBe(8);
    expect(count('daily', /^pinned$/)).toBe(1);
    expect(count('manual', /^pinned$/)).toBe(3);
    expect(decisions.filter((d) => d.kind === 'manual')).toHaveLength(4);
    // The last run deleted the day's expired backups through the workflow too.
    expect(last!.results[0]!.deletedBackups.length).toBeGreaterThan(0);
  }, 300_000);
});

import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ScheduleDescription } from '@temporalio/client';
import {
  schedulesApplyCommand,
  schedulesListCommand,
  schedulesPauseCommand,
  schedulesTriggerCommand,
  schedulesUnpauseCommand,
} from '../../src/commands/schedules.js';
import { loadConfig } from '../../src/config.js';
import { SCHEDULE_NAMES, scheduleId } from '../../src/temporal/schedules.js';
import type { NightlyBackupResult } from '../../workflows/messages.js';
import { productEnv, startProduct, type RunningProduct } from '../helpers/product.js';
import { services } from '../helpers/services.js';

function collector(): { stream: Writable; text(): string } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      text += chunk.toString();
      callback();
    },
  });
  return { stream, text: () => text };
}

/** What `apply` owns and an operator sees, without the parts that move by themselves (next times). */
function stable(description: ScheduleDescription) {
  const { raw: _raw, info, ...rest } = description;
  return { ...rest, info: { createdAt: info.createdAt, lastUpdatedAt: info.lastUpdatedAt } };
}

// Against the real dev server: the CLI's functions with the product's configuration. A unique
// env keeps these schedule ids apart from every other test file's.
describe('schedules apply | list | pause | unpause | trigger', () => {
  const s = services();
  let env: Record<string, string>;
  let product: RunningProduct;
  const envName = `sched-${process.pid}`;
  const ids = SCHEDULE_NAMES.map((name) => scheduleId(envName, name));
  const describeAll = () => Promise.all(ids.map((id) => product.client.schedule.getHandle(id).describe()));

  beforeAll(async () => {
    env = await productEnv(s, 'schedules', { env: { BACKUP_ENV: envName, CRITICAL_TABLES: 'invoices' } });
    product = await startProduct(s, env);
  });
  afterAll(async () => {
    for (const id of ids) await product?.client.schedule.getHandle(id).delete().catch(() => undefined);
    await product?.close();
  });

  it('creates every schedule once; a second apply changes nothing', async () => {
    const first = collector();
    await schedulesApplyCommand(product.config, first.stream);
    expect(first.text().trim().split('\n').map((line) => line.split(/\s+/).slice(0, 2))).toEqual(SCHEDULE_NAMES.map((name) => ['created', name]));
    const before = await describeAll();

    const second = collector();
    await schedulesApplyCommand(product.config, second.stream);
    expect(second.text().trim().split('\n').map((line) => line.split(/\s+/)[0])).toEqual(SCHEDULE_NAMES.map(() => 'unchanged'));
    const after = await describeAll();
    expect(after.map(stable)).toEqual(before.map(stable));
  });

  it('runs the daily backup at 02:00 Asia/Tokyo with overlap SKIP, a catch-up window and the requirement', async () => {
    const daily = await product.client.schedule.getHandle(scheduleId(envName, 'daily')).describe();
    expect(daily.spec.timezone).toBe('Asia/Tokyo');
    expect(daily.spec.calendars).toHaveLength(1);
    expect(daily.spec.calendars?.[0]).toMatchObject({ hour: [{ start: 2, end: 2, step: 1 }], minute: [{ start: 0, end: 0, step: 1 }] });
    expect(daily.action).toMatchObject({ workflowType: 'NightlyBackup', args: [{ kind: 'daily' }], taskQueue: env.TEMPORAL_TASK_QUEUE });
    expect(daily.policies).toEqual({ overlap: 'SKIP', catchupWindow: 12 * 3_600_000, pauseOnFailure: false });
    expect(daily.memo).toEqual({ requirement: expect.stringMatching(/^S29/) });
    // The server's own next times: 02:00 in Tokyo is 17:00 UTC the day before.
    for (const time of daily.info.nextActionTimes) expect(time.toISOString()).toMatch(/T17:00:00\.000Z$/);
  });

  it('updates a changed hour in place and keeps an operator pause', async () => {
    const handle = product.client.schedule.getHandle(scheduleId(envName, 'daily'));
    const before = await handle.describe();
    await schedulesPauseCommand(product.config, 'prune', 'storage migration until Friday', collector().stream);

    const out = collector();
    const changed = loadConfig({ ...env, SCHEDULE_DAILY: '03:30' });
    await schedulesApplyCommand(changed, out.stream);
    expect(out.text()).toMatch(/^updated\s+daily\s/m);
    expect(out.text().match(/^updated/gm)).toHaveLength(1);

    const after = await handle.describe();
    expect(after.info.createdAt).toEqual(before.info.createdAt);
    expect(after.info.lastUpdatedAt?.getTime()).toBeGreaterThan((before.info.lastUpdatedAt ?? before.info.createdAt).getTime());
    expect(after.spec.calendars?.[0]).toMatchObject({ hour: [{ start: 3, end: 3, step: 1 }], minute: [{ start: 30, end: 30, step: 1 }] });
    const prune = await product.client.schedule.getHandle(scheduleId(envName, 'prune')).describe();
    expect(prune.state).toMatchObject({ paused: true, note: 'storage migration until Friday' });

    // Back to the configuration of the other tests.
    await schedulesApplyCommand(product.config, collector().stream);
    await schedulesUnpauseCommand(product.config, 'prune', undefined, collector().stream);
    expect((await product.client.schedule.getHandle(scheduleId(envName, 'prune')).describe()).state.paused).toBe(false);
  });

  it('gives every scheduled run an execution timeout shorter than the time to its next run, and apply adds it to a schedule without one', async () => {
    for (const description of await describeAll()) {
      const timeout = description.action.type === 'startWorkflow' ? description.action.workflowExecutionTimeout : undefined;
      const [next, after] = description.info.nextActionTimes;
      expect(timeout, description.scheduleId).toBeGreaterThan(0);
      expect(timeout!, description.scheduleId).toBeLessThan(after!.getTime() - next!.getTime());
    }
    const daily = product.client.schedule.getHandle(scheduleId(envName, 'daily'));
    expect((await daily.describe()).action).toMatchObject({ workflowExecutionTimeout: 20 * 3_600_000 });
    // A schedule made before the timeout existed: the next apply updates it.
    await daily.update((previous) => ({ ...previous, action: { ...previous.action, workflowExecutionTimeout: undefined } }) as typeof previous);
    expect((await daily.describe()).action).not.toHaveProperty('workflowExecutionTimeout', 20 * 3_600_000);
    const out = collector();
    await schedulesApplyCommand(product.config, out.stream);
    expect(out.text().match(/^updated\s+\S+/gm)).toEqual([expect.stringMatching(/^updated\s+daily$/)]);
    expect((await daily.describe()).action).toMatchObject({ workflowExecutionTimeout: 20 * 3_600_000 });
  });

  it('lists the next runs in TIME_ZONE, right across month boundaries', async () => {
    const out = collector();
    const statuses = await schedulesListCommand(product.config, { json: false, from: new Date('2027-01-30T00:00:00+09:00'), count: 3 }, out.stream);
    const text = out.text();
    expect(statuses.map((status) => status.definition.name)).toEqual([...SCHEDULE_NAMES]);
    expect(text).toContain('next runs: 2027-01-30 02:00, 2027-01-31 02:00, 2027-02-01 02:00 (Asia/Tokyo)');
    expect(text).toContain('next runs: 2027-02-01 10:00, 2027-03-01 10:00, 2027-04-01 10:00 (Asia/Tokyo)');
    expect(text).toContain('next runs: 2027-01-31 03:00, 2027-02-07 03:00, 2027-02-14 03:00 (Asia/Tokyo)');
    // Runs strictly after --from.
    expect(text).toContain('next runs: 2027-01-30 00:15, 2027-01-30 00:30, 2027-01-30 00:45 (Asia/Tokyo)');

    const february = collector();
    await schedulesListCommand(product.config, { json: false, from: new Date('2027-02-28T20:00:00+09:00'), count: 3 }, february.stream);
    // Every 6 hours from 05:00 across the end of a 28-day February.
    expect(february.text()).toContain('next runs: 2027-02-28 23:00, 2027-03-01 05:00, 2027-03-01 11:00 (Asia/Tokyo)');
    expect(february.text()).toMatch(/daily \(erp4-backup-sched-\d+-daily\): NightlyBackup \{"kind":"daily"\}, active/);
  });

  it('trigger daily runs a NightlyBackup that completes, and list shows it as the last run', async () => {
    const out = collector();
    const { workflowId, result } = await schedulesTriggerCommand(product.config, 'daily', { wait: true }, out.stream);
    expect(workflowId).toMatch(new RegExp(`^${scheduleId(envName, 'daily')}-`));
    expect(result as NightlyBackupResult).toMatchObject({ kind: 'daily', repositories: ['local'] });
    expect(out.text()).toContain(`triggered daily: workflow ${workflowId}`);

    const list = collector();
    await schedulesListCommand(product.config, { json: false, count: 1 }, list.stream);
    expect(list.text()).toContain(`COMPLETED ${workflowId}`);
  });

  it('deletes the schedules the configuration no longer asks for', async () => {
    const out = collector();
    const { CRITICAL_TABLES: _critical, ...withoutCritical } = env;
    await schedulesApplyCommand(loadConfig(withoutCritical), out.stream);
    expect(out.text()).toMatch(/^deleted\s+critical\s/m);
    expect(out.text()).toMatch(/^deleted\s+weekly-full\s/m);
    await expect(product.client.schedule.getHandle(scheduleId(envName, 'critical')).describe()).rejects.toThrow(/not found/i);
  });
});

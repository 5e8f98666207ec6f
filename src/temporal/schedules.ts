import { isDeepStrictEqual } from 'node:util';
import {
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  type CalendarSpecDescription,
  type Client,
  type ScheduleDescription,
  type ScheduleHandle,
  type ScheduleOptions,
  type ScheduleUpdateOptions,
  WorkflowNotFoundError,
} from '@temporalio/client';
import { msNumberToTs, tsToDate } from '@temporalio/common/lib/time.js';
import type { Config } from '../config.js';
import { formatTimeOfDay, type TimeOfDay } from '../schedule-times.js';

/**
 * The Temporal Schedules that run the product (S9, S25, S29), derived from the configuration.
 * Ids are stable and carry the env (`erp4-backup-prod-daily`), so several environments can
 * share a namespace. `applySchedules` converges the server on this list: it creates what is
 * missing, updates in place only what differs, and deletes the product's schedules the
 * configuration no longer asks for; an operator's pause survives it.
 */

export const SCHEDULE_NAMES = ['daily', 'critical', 'weekly-full', 'restore-drill', 'prune', 'freshness'] as const;
export type ScheduleName = (typeof SCHEDULE_NAMES)[number];

export interface ScheduleDefinition {
  name: ScheduleName;
  scheduleId: string;
  /** The cadence in words, for `schedules list`. */
  when: string;
  /** The requirement the schedule serves; kept in the schedule's memo and note. */
  requirement: string;
  /** By type name: the workflows' code is not needed to schedule them. */
  workflowType: string;
  args: unknown[];
  calendars: CalendarSpecDescription[];
  /**
   * How late a run missed during a Temporal outage may still start. One late run is enough:
   * with overlap SKIP a backlog never piles up.
   */
  catchupWindowMs: number;
  /**
   * The run's workflow execution timeout: shorter than the time to the next run, so a stuck run
   * (a hung server, a lock, a lost worker) ends by itself instead of making overlap SKIP skip
   * every later run for days. A run that times out ends without its failure notice; the
   * Freshness watchdog reports the missed backup or drill.
   */
  executionTimeoutMs: number;
}

const HOUR_MS = 3_600_000;
const MINUTE_MS = 60_000;

export function scheduleId(env: string, name: ScheduleName): string {
  return `erp4-backup-${env}-${name}`;
}

const exactly = <T>(value: T) => [{ start: value, end: value, step: 1 }];
const every = (start: number, end: number, step: number) => [{ start, end, step }];

/**
 * A calendar in the exact form the server describes it back (every field explicit), so the
 * desired and the described schedule compare with plain equality.
 */
function calendar(
  fields: { minute: CalendarSpecDescription['minute']; hour: CalendarSpecDescription['hour'] } & Partial<
    Pick<CalendarSpecDescription, 'dayOfMonth' | 'dayOfWeek'>
  >,
  comment: string,
): CalendarSpecDescription {
  return {
    second: exactly(0),
    minute: fields.minute,
    hour: fields.hour,
    dayOfMonth: fields.dayOfMonth ?? every(1, 31, 1),
    month: [{ start: 'JANUARY', end: 'DECEMBER', step: 1 }],
    year: [],
    dayOfWeek: fields.dayOfWeek ?? [{ start: 'SUNDAY', end: 'SATURDAY', step: 1 }],
    comment,
  };
}

const atTime = (at: TimeOfDay) => ({ minute: exactly(at.minute), hour: exactly(at.hour) });

/** The off-site copy when there is one: a drill should prove the copy that survives the loss of this host. */
function drillRepository(config: Config): 'local' | 's3' | 'sftp' {
  if (config.s3) return 's3';
  if (config.remote) return 'sftp';
  return 'local';
}

/** The schedules this configuration asks for. `critical` and `weekly-full` need CRITICAL_TABLES. */
export function desiredSchedules(config: Config): ScheduleDefinition[] {
  const { daily, critical, weeklyFull, restoreDrill, prune } = config.schedules;
  const zone = config.timeZone;
  const define = (name: ScheduleName, rest: Omit<ScheduleDefinition, 'name' | 'scheduleId'>): ScheduleDefinition => ({
    name,
    scheduleId: scheduleId(config.env, name),
    ...rest,
  });
  const schedules: ScheduleDefinition[] = [
    define('daily', {
      when: `every day at ${formatTimeOfDay(daily)} ${zone}`,
      requirement: 'S29: nightly pg_dump -Fc + pg_dumpall --globals-only; S9: RPO 24 h for all data',
      workflowType: 'NightlyBackup',
      args: [{ kind: 'daily' }],
      calendars: [calendar(atTime(daily), 'daily backup (S29)')],
      catchupWindowMs: 12 * HOUR_MS,
      executionTimeoutMs: 20 * HOUR_MS,
    }),
  ];
  if (config.backup.criticalTables.length > 0) {
    const firstHour = critical.hour % 6;
    schedules.push(
      define('critical', {
        when: `every 6 hours at ${[0, 6, 12, 18].map((h) => formatTimeOfDay({ hour: firstHour + h, minute: critical.minute })).join(', ')} ${zone}`,
        requirement: 'S9: RPO 6 h for the important tables (CRITICAL_TABLES)',
        workflowType: 'NightlyBackup',
        args: [{ kind: 'critical' }],
        calendars: [calendar({ minute: exactly(critical.minute), hour: every(firstHour, 23, 6) }, 'important tables every 6 h (S9)')],
        catchupWindowMs: 3 * HOUR_MS,
        executionTimeoutMs: 5 * HOUR_MS,
      }),
      define('weekly-full', {
        when: `every ${weeklyFull.dayOfWeek.toLowerCase()} at ${formatTimeOfDay(weeklyFull)} ${zone}`,
        requirement: 'S6: weekly full backup of the important tables',
        workflowType: 'NightlyBackup',
        args: [{ kind: 'weekly-full' }],
        calendars: [calendar({ ...atTime(weeklyFull), dayOfWeek: exactly(weeklyFull.dayOfWeek) }, 'weekly full backup of the important tables (S6)')],
        catchupWindowMs: 24 * HOUR_MS,
        executionTimeoutMs: 24 * HOUR_MS,
      }),
    );
  }
  schedules.push(
    define('restore-drill', {
      when: `monthly on day ${restoreDrill.dayOfMonth} at ${formatTimeOfDay(restoreDrill)} ${zone}`,
      requirement: 'S25: monthly restore drill into a separate database; S26-S28 checks and report',
      workflowType: 'RestoreDrill',
      args: [{ backupId: 'latest', repository: drillRepository(config), kind: 'daily' }],
      calendars: [calendar({ ...atTime(restoreDrill), dayOfMonth: exactly(restoreDrill.dayOfMonth) }, 'monthly restore drill (S25)')],
      catchupWindowMs: 72 * HOUR_MS,
      // The wait for approval (RESTORE_APPROVAL_TIMEOUT) plus the restore, checks and report.
      executionTimeoutMs: config.restore.approvalTimeoutMs + 12 * HOUR_MS,
    }),
    define('prune', {
      when: `every day at ${formatTimeOfDay(prune)} ${zone}`,
      requirement: 'S7/S8/S17: retention of generations, after the backup window',
      workflowType: 'Prune',
      args: [{}],
      calendars: [calendar(atTime(prune), 'prune after the backup window (S8)')],
      catchupWindowMs: 12 * HOUR_MS,
      executionTimeoutMs: 12 * HOUR_MS,
    }),
    define('freshness', {
      when: 'every 15 minutes',
      requirement: 'S9: detect a missed RPO, a failed or missing drill, a lagging off-site copy within 30 minutes',
      workflowType: 'Freshness',
      args: [{}],
      calendars: [calendar({ minute: every(0, 59, 15), hour: every(0, 23, 1) }, 'freshness watchdog (S9)')],
      catchupWindowMs: 10 * MINUTE_MS,
      executionTimeoutMs: 10 * MINUTE_MS,
    }),
  );
  return schedules;
}

export function definitionByName(config: Config, name: string): ScheduleDefinition {
  const desired = desiredSchedules(config);
  const found = desired.find((definition) => definition.name === name);
  if (!found) throw new Error(`schedule ${JSON.stringify(name)} is not configured (configured: ${desired.map((d) => d.name).join(', ')})`);
  return found;
}

function scheduleOptions(config: Config, definition: ScheduleDefinition): Omit<ScheduleOptions, 'scheduleId' | 'memo' | 'state'> {
  return {
    spec: { calendars: definition.calendars, timezone: config.timeZone },
    action: {
      type: 'startWorkflow',
      workflowType: definition.workflowType,
      // Temporal appends the scheduled time: erp4-backup-prod-daily-2026-11-26T17:00:00Z.
      workflowId: definition.scheduleId,
      taskQueue: config.temporal.taskQueue,
      args: definition.args,
      workflowExecutionTimeout: definition.executionTimeoutMs,
    },
    policies: {
      // A slow backup is never run twice at once.
      overlap: ScheduleOverlapPolicy.SKIP,
      catchupWindow: definition.catchupWindowMs,
      pauseOnFailure: false,
    },
  };
}

/** The parts of a schedule that `apply` owns, in the form the server describes them. */
function comparable(config: Config, definition: ScheduleDefinition) {
  return {
    spec: { calendars: definition.calendars, intervals: [], skip: [], timezone: config.timeZone },
    action: {
      workflowType: definition.workflowType,
      workflowId: definition.scheduleId,
      taskQueue: config.temporal.taskQueue,
      args: definition.args,
      workflowExecutionTimeout: definition.executionTimeoutMs,
    },
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: definition.catchupWindowMs, pauseOnFailure: false },
  };
}

function describedComparable(description: ScheduleDescription) {
  const { spec, action, policies } = description;
  return JSON.parse(
    JSON.stringify({
      spec: { calendars: spec.calendars ?? [], intervals: spec.intervals ?? [], skip: spec.skip ?? [], timezone: spec.timezone },
      action: {
        workflowType: action.workflowType,
        workflowId: action.workflowId,
        taskQueue: action.taskQueue,
        args: action.args,
        workflowExecutionTimeout: action.workflowExecutionTimeout,
      },
      policies: { overlap: policies.overlap, catchupWindow: policies.catchupWindow, pauseOnFailure: policies.pauseOnFailure },
    }),
  ) as unknown;
}

async function describeOrUndefined(handle: ScheduleHandle): Promise<ScheduleDescription | undefined> {
  try {
    return await handle.describe();
  } catch (error) {
    if (error instanceof ScheduleNotFoundError) return undefined;
    throw error;
  }
}

export interface ApplyOutcome {
  name: ScheduleName;
  scheduleId: string;
  outcome: 'created' | 'updated' | 'unchanged' | 'deleted';
}

export async function applySchedules(client: Client, config: Config): Promise<ApplyOutcome[]> {
  const outcomes: ApplyOutcome[] = [];
  const desired = desiredSchedules(config);
  for (const definition of desired) {
    const handle = client.schedule.getHandle(definition.scheduleId);
    const existing = await describeOrUndefined(handle);
    const options = scheduleOptions(config, definition);
    const note = `managed by erp4-backup schedules apply; ${definition.requirement}`;
    if (!existing) {
      await client.schedule.create({ scheduleId: definition.scheduleId, ...options, memo: { requirement: definition.requirement }, state: { note } });
      outcomes.push({ name: definition.name, scheduleId: definition.scheduleId, outcome: 'created' });
    } else if (isDeepStrictEqual(describedComparable(existing), JSON.parse(JSON.stringify(comparable(config, definition))))) {
      outcomes.push({ name: definition.name, scheduleId: definition.scheduleId, outcome: 'unchanged' });
    } else {
      await handle.update(
        (previous): ScheduleUpdateOptions => ({
          ...options,
          // An operator's pause (and its note saying why) survives a configuration change.
          state: { paused: previous.state.paused, note: previous.state.paused ? previous.state.note : note },
        }),
      );
      outcomes.push({ name: definition.name, scheduleId: definition.scheduleId, outcome: 'updated' });
    }
  }
  const wanted = new Set(desired.map((definition) => definition.name));
  for (const name of SCHEDULE_NAMES.filter((candidate) => !wanted.has(candidate))) {
    const handle = client.schedule.getHandle(scheduleId(config.env, name));
    if (await describeOrUndefined(handle)) {
      await handle.delete();
      outcomes.push({ name, scheduleId: handle.scheduleId, outcome: 'deleted' });
    }
  }
  return outcomes;
}

export interface LastRun {
  workflowId: string;
  scheduledAt: Date;
  /** RUNNING, COMPLETED, FAILED, TIMED_OUT, TERMINATED, CANCELED, ... */
  status: string;
  closedAt?: Date;
}

export interface ScheduleStatus {
  definition: ScheduleDefinition;
  /** Undefined: not on the server (run `schedules apply`). */
  state?: { paused: boolean; note?: string; differsFromConfig: boolean };
  nextRuns: Date[];
  lastRun?: LastRun;
}

/**
 * The times a schedule's spec matches from `from` on, asked from the server (so they are
 * exactly what it will do, daylight saving and month lengths included).
 */
async function nextMatchingTimes(client: Client, id: string, from: Date, count: number): Promise<Date[]> {
  // Widen the window until enough times are found: from every 15 minutes to monthly, without
  // asking for thousands of quarter hours.
  const maxDays = 512;
  for (let days = 2; ; days *= 4) {
    const response = await client.workflowService.listScheduleMatchingTimes({
      namespace: client.options.namespace,
      scheduleId: id,
      startTime: msNumberToTs(from.getTime()),
      endTime: msNumberToTs(from.getTime() + days * 24 * HOUR_MS),
    });
    const times = (response.startTime ?? []).map((ts) => tsToDate(ts));
    if (times.length >= count || days >= maxDays) return times.slice(0, count);
  }
}

async function lastRunOf(client: Client, description: ScheduleDescription): Promise<LastRun | undefined> {
  const last = description.info.recentActions.at(-1);
  if (!last) return undefined;
  const { workflowId, firstExecutionRunId } = last.action.workflow;
  try {
    const workflow = await client.workflow.getHandle(workflowId, undefined, { firstExecutionRunId }).describe();
    return { workflowId, scheduledAt: last.scheduledAt, status: workflow.status.name, ...(workflow.closeTime ? { closedAt: workflow.closeTime } : {}) };
  } catch (error) {
    // The namespace's retention period has removed its history.
    if (error instanceof WorkflowNotFoundError) return { workflowId, scheduledAt: last.scheduledAt, status: 'UNKNOWN (history removed)' };
    throw error;
  }
}

export async function scheduleStatuses(client: Client, config: Config, options: { from: Date; count: number }): Promise<ScheduleStatus[]> {
  const statuses: ScheduleStatus[] = [];
  for (const definition of desiredSchedules(config)) {
    const description = await describeOrUndefined(client.schedule.getHandle(definition.scheduleId));
    if (!description) {
      statuses.push({ definition, nextRuns: [] });
      continue;
    }
    const differsFromConfig = !isDeepStrictEqual(describedComparable(description), JSON.parse(JSON.stringify(comparable(config, definition))));
    statuses.push({
      definition,
      state: { paused: description.state.paused, ...(description.state.note ? { note: description.state.note } : {}), differsFromConfig },
      nextRuns: await nextMatchingTimes(client, definition.scheduleId, options.from, options.count),
      lastRun: await lastRunOf(client, description),
    });
  }
  return statuses;
}

export async function pauseSchedule(client: Client, config: Config, name: string, note: string): Promise<void> {
  await client.schedule.getHandle(definitionByName(config, name).scheduleId).pause(note);
}

export async function unpauseSchedule(client: Client, config: Config, name: string, note: string): Promise<void> {
  await client.schedule.getHandle(definitionByName(config, name).scheduleId).unpause(note);
}

/**
 * Takes the schedule's action now and returns the id of the workflow it started. With the
 * schedule's own overlap policy (SKIP), a trigger while a run is in flight starts nothing:
 * that is reported as an error naming the running workflow.
 */
export async function triggerSchedule(client: Client, config: Config, name: string, timeoutMs = 20_000): Promise<string> {
  const handle = client.schedule.getHandle(definitionByName(config, name).scheduleId);
  const before = await handle.describe();
  const seen = new Set(before.info.recentActions.map((action) => action.action.workflow.workflowId));
  await handle.trigger(ScheduleOverlapPolicy.SKIP);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const now = await handle.describe();
    const started = now.info.recentActions.find((action) => !seen.has(action.action.workflow.workflowId));
    if (started) return started.action.workflow.workflowId;
    if (Date.now() > deadline) {
      const running = now.info.runningActions.map((action) => action.workflow.workflowId);
      throw new Error(
        running.length > 0
          ? `schedule ${handle.scheduleId} started nothing: ${running.join(', ')} is still running (overlap policy SKIP)`
          : `schedule ${handle.scheduleId} started no workflow within ${timeoutMs / 1000} s`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

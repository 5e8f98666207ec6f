import type { Client } from '@temporalio/client';
import { InvalidArgumentError, type Command } from 'commander';
import { loadConfig, type Config } from '../config.js';
import { connectClient } from '../temporal/client.js';
import {
  applySchedules,
  pauseSchedule,
  scheduleStatuses,
  SCHEDULE_NAMES,
  triggerSchedule,
  unpauseSchedule,
  type ScheduleStatus,
} from '../temporal/schedules.js';

/** `erp4-backup schedules apply|list|pause|unpause|trigger`: the Temporal Schedules of this env. */

async function withClient<T>(config: Config, work: (client: Client) => Promise<T>): Promise<T> {
  const client = await connectClient(config.temporal);
  try {
    return await work(client);
  } finally {
    await client.connection.close();
  }
}

export async function schedulesApplyCommand(config: Config, out: NodeJS.WritableStream = process.stdout): Promise<void> {
  const outcomes = await withClient(config, (client) => applySchedules(client, config));
  for (const { name, scheduleId, outcome } of outcomes) out.write(`${outcome.padEnd(9)} ${name.padEnd(13)} ${scheduleId}\n`);
}

/** `2026-11-27 02:00` in the configured zone: operators think in TIME_ZONE, not UTC. */
export function formatInZone(time: Date, timeZone: string): string {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    })
      .formatToParts(time)
      .map((part) => [part.type, part.value]),
  );
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}`;
}

export function formatScheduleStatuses(statuses: ScheduleStatus[], timeZone: string): string {
  const lines: string[] = [];
  for (const { definition, state, nextRuns, lastRun } of statuses) {
    const condition = !state ? 'NOT APPLIED (run: erp4-backup schedules apply)' : state.paused ? `PAUSED (${state.note ?? 'no note'})` : 'active';
    lines.push(`${definition.name} (${definition.scheduleId}): ${definition.workflowType} ${JSON.stringify(definition.args[0] ?? {})}, ${condition}`);
    lines.push(`  when:      ${definition.when}`);
    lines.push(`  why:       ${definition.requirement}`);
    if (state?.differsFromConfig) lines.push('  drift:     the server differs from this configuration (run: erp4-backup schedules apply)');
    if (state) lines.push(`  next runs: ${nextRuns.map((time) => formatInZone(time, timeZone)).join(', ') || 'none'} (${timeZone})`);
    if (state) {
      lines.push(
        lastRun
          ? `  last run:  ${formatInZone(lastRun.scheduledAt, timeZone)} ${lastRun.status} ${lastRun.workflowId}`
          : '  last run:  none yet',
      );
    }
  }
  return `${lines.join('\n')}\n`;
}

export async function schedulesListCommand(
  config: Config,
  options: { json: boolean; from?: Date; count: number },
  out: NodeJS.WritableStream = process.stdout,
): Promise<ScheduleStatus[]> {
  const statuses = await withClient(config, (client) => scheduleStatuses(client, config, { from: options.from ?? new Date(), count: options.count }));
  out.write(options.json ? `${JSON.stringify(statuses, null, 2)}\n` : formatScheduleStatuses(statuses, config.timeZone));
  return statuses;
}

export async function schedulesPauseCommand(config: Config, name: string, note: string | undefined, out: NodeJS.WritableStream = process.stdout): Promise<void> {
  await withClient(config, (client) => pauseSchedule(client, config, name, note ?? `paused with erp4-backup schedules pause at ${new Date().toISOString()}`));
  out.write(`paused ${name}\n`);
}

export async function schedulesUnpauseCommand(config: Config, name: string, note: string | undefined, out: NodeJS.WritableStream = process.stdout): Promise<void> {
  await withClient(config, (client) => unpauseSchedule(client, config, name, note ?? `unpaused with erp4-backup schedules unpause at ${new Date().toISOString()}`));
  out.write(`unpaused ${name}\n`);
}

/** Starts the schedule's workflow now; with `wait`, follows it to its end and fails when it fails. */
export async function schedulesTriggerCommand(
  config: Config,
  name: string,
  options: { wait: boolean },
  out: NodeJS.WritableStream = process.stdout,
): Promise<{ workflowId: string; result?: unknown }> {
  return withClient(config, async (client) => {
    const workflowId = await triggerSchedule(client, config, name);
    out.write(`triggered ${name}: workflow ${workflowId}\n`);
    if (!options.wait) return { workflowId };
    const result: unknown = await client.workflow.getHandle(workflowId).result();
    out.write(`${workflowId} completed: ${JSON.stringify(result)}\n`);
    return { workflowId, result };
  });
}

function parseName(value: string): string {
  if (!(SCHEDULE_NAMES as readonly string[]).includes(value)) throw new InvalidArgumentError(`expected one of ${SCHEDULE_NAMES.join(', ')}`);
  return value;
}

function parseTime(value: string): Date {
  const time = new Date(value);
  if (Number.isNaN(time.getTime())) throw new InvalidArgumentError('expected an ISO 8601 time such as 2027-01-31T00:00:00+09:00');
  return time;
}

function parseCount(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 50) throw new InvalidArgumentError('expected a whole number from 1 to 50');
  return Number(value);
}

/** The `schedules` command group of the CLI. */
export function addSchedulesCommands(program: Command): void {
  const schedules = program.command('schedules').description('the Temporal Schedules of this env (daily, critical, weekly-full, restore-drill, prune, freshness)');
  schedules
    .command('apply')
    .description('create or update the schedules from the configuration; changes only what differs, keeps pauses')
    .action(async () => schedulesApplyCommand(loadConfig(process.env, { database: false })));
  schedules
    .command('list')
    .description('each schedule with its next run times and the result of its last run')
    .option('--json', 'print as JSON', false)
    .option('--from <time>', 'list the runs after this time instead of now (ISO 8601)', parseTime)
    .option('--count <n>', 'how many next runs to show', parseCount, 3)
    .action(async (options: { json: boolean; from?: Date; count: number }) => {
      await schedulesListCommand(loadConfig(process.env, { database: false }), options);
    });
  schedules
    .command('pause')
    .description('stop a schedule from starting runs until unpause (apply keeps the pause)')
    .argument('<name>', SCHEDULE_NAMES.join(' | '), parseName)
    .option('--note <text>', 'why, shown by schedules list and the Web UI')
    .action(async (name: string, options: { note?: string }) => schedulesPauseCommand(loadConfig(process.env, { database: false }), name, options.note));
  schedules
    .command('unpause')
    .description('let a paused schedule start runs again')
    .argument('<name>', SCHEDULE_NAMES.join(' | '), parseName)
    .option('--note <text>', 'why, shown by schedules list and the Web UI')
    .action(async (name: string, options: { note?: string }) => schedulesUnpauseCommand(loadConfig(process.env, { database: false }), name, options.note));
  schedules
    .command('trigger')
    .description("start the schedule's workflow now (nothing starts while one of its runs is in flight)")
    .argument('<name>', SCHEDULE_NAMES.join(' | '), parseName)
    .option('--wait', 'wait for the workflow to finish and fail when it fails', false)
    .action(async (name: string, options: { wait: boolean }) => {
      await schedulesTriggerCommand(loadConfig(process.env, { database: false }), name, options);
    });
}

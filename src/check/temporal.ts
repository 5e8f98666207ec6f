// @temporalio/proto is CommonJS: Node's ESM loader only offers its default export.
import proto from '@temporalio/proto';
import type { Client } from '@temporalio/client';
import { optionalTsToDate } from '@temporalio/common/lib/time.js';
import type { Config } from '../config.js';
import { connectClient } from '../temporal/client.js';
import { scheduleStatuses, type ScheduleName } from '../temporal/schedules.js';
import { BACKUP_SEARCH_ATTRIBUTES } from '../temporal/search-attributes.js';
import { critical, ok, unknown, within, type ProbeResult } from './probe.js';

/**
 * Temporal: the connection and namespace, the search attributes the workflows upsert, the
 * schedules `schedules apply` makes, and a worker polling TEMPORAL_TASK_QUEUE.
 */

const TIMEOUT_MS = 30_000;
const { TaskQueueType, IndexedValueType } = proto.temporal.api.enums.v1;

/**
 * A poller is listed for minutes after its worker stopped; a live one polls again at least every
 * long-poll (about a minute), so one not seen for longer than this has gone.
 */
const POLLER_SEEN_WITHIN_MS = 3 * 60_000;

const GRPC_NOT_FOUND = 5;

export const TEMPORAL_PROBES = ['temporal: connection', 'temporal: search attributes', 'temporal: schedules', 'temporal: worker'] as const;

export async function probeTemporal(config: Config, now: Date): Promise<ProbeResult[]> {
  const [connectionProbe, searchAttributes, schedules, worker] = TEMPORAL_PROBES;
  let client: Client;
  const connecting = connectClient(config.temporal);
  try {
    client = await within(TIMEOUT_MS, 'the Temporal server (TEMPORAL_ADDRESS)', connecting);
  } catch (error) {
    // A connection that succeeds after the timeout must not keep the process alive.
    void connecting.then((late) => late.connection.close()).catch(() => undefined);
    const reason = `not connected: see ${connectionProbe}`;
    const named = new Error(`Temporal at ${config.temporal.address}`, { cause: error });
    return [critical(connectionProbe, named, { fallback: ['TEMPORAL_ADDRESS'] }), unknown(searchAttributes, reason), unknown(schedules, reason), unknown(worker, reason)];
  }
  try {
    const { namespace } = config.temporal;
    try {
      await within(TIMEOUT_MS, 'DescribeNamespace', client.workflowService.describeNamespace({ namespace }));
      const connected = ok(connectionProbe, `connected to ${config.temporal.address}; namespace ${namespace} exists`);
      return [connected, ...(await Promise.all([probeSearchAttributes(client, namespace), probeSchedules(client, config, now), probeWorker(client, config, now)]))];
    } catch (error) {
      const notFound = (error as { code?: unknown }).code === GRPC_NOT_FOUND;
      const reason = `namespace not usable: see ${connectionProbe}`;
      return [
        critical(connectionProbe, error, notFound ? { settings: ['TEMPORAL_NAMESPACE'] } : { fallback: ['TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE'] }),
        unknown(searchAttributes, reason),
        unknown(schedules, reason),
        unknown(worker, reason),
      ];
    }
  } finally {
    await client.connection.close().catch(() => undefined);
  }
}

/** The Keyword attributes the workflows upsert: without them a workflow task fails at 02:00. */
async function probeSearchAttributes(client: Client, namespace: string): Promise<ProbeResult> {
  const name = TEMPORAL_PROBES[1];
  try {
    const listed = await within(TIMEOUT_MS, 'ListSearchAttributes', client.connection.operatorService.listSearchAttributes({ namespace }));
    const known = listed.customAttributes ?? {};
    const missing = BACKUP_SEARCH_ATTRIBUTES.filter((attribute) => !(attribute in known));
    const wrongType = BACKUP_SEARCH_ATTRIBUTES.filter((attribute) => attribute in known && known[attribute] !== IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD);
    if (missing.length === 0 && wrongType.length === 0) return ok(name, `${BACKUP_SEARCH_ATTRIBUTES.join(', ')} (Keyword) exist in namespace ${namespace}`);
    const problems = [
      ...(missing.length > 0 ? [`lacks ${missing.join(', ')}`] : []),
      ...(wrongType.length > 0 ? [`has ${wrongType.join(', ')} of another type than Keyword`] : []),
    ];
    return {
      name,
      status: 'CRITICAL',
      detail: `namespace ${namespace} ${problems.join(' and ')}: every backup would fail its first workflow task`,
      settings: ['TEMPORAL_NAMESPACE'],
      remedy: `start erp4-backup worker (it adds them where it may), or have an administrator run: ${missing
        .map((attribute) => `temporal operator search-attribute create --namespace ${namespace} --name ${attribute} --type Keyword`)
        .join('; ')}`,
    };
  } catch (error) {
    return critical(name, error, { fallback: ['TEMPORAL_NAMESPACE'] });
  }
}

/** The settings behind each schedule's calendar. */
const SCHEDULE_SETTINGS: Record<ScheduleName, string[]> = {
  daily: ['SCHEDULE_DAILY'],
  critical: ['SCHEDULE_CRITICAL', 'CRITICAL_TABLES'],
  'weekly-full': ['SCHEDULE_WEEKLY_FULL', 'CRITICAL_TABLES'],
  'restore-drill': ['SCHEDULE_RESTORE_DRILL'],
  prune: ['SCHEDULE_PRUNE'],
  freshness: [],
};

/**
 * Each schedule this configuration asks for exists (CRITICAL: nothing would run) and matches it
 * (WARNING: it runs, but at another time, zone or task queue than configured); a paused one is
 * a WARNING (an operator's decision, easily forgotten).
 */
async function probeSchedules(client: Client, config: Config, now: Date): Promise<ProbeResult> {
  const name = TEMPORAL_PROBES[2];
  try {
    const statuses = await within(TIMEOUT_MS, 'the schedules', scheduleStatuses(client, config, { from: now, count: 1 }));
    const missing = statuses.filter((status) => !status.state).map((status) => status.definition);
    const drifted = statuses.filter((status) => status.state?.differsFromConfig).map((status) => status.definition);
    const paused = statuses.filter((status) => status.state?.paused);
    if (missing.length > 0) {
      return {
        name,
        status: 'CRITICAL',
        detail: `not applied in namespace ${config.temporal.namespace}: ${missing.map((definition) => definition.scheduleId).join(', ')}: nothing would run them`,
        settings: ['BACKUP_ENV', 'TEMPORAL_NAMESPACE'],
        remedy: 'erp4-backup schedules apply',
      };
    }
    if (drifted.length > 0) {
      return {
        name,
        status: 'WARNING',
        detail: `${drifted.map((definition) => definition.scheduleId).join(', ')} differ(s) from this configuration (time, zone, task queue or input)`,
        settings: [...new Set([...drifted.flatMap((definition) => SCHEDULE_SETTINGS[definition.name]), 'TIME_ZONE', 'TEMPORAL_TASK_QUEUE'])],
        remedy: 'erp4-backup schedules apply',
      };
    }
    if (paused.length > 0) {
      return {
        name,
        status: 'WARNING',
        detail: `paused: ${paused.map((status) => `${status.definition.name} (${status.state?.note ?? 'no note'})`).join(', ')}`,
        settings: [],
        remedy: paused.map((status) => `erp4-backup schedules unpause ${status.definition.name}`).join('; '),
      };
    }
    return ok(name, `${statuses.map((status) => status.definition.name).join(', ')} applied as configured (${config.timeZone})`);
  } catch (error) {
    return critical(name, error, { fallback: ['TEMPORAL_NAMESPACE'] });
  }
}

/** Someone polls TEMPORAL_TASK_QUEUE for workflow and for activity tasks (DescribeTaskQueue's pollers). */
async function probeWorker(client: Client, config: Config, now: Date): Promise<ProbeResult> {
  const name = TEMPORAL_PROBES[3];
  const { namespace, taskQueue } = config.temporal;
  try {
    const pollers = await Promise.all(
      [TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY].map(async (taskQueueType) => {
        const described = await within(TIMEOUT_MS, 'DescribeTaskQueue', client.workflowService.describeTaskQueue({ namespace, taskQueue: { name: taskQueue }, taskQueueType }));
        return (described.pollers ?? [])
          .filter((poller) => {
            const seen = optionalTsToDate(poller.lastAccessTime);
            return seen !== undefined && now.getTime() - seen.getTime() <= POLLER_SEEN_WITHIN_MS;
          })
          .map((poller) => poller.identity ?? '?');
      }),
    );
    const [workflowPollers, activityPollers] = pollers as [string[], string[]];
    const absent = [...(workflowPollers.length === 0 ? ['workflow'] : []), ...(activityPollers.length === 0 ? ['activity'] : [])];
    if (absent.length > 0) {
      return {
        name,
        status: 'CRITICAL',
        detail: `no worker polls task queue ${taskQueue} in namespace ${namespace} for ${absent.join(' and ')} tasks: scheduled backups would wait forever`,
        settings: ['TEMPORAL_TASK_QUEUE'],
        remedy: 'start erp4-backup worker with the same TEMPORAL_TASK_QUEUE and TEMPORAL_NAMESPACE',
      };
    }
    return ok(name, `task queue ${taskQueue} is polled for workflows by ${[...new Set(workflowPollers)].join(', ')} and for activities by ${[...new Set(activityPollers)].join(', ')}`);
  } catch (error) {
    return critical(name, error, { fallback: ['TEMPORAL_TASK_QUEUE'] });
  }
}

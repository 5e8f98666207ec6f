import proto from '@temporalio/proto';
import { optionalTsToDate } from '@temporalio/common/lib/time.js';
import type { Command } from 'commander';
import { loadConfig, type Config } from '../config.js';
import { hostTaskQueue } from '../host.js';
import { connectClient } from '../temporal/client.js';

/** A worker polls its queues continuously; a poller not seen for this long is gone. */
const POLLED_WITHIN_MS = 60_000;

/**
 * `erp4-backup healthcheck`: is THIS host's worker alive? (the compose file's healthcheck; a
 * systemd watchdog or a load balancer can run it too). It asks Temporal whether this host's own
 * task queue, `<TEMPORAL_TASK_QUEUE>/host/<WORKER_HOST_ID>`, which only this worker polls, has an
 * activity poller seen within the last minute: one DescribeTaskQueue call, no repository, no
 * database. True when healthy. `erp4-backup check` is the whole preflight.
 */
export async function healthcheckCommand(config: Config, out: NodeJS.WritableStream = process.stdout): Promise<boolean> {
  const taskQueue = hostTaskQueue(config.temporal.taskQueue, config.host.id);
  const client = await connectClient(config.temporal);
  try {
    const described = await client.workflowService.describeTaskQueue({
      namespace: config.temporal.namespace,
      taskQueue: { name: taskQueue },
      taskQueueType: proto.temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
    });
    const now = Date.now();
    const live = (described.pollers ?? []).filter((poller) => {
      const seen = optionalTsToDate(poller.lastAccessTime);
      return seen !== undefined && now - seen.getTime() <= POLLED_WITHIN_MS;
    });
    out.write(
      live.length > 0
        ? `healthy: ${live.map((p) => p.identity ?? '?').join(', ')} polls ${taskQueue}\n`
        : `UNHEALTHY: no worker has polled ${taskQueue} in the last ${POLLED_WITHIN_MS / 1000} s (is erp4-backup worker running with this BACKUP_DIR and WORKER_HOST_ID?)\n`,
    );
    return live.length > 0;
  } finally {
    await client.connection.close();
  }
}

export function addHealthcheckCommand(program: Command): void {
  program
    .command('healthcheck')
    .description("exit 0 when this host's worker polls its task queue (the container healthcheck); 1 when it does not")
    .action(async () => {
      if (!(await healthcheckCommand(loadConfig(process.env, { database: false })))) process.exitCode = 1;
    });
}

import { Context } from '@temporalio/activity';
// @temporalio/proto is CommonJS: Node's ESM loader only offers its default export.
import proto from '@temporalio/proto';
import { InputError } from '../src/errors.js';
import { hostOfIdentity, hostTaskQueue } from '../src/host.js';
import { isBackupId, manifestKey } from '../src/layout.js';
import type { BackupRuntime } from './runtime.js';

/** The host a chain of disk-bound work runs on (src/host.ts), as workflows see it. */
export interface HostClaim {
  hostId: string;
  taskQueue: string;
}

/**
 * A poller seen this recently is alive: workers long-poll for about a minute, so a live one
 * has always polled within the last two.
 */
const LIVE_POLLER_MS = 120_000;

/**
 * The activities that tie work to a host (samples-typescript worker-specific-task-queues):
 * `claimHost` runs on the shared queue and answers with the host queue of the worker that took
 * it; the workflow sends the rest of the chain there.
 */
export function createHostActivities(runtime: BackupRuntime) {
  return {
    async claimHost(): Promise<HostClaim> {
      return { hostId: runtime.host.id, taskQueue: runtime.host.taskQueue };
    },

    /**
     * The hosts whose workers poll the shared task queue now (Temporal's DescribeTaskQueue):
     * Prune reaches each one's local repository through its host queue.
     */
    async listLiveHosts(): Promise<HostClaim[]> {
      const context = Context.current();
      const response = await context.client.workflowService.describeTaskQueue({
        namespace: context.info.workflowNamespace,
        taskQueue: { name: runtime.host.sharedTaskQueue, kind: proto.temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
        taskQueueType: proto.temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
      });
      const now = Date.now();
      const hosts = new Set<string>();
      for (const poller of response.pollers ?? []) {
        const seconds = Number(poller.lastAccessTime?.seconds ?? 0);
        if (now - seconds * 1000 > LIVE_POLLER_MS) continue;
        const host = hostOfIdentity(poller.identity ?? '');
        if (host) hosts.add(host);
      }
      return [...hosts].sort().map((hostId) => ({ hostId, taskQueue: hostTaskQueue(runtime.host.sharedTaskQueue, hostId) }));
    },

    /**
     * Deletes a backup's manifest from one repository (idempotent): before a chain lost with its
     * host starts again elsewhere and rewrites the artifacts, no manifest may point at them.
     */
    async withdrawManifest(input: { repository: string; backupId: string }): Promise<void> {
      if (!isBackupId(input.backupId)) throw new InputError(`backupId ${JSON.stringify(input.backupId)} is not a backup id`);
      // With the pruning credentials (S3_PRUNER_*): the writer role may not delete (deploy/iam/writer.json).
      const repository = runtime.prune.openRepository(input.repository);
      if (!repository) throw new InputError(`no repository named ${JSON.stringify(input.repository)} is configured`);
      try {
        await repository.delete(manifestKey(runtime.layout, input.backupId));
      } finally {
        await repository.close();
      }
    },
  };
}

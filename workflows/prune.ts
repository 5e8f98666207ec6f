import { ApplicationFailure, proxyActivities, type ActivityOptions } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { RepositoryPrunePlan } from '../src/prune-plan.js';
import type { PruneInput, PruneResult } from './messages.js';
import { hostTimeoutSeconds, isHostLost } from './on-one-host.js';

// Planning reads every catalog once; deleting is many small idempotent calls. Both heartbeat, so
// a worker that dies is noticed within a minute and the activity resumes on another.
const PLANNING: ActivityOptions = {
  startToCloseTimeout: '30m',
  heartbeatTimeout: '1m',
  retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '2m', maximumAttempts: 5 },
};
const DELETING: ActivityOptions = {
  startToCloseTimeout: '2h',
  heartbeatTimeout: '1m',
  retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '5m', maximumAttempts: 10 },
};
const planning = proxyActivities<Activities>(PLANNING);
const deleting = proxyActivities<Activities>(DELETING);
/** Each host's own repository (BACKUP_DIR). */
const LOCAL = 'local';

/**
 * Prune (S7, S8, S16, S17): plan every repository at one `now` (src/prune-plan.ts), then, unless
 * it is a dry run, delete exactly what the plans list: the repositories in parallel, each
 * backup's manifest before its artifacts. A dry run returns the same plans and deletes nothing.
 * Repositories that fail do not stop the others; the workflow then fails naming them.
 *
 * Each host has its own local repository (src/host.ts): the shared repositories are planned and
 * pruned from the shared queue, and the local repository of every host polling the shared queue
 * (Temporal's pollers of it, listLiveHosts) is planned and pruned on that host's own queue. A
 * host that does not answer within `hostTimeoutSeconds` is listed in `unreachableHosts`; the
 * next run prunes it.
 */
export async function Prune(input: PruneInput = {}): Promise<PruneResult> {
  const now = input.now ?? new Date().toISOString();
  const dryRun = input.dryRun ?? false;
  const hostSeconds = hostTimeoutSeconds(input.hostTimeoutSeconds);
  const selection = input.repositories ? { repositories: input.repositories } : {};
  const shared = await planning.planPrune({ now, ...selection, scope: 'remote' });
  const unreachableHosts: string[] = [];
  const hostPlans: Array<{ taskQueue: string; plan: RepositoryPrunePlan }> = [];
  if (!input.repositories || input.repositories.includes(LOCAL)) {
    const hosts = await planning.listLiveHosts();
    const planned = await Promise.allSettled(hosts.map((host) => onHost(host.taskQueue, hostSeconds).planning.planPrune({ now, repositories: [LOCAL], scope: 'local' })));
    planned.forEach((outcome, index) => {
      const host = hosts[index]!;
      if (outcome.status === 'fulfilled') hostPlans.push(...outcome.value.plans.map((plan) => ({ taskQueue: host.taskQueue, plan })));
      else if (isHostLost(outcome.reason)) unreachableHosts.push(host.hostId);
      else throw outcome.reason;
    });
  }
  const plans = [...hostPlans.map((p) => p.plan), ...shared.plans];
  if (dryRun) return { env: shared.env, now, dryRun, plans, results: [], unreachableHosts };

  const settled = await Promise.allSettled([
    ...hostPlans.map(({ taskQueue, plan }) => onHost(taskQueue, hostSeconds).deleting.applyPrune({ plan })),
    ...shared.plans.map((plan) => deleting.applyPrune({ plan })),
  ]);
  const failed = settled.flatMap((outcome, index) => {
    if (outcome.status === 'fulfilled') return [];
    const plan = plans[index]!;
    // Lost since it was planned: nothing of its plan was done, the next run prunes it.
    if (plan.host !== undefined && isHostLost(outcome.reason)) {
      unreachableHosts.push(plan.host);
      return [];
    }
    return [{ repository: plan.host !== undefined ? `${plan.repository}@${plan.host}` : plan.repository, error: outcome.reason as Error }];
  });
  if (failed.length > 0) {
    const first = failed[0]!;
    throw ApplicationFailure.create({
      type: 'PruneFailed',
      message: `prune failed in ${failed.map((f) => f.repository).join(', ')}: ${first.error.message}`,
      nonRetryable: true,
      cause: first.error,
    });
  }
  const results = settled.flatMap((outcome) => (outcome.status === 'fulfilled' ? [outcome.value] : []));
  return { env: shared.env, now, dryRun, plans, results, unreachableHosts };
}

/** The same two kinds of step, on one host's queue: a host that stops polling shows as a schedule-to-start timeout. */
function onHost(taskQueue: string, hostSeconds: number) {
  const queue = { taskQueue, scheduleToStartTimeout: hostSeconds * 1000 };
  return {
    planning: proxyActivities<Activities>({ ...PLANNING, ...queue }),
    deleting: proxyActivities<Activities>({ ...DELETING, ...queue }),
  };
}

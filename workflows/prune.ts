import { ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { PruneInput, PruneResult, RepositoryPruneResult } from './messages.js';

// Planning reads every catalog once; deleting is many small idempotent calls. Both heartbeat, so
// a worker that dies is noticed within a minute and the activity resumes on another.
const planning = proxyActivities<Activities>({
  startToCloseTimeout: '30m',
  heartbeatTimeout: '1m',
  retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '2m', maximumAttempts: 5 },
});
const deleting = proxyActivities<Activities>({
  startToCloseTimeout: '2h',
  heartbeatTimeout: '1m',
  retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '5m', maximumAttempts: 10 },
});

/**
 * Prune (S7, S8, S16, S17): plan every repository at one `now` (src/prune-plan.ts), then, unless
 * it is a dry run, delete exactly what the plans list: the repositories in parallel, each
 * backup's manifest before its artifacts. A dry run returns the same plans and deletes nothing.
 * Repositories that fail do not stop the others; the workflow then fails naming them.
 */
export async function Prune(input: PruneInput = {}): Promise<PruneResult> {
  const now = input.now ?? new Date().toISOString();
  const dryRun = input.dryRun ?? false;
  const { env, plans } = await planning.planPrune({ now, ...(input.repositories ? { repositories: input.repositories } : {}) });
  if (dryRun) return { env, now, dryRun, plans, results: [] };

  const settled = await Promise.allSettled(plans.map((plan) => deleting.applyPrune({ plan })));
  const failed = settled.flatMap((outcome, index) => (outcome.status === 'rejected' ? [{ repository: plans[index]!.repository, error: outcome.reason as Error }] : []));
  if (failed.length > 0) {
    const first = failed[0]!;
    throw ApplicationFailure.create({
      type: 'PruneFailed',
      message: `prune failed in ${failed.map((f) => f.repository).join(', ')}: ${first.error.message}`,
      nonRetryable: true,
      cause: first.error,
    });
  }
  const results = settled.map((outcome) => (outcome as PromiseFulfilledResult<RepositoryPruneResult>).value);
  return { env, now, dryRun, plans, results };
}

import { ActivityFailure, ApplicationFailure, CancellationScope, TimeoutFailure, isCancellation } from '@temporalio/workflow';
import type { HostClaim } from '../activities/index.js';

/**
 * "Run this chain on one host, start it again elsewhere if the host is lost" (samples-typescript
 * worker-specific-task-queues). Work that needs a host's disk goes to that host's own task queue
 * (src/host.ts); its activities carry a schedule-to-start timeout, so a host that stops polling
 * is noticed: the activity fails with a SCHEDULE_TO_START timeout (never retried by Temporal), and
 * the chain starts again from its first step, with a new claim on the shared queue that a live
 * host answers.
 *
 * How long a lost host holds a chain up (the bound the README documents): the step in flight
 * notices the loss within its heartbeat timeout (long steps) or start-to-close timeout (short
 * ones), its retry waits its first retry interval, then `hostTimeoutSeconds` on the dead queue;
 * the new claim is answered at once by any live host.
 */

const MIN_HOST_TIMEOUT_SECONDS = 5;
const MAX_HOST_TIMEOUT_SECONDS = 3600;
export const DEFAULT_HOST_TIMEOUT_SECONDS = 60;
/** A chain is started on at most this many hosts: more lost hosts in one run is an outage, not a hiccup. */
export const MAX_HOSTS_PER_CHAIN = 5;

/** The schedule-to-start timeout of host-queue activities a workflow's input asks for, refused outside 5 s - 1 h (naming the field). */
export function hostTimeoutSeconds(requested: number | undefined): number {
  const seconds = requested ?? DEFAULT_HOST_TIMEOUT_SECONDS;
  if (!Number.isFinite(seconds) || seconds < MIN_HOST_TIMEOUT_SECONDS || seconds > MAX_HOST_TIMEOUT_SECONDS) {
    throw ApplicationFailure.nonRetryable(
      `hostTimeoutSeconds: expected ${MIN_HOST_TIMEOUT_SECONDS}-${MAX_HOST_TIMEOUT_SECONDS} seconds, got ${JSON.stringify(requested)}`,
      'InputError',
    );
  }
  return seconds;
}

/** True when `error` is (or wraps) an activity that no worker of its host queue picked up in time. */
export function isHostLost(error: unknown): boolean {
  let current: unknown = error;
  while (current instanceof ActivityFailure || current instanceof ApplicationFailure) {
    const cause: unknown = current.cause;
    if (cause instanceof TimeoutFailure && cause.timeoutType === 'SCHEDULE_TO_START') return true;
    current = cause;
  }
  return false;
}

export interface OnOneHostOptions<T> {
  /** An activity on the shared queue: the worker that takes it answers with its host. */
  claim: () => Promise<HostClaim>;
  /** The chain; every activity that needs the host's disk goes to `host.taskQueue`. */
  chain: (host: HostClaim, attempt: number) => Promise<T>;
  /** After a host was lost, before the chain starts again: undo what must not stay visible. */
  onHostLost?: (host: HostClaim, error: unknown) => Promise<void>;
}

/**
 * Runs `chain` on one host; when that host is lost (isHostLost), cancels what is still pending of
 * that attempt and runs the chain again on the host answering a new claim, up to
 * MAX_HOSTS_PER_CHAIN attempts. Other failures (and cancellation) are rethrown as they are.
 */
export async function onOneHost<T>(options: OnOneHostOptions<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const host = await options.claim();
    const scope = new CancellationScope();
    try {
      return await scope.run(() => options.chain(host, attempt));
    } catch (error) {
      if (isCancellation(error) || !isHostLost(error) || attempt >= MAX_HOSTS_PER_CHAIN) throw error;
      // Steps of the lost attempt still scheduled on the dead queue: they must not run later.
      scope.cancel();
      await options.onHostLost?.(host, error);
    }
  }
}

/**
 * Waits for every promise (so no step of an attempt is still running when the next one starts)
 * and rethrows the first failure, preferring a lost host: that is what decides a restart.
 */
export async function allSettledOrThrow<T>(promises: readonly Promise<T>[]): Promise<T[]> {
  const results = await Promise.allSettled(promises);
  const failures = results.flatMap((result) => (result.status === 'rejected' ? [result.reason as unknown] : []));
  if (failures.length > 0) throw failures.find(isHostLost) ?? failures[0];
  return results.map((result) => (result as PromiseFulfilledResult<T>).value);
}

import type { Worker } from '@temporalio/worker';

/**
 * After the grace, the SDK cancels the activities still in flight; they take cancellation at
 * their next chunk or heartbeat. This much longer, and the process exits whatever is left
 * (docker-compose's stop_grace_period and a systemd TimeoutStopSec must cover grace + this).
 */
export const CANCELLATION_MARGIN_MS = 30_000;

const EXIT_CODES: Record<'SIGTERM' | 'SIGINT', number> = { SIGTERM: 143, SIGINT: 130 };

export interface GracefulStop {
  /** Removes the signal handlers and the cut-off timer (after every worker stopped). */
  dispose(): void;
}

/**
 * How the worker process stops, for every Worker it runs: the first SIGTERM (or SIGINT) makes
 * each stop polling and lets the activities in flight finish within `graceMs` (the workers'
 * shutdownGraceTime; after it the SDK cancels them, and a retry runs them again elsewhere);
 * a second signal, or grace + CANCELLATION_MARGIN_MS, exits at once. Activities cut off are
 * retried by Temporal on another worker after their heartbeat timeout: every activity is
 * idempotent.
 */
export function stopGracefullyOnSignals(workers: readonly Worker[], graceMs: number, log: (line: string) => void): GracefulStop {
  let stopping = false;
  let cutOff: NodeJS.Timeout | undefined;
  const onSignal = (signal: 'SIGTERM' | 'SIGINT') => {
    if (stopping) {
      log(`${signal} again: exiting now; activities still in flight run again on another worker`);
      process.exit(EXIT_CODES[signal]);
    }
    stopping = true;
    const inFlight = workers.reduce((sum, worker) => sum + worker.getStatus().numInFlightActivities, 0);
    log(
      `${signal}: stopped polling; ${inFlight} ${inFlight === 1 ? 'activity' : 'activities'} in flight may finish within ${Math.round(graceMs / 1000)} s ` +
        `(WORKER_SHUTDOWN_GRACE), then are cancelled; ${signal} again stops at once`,
    );
    for (const worker of workers) if (worker.getState() === 'RUNNING') worker.shutdown();
    cutOff = setTimeout(() => {
      log(`activities did not stop within WORKER_SHUTDOWN_GRACE + ${CANCELLATION_MARGIN_MS / 1000} s: exiting now`);
      process.exit(1);
    }, graceMs + CANCELLATION_MARGIN_MS);
    // The timer must not keep a stopped process alive.
    cutOff.unref();
  };
  const onTerm = () => onSignal('SIGTERM');
  const onInt = () => onSignal('SIGINT');
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onInt);
  return {
    dispose() {
      clearTimeout(cutOff);
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
    },
  };
}

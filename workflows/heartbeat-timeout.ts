import { ApplicationFailure } from '@temporalio/workflow';

const MIN_SECONDS = 5;
const MAX_SECONDS = 3600;

/**
 * The heartbeat timeout a workflow's input asks for (its `heartbeatTimeoutSeconds`), else
 * `fallback`. Outside 5 s - 1 h it is refused, non-retryable, naming the field: shorter would
 * retry healthy work on a busy worker, longer would leave a dead worker unnoticed for hours.
 */
export function heartbeatTimeoutSeconds(requested: number | undefined, fallback: number): number {
  const seconds = requested ?? fallback;
  if (!Number.isFinite(seconds) || seconds < MIN_SECONDS || seconds > MAX_SECONDS) {
    throw ApplicationFailure.nonRetryable(
      `heartbeatTimeoutSeconds: expected ${MIN_SECONDS}-${MAX_SECONDS} seconds, got ${JSON.stringify(requested)}`,
      'InputError',
    );
  }
  return seconds;
}

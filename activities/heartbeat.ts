import { Context } from '@temporalio/activity';

/**
 * Progress of a long activity, sent as heartbeat details at most every `intervalMs`: the
 * server learns the activity is alive (a stalled one times out and is retried), and the CLI
 * shows the bytes moved by reading the pending activity's last heartbeat.
 */
export interface ProgressDetails {
  step: string;
  bytes: number;
}

export function progressHeartbeat(step: string, intervalMs = 2_000): (bytes: number) => void {
  const context = Context.current();
  const every = withinTimeout(context, intervalMs);
  let last = 0;
  context.heartbeat({ step, bytes: 0 } satisfies ProgressDetails);
  return (bytes: number) => {
    const now = Date.now();
    if (now - last < every) return;
    last = now;
    context.heartbeat({ step, bytes } satisfies ProgressDetails);
  };
}

/** Keeps heartbeating while `work` runs (for steps that report no progress, e.g. a long query). */
export async function withHeartbeat<T>(step: string, work: Promise<T>, intervalMs = 5_000): Promise<T> {
  const context = Context.current();
  const timer = setInterval(() => context.heartbeat({ step, bytes: 0 } satisfies ProgressDetails), withinTimeout(context, intervalMs));
  try {
    return await work;
  } finally {
    clearInterval(timer);
  }
}

/** `intervalMs`, or less when the activity's heartbeat timeout is short: at least three beats per timeout. */
function withinTimeout(context: Context, intervalMs: number): number {
  const timeoutMs = context.info.heartbeatTimeoutMs;
  return timeoutMs ? Math.min(intervalMs, timeoutMs / 3) : intervalMs;
}

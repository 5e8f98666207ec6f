import { ActivityFailure, ApplicationFailure, RetryState, TimeoutFailure } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { allSettledOrThrow, hostTimeoutSeconds, isHostLost } from '../../workflows/on-one-host.js';

const activityFailure = (cause: Error) => new ActivityFailure('Activity task timed out', 'dumpDatabase', '1', RetryState.NON_RETRYABLE_FAILURE, 'worker', cause);
const hostLost = () => activityFailure(new TimeoutFailure('activity ScheduleToStart timeout', undefined, 'SCHEDULE_TO_START'));

describe('workflows/on-one-host.ts', () => {
  it('takes only a schedule-to-start timeout for a lost host, not a slow or failing step', () => {
    expect(isHostLost(hostLost())).toBe(true);
    expect(isHostLost(activityFailure(new TimeoutFailure('heartbeat', undefined, 'HEARTBEAT')))).toBe(false);
    expect(isHostLost(activityFailure(new TimeoutFailure('too long', undefined, 'START_TO_CLOSE')))).toBe(false);
    expect(isHostLost(activityFailure(ApplicationFailure.nonRetryable('pg_dump failed', 'ToolError')))).toBe(false);
    expect(isHostLost(new Error('SCHEDULE_TO_START'))).toBe(false);
  });

  it('waits for every step of an attempt and reports a lost host before other failures', async () => {
    let slowDone = false;
    const slow = new Promise<string>((resolve) => setTimeout(() => ((slowDone = true), resolve('uploaded')), 30));
    const failure = await allSettledOrThrow([Promise.reject(new Error('s3 down')), slow, Promise.reject(hostLost())]).catch((error: unknown) => error);
    expect(slowDone).toBe(true);
    expect(isHostLost(failure)).toBe(true);
    await expect(allSettledOrThrow([Promise.resolve(1), Promise.reject(new Error('s3 down'))])).rejects.toThrow('s3 down');
    await expect(allSettledOrThrow([Promise.resolve(1), Promise.resolve(2)])).resolves.toEqual([1, 2]);
  });

  it('refuses a host timeout outside 5 s - 1 h, naming the input field', () => {
    expect(hostTimeoutSeconds(undefined)).toBe(60);
    expect(hostTimeoutSeconds(5)).toBe(5);
    for (const bad of [4, 3601, Number.NaN]) expect(() => hostTimeoutSeconds(bad)).toThrow(/^hostTimeoutSeconds: expected 5-3600 seconds/);
  });
});

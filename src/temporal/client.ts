import { Client, type WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import type { Config } from '../config.js';
import { openClientConnection } from './connect.js';

export async function connectClient(temporal: Config['temporal']): Promise<Client> {
  const connection = await openClientConnection(temporal.connection);
  return new Client({ connection, namespace: temporal.namespace });
}

/** The last heartbeat of each activity in flight: where the bytes of a long step stand. */
export async function pendingActivityProgress(handle: WorkflowHandle): Promise<Array<{ activity: string; step?: string; bytes?: number; attempt: number }>> {
  const description = await handle.describe();
  return (description.raw.pendingActivities ?? []).map((pending) => {
    const payload = pending.heartbeatDetails?.payloads?.[0];
    const details = payload ? (defaultPayloadConverter.fromPayload(payload) as { step?: string; bytes?: number }) : {};
    return { activity: pending.activityType?.name ?? '?', step: details.step, bytes: details.bytes, attempt: pending.attempt ?? 1 };
  });
}

import type { Client } from '@temporalio/client';

type Timestamp = { seconds?: { toString(): string } | number | null; nanos?: number | null } | null | undefined;

/** A history event's time in milliseconds since the epoch. */
export function eventMs(ts: Timestamp): number {
  return Number(ts?.seconds?.toString() ?? 0) * 1000 + (ts?.nanos ?? 0) / 1e6;
}

/**
 * Where a workflow's time went, from its history: each activity with its offset from the
 * workflow's start and its duration (scheduled -> closed, so queueing and retries count).
 */
export async function activityProfile(client: Client, workflowId: string): Promise<string[]> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const events = history.events ?? [];
  const start = eventMs(events[0]?.eventTime);
  const scheduled = new Map<string, { name: string; at: number }>();
  const lines: Array<{ at: number; line: string }> = [];
  for (const event of events) {
    const id = event.eventId?.toString() ?? '';
    const at = eventMs(event.eventTime);
    const attributes = event.activityTaskScheduledEventAttributes;
    if (attributes) scheduled.set(id, { name: `${attributes.activityType?.name ?? '?'}${repositoryOf(attributes.input?.payloads?.[0]?.data)}`, at });
    const closed = event.activityTaskCompletedEventAttributes ?? event.activityTaskFailedEventAttributes ?? event.activityTaskTimedOutEventAttributes;
    const task = closed ? scheduled.get(closed.scheduledEventId?.toString() ?? '') : undefined;
    if (task) {
      const outcome = event.activityTaskCompletedEventAttributes ? '' : ' (failed/timed out)';
      lines.push({ at: task.at, line: `${task.name}: ${((at - task.at) / 1000).toFixed(2)} s, from +${((task.at - start) / 1000).toFixed(2)} s${outcome}` });
    }
  }
  const end = eventMs(events[events.length - 1]?.eventTime);
  return [...lines.sort((a, b) => a.at - b.at).map((l) => l.line), `workflow total: ${((end - start) / 1000).toFixed(2)} s`];
}

/** ` (s3)` for an activity whose input names a repository (uploadArtifacts, writeManifest). */
function repositoryOf(data: Uint8Array | null | undefined): string {
  try {
    const input = JSON.parse(Buffer.from(data ?? []).toString('utf8')) as { repository?: unknown };
    return typeof input.repository === 'string' ? ` (${input.repository})` : '';
  } catch {
    return '';
  }
}

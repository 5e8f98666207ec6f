import type { WorkflowHandle } from '@temporalio/client';
import { readCatalog, verifyBackup } from '../../src/catalog.js';
import type { Repository } from '../../src/storage/repository.js';

/**
 * What readers see after a fault: the complete backups of every repository (their manifests),
 * and whether each one's artifacts still match. These are the reliability suite's verdicts:
 * a fault is survived when exactly the expected backups are visible and every one verifies.
 */
export interface RepositoryView {
  ids: string[];
  invalid: string[];
}

export async function viewRepositories(repositories: ReadonlyMap<string, Repository>, env: string): Promise<Record<string, RepositoryView>> {
  const views: Record<string, RepositoryView> = {};
  for (const [name, repository] of repositories) {
    const catalog = await readCatalog(repository, env);
    views[name] = { ids: catalog.backups.map((b) => b.id), invalid: catalog.invalid.map((i) => `${i.key}: ${i.error}`) };
  }
  return views;
}

/**
 * Problems with the visible backups whose ids are not in `trusted` (already verified): every
 * visible manifest must describe artifacts that are there, whole and unaltered. Empty: none.
 */
export async function verifyVisibleBackups(
  repositories: ReadonlyMap<string, Repository>,
  env: string,
  trusted: ReadonlySet<string> = new Set(),
): Promise<string[]> {
  const problems: string[] = [];
  for (const [name, repository] of repositories) {
    const catalog = await readCatalog(repository, env);
    for (const invalid of catalog.invalid) problems.push(`${name}: invalid manifest ${invalid.key}: ${invalid.error}`);
    for (const manifest of catalog.backups) {
      if (trusted.has(manifest.id)) continue;
      for (const check of await verifyBackup(repository, manifest)) {
        if (!check.ok) problems.push(`${name}: ${manifest.id} ${check.artifact}: ${check.error ?? JSON.stringify(check.actual)}`);
      }
    }
  }
  return problems;
}

/** Every activity attempt the history records that was a retry: what ran again and why the attempt before failed. */
export interface Retry {
  activity: string;
  attempt: number;
  lastFailure: string;
}

// temporal.api.enums.v1.TimeoutType, by number.
const TIMEOUT_TYPES = ['UNSPECIFIED', 'START_TO_CLOSE', 'SCHEDULE_TO_START', 'SCHEDULE_TO_CLOSE', 'HEARTBEAT'];

export async function activityRetries(handle: WorkflowHandle): Promise<Retry[]> {
  const history = await handle.fetchHistory();
  const scheduled = new Map<string, string>();
  const retries: Retry[] = [];
  for (const event of history.events ?? []) {
    const schedule = event.activityTaskScheduledEventAttributes;
    if (schedule) scheduled.set(String(event.eventId), schedule.activityType?.name ?? '?');
    const start = event.activityTaskStartedEventAttributes;
    if (start && (start.attempt ?? 1) > 1) {
      const failure = start.lastFailure;
      const timeout = failure?.timeoutFailureInfo?.timeoutType;
      const cause = failure?.cause?.message;
      retries.push({
        activity: scheduled.get(String(start.scheduledEventId)) ?? '?',
        attempt: start.attempt ?? 1,
        lastFailure: [failure?.message, cause, timeout ? `${TIMEOUT_TYPES[timeout] ?? timeout} timeout` : undefined]
          .filter(Boolean)
          .join(': '),
      });
    }
  }
  return retries;
}

/**
 * Polls the workflow's pending activities while it runs and collects the failures of attempts
 * that will be retried (the history keeps only the last one): `activity: message (TYPE timeout)`.
 */
export function watchFailedAttempts(handle: WorkflowHandle, intervalMs = 250): { stop(): Promise<string[]> } {
  const seen = new Set<string>();
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const description = await handle.describe();
        for (const pending of description.raw.pendingActivities ?? []) {
          const failure = pending.lastFailure;
          if (!failure) continue;
          const timeout = failure.timeoutFailureInfo?.timeoutType;
          seen.add(
            `${pending.activityType?.name ?? '?'}: ${[failure.message, failure.cause?.message, timeout ? `${TIMEOUT_TYPES[timeout] ?? timeout} timeout` : undefined]
              .filter(Boolean)
              .join(': ')}`,
          );
        }
        if (description.status.name !== 'RUNNING') return;
      } catch {
        // The server may be restarting; keep polling.
      }
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return [...seen];
    },
  };
}

/** An activity failure the history records (the last attempt's), and whether it forbade retries. */
export interface ActivityFailure {
  activity: string;
  attempt: number;
  message: string;
  type: string;
  nonRetryable: boolean;
}

export async function activityFailures(handle: WorkflowHandle): Promise<ActivityFailure[]> {
  const history = await handle.fetchHistory();
  const scheduled = new Map<string, string>();
  const attempts = new Map<string, number>();
  const failures: ActivityFailure[] = [];
  for (const event of history.events ?? []) {
    const schedule = event.activityTaskScheduledEventAttributes;
    if (schedule) scheduled.set(String(event.eventId), schedule.activityType?.name ?? '?');
    const start = event.activityTaskStartedEventAttributes;
    if (start) attempts.set(String(start.scheduledEventId), start.attempt ?? 1);
    const failed = event.activityTaskFailedEventAttributes;
    if (failed) {
      const info = failed.failure?.applicationFailureInfo;
      failures.push({
        activity: scheduled.get(String(failed.scheduledEventId)) ?? '?',
        attempt: attempts.get(String(failed.scheduledEventId)) ?? 1,
        message: failed.failure?.message ?? '',
        type: info?.type ?? '',
        nonRetryable: info?.nonRetryable === true,
      });
    }
  }
  return failures;
}

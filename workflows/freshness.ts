import { ApplicationFailure, metricMeter, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { evaluateFreshness, reconcileIncidents, type OpenIncident } from '../src/freshness.js';
import { recordFreshnessGauges } from './freshness-metrics.js';
import type { FreshnessInput, FreshnessResult } from './messages.js';

const reading = proxyActivities<Activities>({
  startToCloseTimeout: '5m',
  retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 3 },
});
// A webhook that is down must not hold the run past the next one (15 minutes later).
const notifying = proxyActivities<Activities>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 4 },
});

/**
 * Freshness (S9: detect within 30 minutes), scheduled every 15 minutes: judges what the
 * repositories hold (src/freshness.ts) and announces each incident once on the webhook, and
 * its recovery once. A notice that cannot be sent leaves its incident unannounced (or still
 * open), so the next run tries again, and fails this run so it shows in the schedule's history.
 */
export async function Freshness(input: FreshnessInput = {}): Promise<FreshnessResult> {
  const now = input.now === undefined ? new Date() : new Date(input.now);
  if (Number.isNaN(now.getTime())) throw ApplicationFailure.nonRetryable(`now: ${JSON.stringify(input.now)} is not an ISO 8601 time`, 'InputError');
  const nowIso = now.toISOString();

  const facts = await reading.gatherFreshnessFacts();
  const findings = evaluateFreshness(facts, now);
  const open = await reading.loadOpenIncidents();
  const { opened, recovered } = reconcileIncidents(open, findings);

  const stillOpen: OpenIncident[] = open.filter((incident) => !recovered.includes(incident));
  const unsent: string[] = [];
  for (const finding of opened) {
    try {
      await notifying.announceIncident({ finding, now: nowIso });
      stillOpen.push({ id: finding.id, check: finding.check, summary: finding.summary, openedAt: nowIso });
    } catch (error) {
      unsent.push(`alert ${finding.id}: ${failureMessage(error)}`);
    }
  }
  for (const incident of recovered) {
    try {
      await notifying.announceRecovery({ incident, now: nowIso });
    } catch (error) {
      stillOpen.push(incident);
      unsent.push(`recovery ${incident.id}: ${failureMessage(error)}`);
    }
  }
  if (opened.length > 0 || recovered.length > 0) await reading.saveOpenIncidents(stillOpen);

  recordFreshnessGauges(metricMeter, facts, now, stillOpen.length);

  if (unsent.length > 0) {
    throw ApplicationFailure.nonRetryable(`Freshness: ${unsent.length} notice(s) not sent: ${unsent.join('; ')}`, 'NoticeNotSent');
  }
  return {
    checkedAt: nowIso,
    findings: findings.map((finding) => ({ id: finding.id, summary: finding.summary })),
    opened: opened.map((finding) => finding.id),
    recovered: recovered.map((incident) => incident.id),
    open: stillOpen.map((incident) => incident.id),
  };
}

/** An activity failure's own message is generic; its cause says what went wrong. */
function failureMessage(error: unknown): string {
  const cause = (error as { cause?: unknown }).cause;
  return cause instanceof Error ? cause.message : (error as Error).message;
}

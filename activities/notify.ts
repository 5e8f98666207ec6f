import { log } from '@temporalio/activity';
import { InputError } from '../src/errors.js';

/**
 * Posts an operator notice to the webhook (Slack-compatible: `{ "text": ... }` plus
 * structured fields for other receivers). Without a webhook the notice goes to the worker log.
 */
export interface Notice {
  event: 'backup-failed' | 'drill-failed' | 'approval-reminder' | 'alert' | 'recovered';
  env: string;
  summary: string;
  fields: Record<string, string>;
}

export async function postNotice(webhookUrl: string | undefined, notice: Notice): Promise<void> {
  const text = `[erp4-backup ${notice.env}] ${notice.summary}\n` +
    Object.entries(notice.fields).map(([name, value]) => `${name}: ${value}`).join('\n');
  if (!webhookUrl) {
    log.warn('no NOTIFY_WEBHOOK_URL configured; notice only logged', { notice: text });
    return;
  }
  const response = await fetch(webhookUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ text, event: notice.event, env: notice.env, ...notice.fields }),
    signal: AbortSignal.timeout(15_000),
  });
  if (response.ok) return;
  const answer = `NOTIFY_WEBHOOK_URL answered ${response.status} ${response.statusText}`;
  // 4xx (but a timeout or rate limit) says the URL or its token is wrong: sending again cannot help.
  if (response.status >= 400 && response.status < 500 && response.status !== 408 && response.status !== 429) {
    throw new InputError(`${answer}: the webhook refuses the notice; check NOTIFY_WEBHOOK_URL`);
  }
  throw new Error(answer);
}

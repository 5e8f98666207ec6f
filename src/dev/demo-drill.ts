import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { followRestore } from '../commands/follow-restore.js';
import { formatDuration } from '../commands/format.js';
import type { Repository } from '../storage/repository.js';
import type { RestoreDrill } from '../../workflows/index.js';
import { approveRestoreSignal, restoreStatusQuery, type RestoreResult, type RestoreStatus } from '../../workflows/messages.js';

/**
 * The second half of `npm run demo`: a RestoreDrill of the demo's backup that waits for
 * approval as a drill in production does, the commands an approver would run, the approval
 * (by the demo itself, or by the user from another terminal), and the stored drill report.
 */

/** Where the printed approval commands point: everything a second terminal needs. */
export interface ApprovalCommandContext {
  workflowId: string;
  approver: string;
  comment: string;
  temporalAddress: string;
  namespace: string;
  /** DB_NAME: every erp4-backup command loads the whole configuration, and it has no default. */
  databaseName: string;
  /** This checkout: `npm --prefix <root> run cli --` is its erp4-backup, runnable from anywhere. */
  projectRoot: string;
  temporalCliPath: string;
}

/** A word the shell passes through unchanged, quoted only when it must be. */
export function shellWord(word: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The `erp4-backup approve` and `temporal workflow signal` command lines that approve the drill, ready to paste. */
export function approvalCommands(ctx: ApprovalCommandContext): { erp4Backup: string; temporal: string } {
  const env = [`TEMPORAL_ADDRESS=${ctx.temporalAddress}`, ...(ctx.namespace !== 'default' ? [`TEMPORAL_NAMESPACE=${ctx.namespace}`] : []), `DB_NAME=${ctx.databaseName}`];
  const erp4Backup = [
    ...env,
    ...['npm', '--prefix', ctx.projectRoot, 'run', 'cli', '--', 'approve', ctx.workflowId, '--as', ctx.approver, '--comment', ctx.comment],
  ];
  const temporal = [
    ctx.temporalCliPath,
    ...['workflow', 'signal', '--address', ctx.temporalAddress, '--namespace', ctx.namespace, '--workflow-id', ctx.workflowId, '--name', approveRestoreSignal.name],
    ...['--input', JSON.stringify({ approver: ctx.approver, comment: ctx.comment })],
  ];
  return {
    erp4Backup: erp4Backup.map((word, i) => (i < env.length ? `${word.split('=')[0]}=${shellWord(word.slice(word.indexOf('=') + 1))}` : shellWord(word))).join(' '),
    temporal: temporal.map(shellWord).join(' '),
  };
}

export interface DemoDrillOptions {
  /** The configured approver (RESTORE_APPROVERS): the name the demo approves as. */
  approver: string;
  /** Approve at once (no terminal, or `--approve`) with this comment; undefined: wait for the user. */
  selfApproval: string | undefined;
  /** Printed while the drill waits: the commands, the Web UI link. */
  instructions: (status: RestoreStatus) => string[];
  /** Where the drill report is stored (`local:<key>` among its report keys). */
  local: Repository;
  out: NodeJS.WritableStream;
}

/** Starts a RestoreDrill of one backup in one repository; it waits for approve-restore (DRILL_PREAPPROVED=false). */
export async function startDemoDrill(client: Client, taskQueue: string, workflowId: string, backupId: string, repository: string): Promise<WorkflowHandle<typeof RestoreDrill>> {
  return client.workflow.start<typeof RestoreDrill>('RestoreDrill', { taskQueue, workflowId, args: [{ backupId, repository }] });
}

/** Follows the drill through its approval to its end and prints its report; a failed drill rejects. */
export async function followDemoDrill(handle: WorkflowHandle<typeof RestoreDrill>, options: DemoDrillOptions): Promise<RestoreResult> {
  const { out } = options;
  const say = (line: string) => out.write(`${line}\n`);
  const waiting = await untilApprovalPhase(handle);
  if (waiting && !waiting.approvals.preApproved && !waiting.approvals.satisfied) {
    for (const line of options.instructions(waiting)) say(line);
    if (options.selfApproval !== undefined) {
      await handle.signal(approveRestoreSignal, { approver: options.approver, comment: options.selfApproval });
      say(`approve-restore sent by the demo as ${options.approver}: ${options.selfApproval}`);
    } else {
      say('waiting for the approval (Ctrl-C stops the demo; `npm run demo -- --approve` approves at once) ...');
    }
  }
  // followRestore's own approval hint has placeholders; the demo printed the ready-to-paste commands.
  const result = await followRestore(handle, withoutLinesStarting('waiting for ', out));
  await printReport(result.reportKeys, options.local, out);
  say(`drill ${result.outcome}: backup ${result.backupId ?? '-'}, ${result.checks.length} checks, measured RTO ${formatDuration(result.rtoMs)}`);
  return result;
}

/** The status once the drill reached its approval step (or passed it); undefined when it ended before. */
async function untilApprovalPhase(handle: WorkflowHandle): Promise<RestoreStatus | undefined> {
  let ended = false;
  const end = handle.result().then(
    () => (ended = true),
    () => (ended = true),
  );
  while (!ended) {
    // The first workflow task may not have run yet: the query fails until it has.
    const status = await handle.query(restoreStatusQuery).catch(() => undefined);
    if (status && (status.phase === 'awaiting-approval' || status.phases.some((p) => p.phase === 'awaiting-approval'))) return status;
    await Promise.race([end, sleep(200)]);
  }
  return undefined;
}

/** The Markdown report the drill stored in the local repository, as an operator would open it. */
async function printReport(reportKeys: readonly string[], local: Repository, out: NodeJS.WritableStream): Promise<void> {
  const key = reportKeys.find((k) => k.startsWith('local:') && k.endsWith('.md'))?.slice('local:'.length);
  if (!key) return;
  const markdown = (await local.getBytes(key)).toString('utf8');
  out.write(`\n--- drill report (${key}) ---\n${markdown.trimEnd()}\n--- end of the drill report ---\n\n`);
}

function withoutLinesStarting(prefix: string, out: NodeJS.WritableStream): NodeJS.WritableStream {
  return new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      const text = String(chunk);
      if (!text.startsWith(prefix)) out.write(text);
      done();
    },
  });
}

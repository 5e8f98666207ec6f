import { setTimeout as sleep } from 'node:timers/promises';
import type { WorkflowHandle } from '@temporalio/client';
import type { Config } from '../config.js';
import { backupIdFor, type BackupKind } from '../layout.js';
import { startOnce } from '../temporal/start-once.js';
import { connectClient, pendingActivityProgress } from '../temporal/client.js';
import type { NightlyBackup } from '../../workflows/index.js';
import { progressQuery, type NightlyBackupResult } from '../../workflows/messages.js';
import { formatBytes } from './format.js';
import { ProgressDisplay } from './progress-line.js';
import { humanOutput, reportRun, writeJson } from './json-output.js';

export interface BackupCommandOptions {
  kind: BackupKind;
  label?: string;
  pin: boolean;
  /** Print progress until the workflow ends (default), or only start it. */
  follow: boolean;
  /** One JSON document on stdout (the workflow id, the backup id and the result); progress goes to stderr. */
  json?: boolean;
}

/** `erp4-backup backup`: starts NightlyBackup and shows its progress until it ends. */
export async function backupCommand(config: Config, options: BackupCommandOptions, stdout: NodeJS.WritableStream = process.stdout): Promise<NightlyBackupResult | undefined> {
  const out = humanOutput(options.json, stdout);
  const client = await connectClient(config.temporal);
  try {
    const backupId = backupIdFor(options.kind, new Date());
    const handle = await startOnce<typeof NightlyBackup>(client, 'NightlyBackup', {
      taskQueue: config.temporal.taskQueue,
      // One workflow per backup id: Temporal refuses a second start of the same backup.
      workflowId: `backup-${config.env}-${backupId}`,
      args: [{ kind: options.kind, label: options.label, pin: options.pin, backupId }],
    });
    out.write(`started NightlyBackup ${options.kind}: workflow id ${handle.workflowId}, backup id ${backupId}\n`);
    if (!options.follow) {
      if (options.json) writeJson(stdout, { workflowId: handle.workflowId, backupId });
      return undefined;
    }
    return await reportRun(options, stdout, handle.workflowId, async () => {
      const result = await followBackup(handle, out);
      out.write(`backup ${result.backupId} complete: ${formatBytes(result.totalBytes)} in ${result.repositories.join(', ')} (local: the local repository of host ${result.host})\n`);
      return result;
    });
  } finally {
    await client.connection.close();
  }
}

/** Shows the progress (src/commands/progress-line.ts) until the workflow ends. */
export async function followBackup(handle: WorkflowHandle<typeof NightlyBackup>, out: NodeJS.WritableStream): Promise<NightlyBackupResult> {
  let settled = false;
  const result = handle.result().finally(() => {
    settled = true;
  });
  const display = new ProgressDisplay(out);
  const printProgress = async () => {
    const [progress, pending] = await Promise.all([handle.query(progressQuery), pendingActivityProgress(handle)]);
    display.show({
      elapsedMs: progress.elapsedMs,
      phase: progress.phase,
      inFlight: pending.flatMap((p) => (p.step ? [{ step: p.step, bytes: p.bytes ?? 0, attempt: p.attempt }] : [])),
      at: Date.now(),
    });
  };
  try {
    while (!settled) {
      // The workflow may not have run its first task yet: the next round asks again.
      await printProgress().catch(() => undefined);
      await Promise.race([result.catch(() => undefined), sleep(1000)]);
    }
    // A short backup may end between two polls: its final phase is still worth a line.
    await printProgress().catch(() => undefined);
  } finally {
    display.endLine();
  }
  return result;
}

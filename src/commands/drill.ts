import type { Config } from '../config.js';
import type { BackupKind } from '../layout.js';
import { startOnce } from '../temporal/start-once.js';
import { connectClient } from '../temporal/client.js';
import type { RestoreDrill } from '../../workflows/index.js';
import type { RestoreDrillInput, RestoreResult } from '../../workflows/messages.js';
import { followRestore } from './follow-restore.js';
import { formatDuration } from './format.js';
import { humanOutput, reportRun, writeJson } from './json-output.js';

export interface DrillCommandOptions {
  /** A backup id or `latest`. */
  backup: string;
  repo?: string;
  kind: BackupKind;
  /** `latest-critical` or a backup id: its important tables laid over the restored backup (6-hour RPO). */
  overlay?: string;
  keepScratch: boolean;
  /** Print progress until the drill ends (default), or only start it. */
  follow: boolean;
  /** One JSON document on stdout (the workflow id and the result, or the failure); progress goes to stderr. */
  json?: boolean;
}

/**
 * `erp4-backup drill`: starts a RestoreDrill (the same as `temporal workflow start --type
 * RestoreDrill ...`) and follows it. Resolves with the result; a failed drill rejects.
 */
export async function drillCommand(config: Config, options: DrillCommandOptions, stdout: NodeJS.WritableStream = process.stdout): Promise<RestoreResult | undefined> {
  const out = humanOutput(options.json, stdout);
  const client = await connectClient(config.temporal);
  try {
    const input: RestoreDrillInput = {
      backupId: options.backup,
      kind: options.kind,
      keepScratch: options.keepScratch,
      ...(options.repo ? { repository: options.repo } : {}),
      ...(options.overlay ? { overlay: options.overlay } : {}),
    };
    const handle = await startOnce<typeof RestoreDrill>(client, 'RestoreDrill', {
      taskQueue: config.temporal.taskQueue,
      workflowId: `drill-${config.env}-${timestamp()}`,
      args: [input],
    });
    out.write(`started RestoreDrill: workflow id ${handle.workflowId}\n`);
    if (!options.follow) {
      if (options.json) writeJson(stdout, { workflowId: handle.workflowId });
      return undefined;
    }
    return await reportRun(options, stdout, handle.workflowId, async () => {
      const result = await followRestore(handle, out);
      out.write(`drill ${result.outcome}: backup ${result.backupId ?? '-'}, measured RTO ${formatDuration(result.rtoMs)}\n`);
      return result;
    });
  } finally {
    await client.connection.close();
  }
}

/** `20261126T170000Z`: sortable, and unique enough for a command an operator runs by hand. */
export function timestamp(at = new Date()): string {
  return at.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
}

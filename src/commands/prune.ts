import { InvalidArgumentError, type Command } from 'commander';
import { loadConfig, type Config } from '../config.js';
import { connectClient } from '../temporal/client.js';
import type { Prune } from '../../workflows/index.js';
import type { PruneResult } from '../../workflows/messages.js';
import { formatTable } from './format.js';
import { writeJson } from './json-output.js';

export interface PruneCommandOptions {
  dryRun: boolean;
  /** Default: every configured repository. */
  repositories?: string[];
  /** Plan as of this ISO 8601 time instead of the workflow's clock (the workflow's `now`). */
  now?: string;
  /** Print the PruneResult as one JSON document instead of the table. */
  json?: boolean;
}

/**
 * `erp4-backup prune [--dry-run] [--repo ...]`: runs the Prune workflow and prints every backup
 * with keep/delete and why. A dry run prints the plan the real run would act on; the real run
 * prints the same plan, then what it deleted.
 */
export async function pruneCommand(config: Config, options: PruneCommandOptions, out: NodeJS.WritableStream = process.stdout): Promise<PruneResult> {
  const client = await connectClient(config.temporal);
  try {
    const result = await client.workflow.execute<typeof Prune>('Prune', {
      taskQueue: config.temporal.taskQueue,
      workflowId: `prune-${config.env}${options.dryRun ? '-dry-run' : ''}-${new Date().toISOString()}`,
      args: [{ dryRun: options.dryRun, ...(options.repositories ? { repositories: options.repositories } : {}), ...(options.now ? { now: options.now } : {}) }],
    });
    if (options.json) writeJson(out, result);
    else out.write(formatPruneResult(result));
    return result;
  } finally {
    await client.connection.close();
  }
}

/** `local@<host>` for a host's local repository (each host has its own), else the repository's name. */
function repositoryLabel(entry: { repository: string; host?: string }): string {
  return entry.host !== undefined ? `${entry.repository}@${entry.host}` : entry.repository;
}

export function formatPruneResult(result: PruneResult): string {
  const lines: string[] = [`Prune of env ${result.env} at ${result.now}${result.dryRun ? ' (dry run: nothing is deleted)' : ''}`];
  for (const plan of result.plans) lines.push(`${repositoryLabel(plan)}: policy ${plan.policy}`);
  const rows = result.plans.flatMap((plan) =>
    plan.backups.map((backup) => [
      repositoryLabel(plan),
      backup.id,
      backup.kind,
      backup.generatedAt,
      backup.action,
      backup.reasons.join(', ') || '-',
      backup.label ?? '',
    ]),
  );
  lines.push(formatTable(['REPOSITORY', 'ID', 'KIND', 'GENERATED_AT', 'ACTION', 'REASON', 'LABEL'], rows));
  for (const plan of result.plans) {
    for (const object of plan.abandoned) lines.push(`reap    ${repositoryLabel(plan)} ${object.key}: ${object.reason}`);
    for (const upload of plan.abandonedUploads) lines.push(`abort   ${repositoryLabel(plan)} multipart upload ${upload.uploadId} of ${upload.key}, started ${upload.initiatedAt}`);
    for (const retag of plan.retag) lines.push(`retag   ${repositoryLabel(plan)} ${retag.backupId}: tier=${retag.tier}`);
    for (const warning of plan.warnings) lines.push(`warning ${repositoryLabel(plan)}: ${warning}`);
    const deletions = plan.backups.filter((backup) => backup.action === 'delete').length;
    lines.push(
      `${repositoryLabel(plan)}: ${deletions} of ${plan.backups.length} backup(s) to delete, ` +
        `${plan.abandoned.length} abandoned object(s), ${plan.abandonedUploads.length} unfinished upload(s)`,
    );
  }
  for (const done of result.results) {
    for (const backupId of done.deletedBackups) lines.push(`deleted ${repositoryLabel(done)} ${backupId}`);
    for (const key of done.reapedKeys) lines.push(`reaped  ${repositoryLabel(done)} ${key}`);
    for (const upload of done.abortedUploads) lines.push(`aborted ${repositoryLabel(done)} multipart upload ${upload.uploadId} of ${upload.key}`);
    for (const retag of done.retagged) lines.push(`tagged  ${repositoryLabel(done)} ${retag.backupId} tier=${retag.tier}`);
    for (const skipped of done.skipped) lines.push(`skipped ${repositoryLabel(done)} ${skipped.backupId}: ${skipped.reason}`);
  }
  for (const host of result.unreachableHosts) lines.push(`unreachable host ${host}: its local repository was not pruned (the next run tries again)`);
  return `${lines.join('\n')}\n`;
}

function parseTime(value: string): string {
  const time = new Date(value);
  if (Number.isNaN(time.getTime())) throw new InvalidArgumentError('expected an ISO 8601 time such as 2027-01-31T00:00:00+09:00');
  return time.toISOString();
}

/** The `prune` command of the CLI. */
export function addPruneCommand(program: Command): void {
  program
    .command('prune')
    .description('apply the retention policies (the Prune workflow): print every backup with keep/delete and why')
    .option('--dry-run', 'print the plan only, delete nothing', false)
    .option('--repo <names...>', 'only these repositories (default: every configured one)')
    .option('--now <time>', 'with --dry-run: plan as if it were this time (ISO 8601), e.g. to see what next week deletes', parseTime)
    .option('--json', 'print the plan and what was deleted as JSON', false)
    .action(async (options: { dryRun: boolean; repo?: string[]; now?: string; json: boolean }) => {
      if (options.now !== undefined && !options.dryRun) throw new InvalidArgumentError('--now: only with --dry-run (a real run prunes as of now)');
      await pruneCommand(loadConfig(process.env, { database: false }), { dryRun: options.dryRun, json: options.json, ...(options.repo ? { repositories: options.repo } : {}), ...(options.now ? { now: options.now } : {}) });
    });
}

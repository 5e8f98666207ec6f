import { InvalidArgumentError, type Command } from 'commander';
import { join } from 'node:path';
import { loadConfig, type Config } from '../config.js';
import { ExitCode } from './exit-codes.js';
import { copyBackups, type CopyEvent, type CopyOutcome } from '../copy.js';
import { InputError } from '../errors.js';
import { isBackupId, manifestKey } from '../layout.js';
import { desiredTier, tierTags } from '../lifecycle.js';
import { pruneSettings } from '../prune-policy.js';
import { openRepository, repositoryNames } from '../repositories.js';
import type { Repository } from '../storage/repository.js';
import { formatBytes } from './format.js';

/**
 * `erp4-backup copy --from local --to s3`: the remedy for `offsite-lag` (S3 or the remote host
 * was down when the backup ran). Runs in this process, not as a workflow: like list, verify and
 * pin it works from the manifests alone (no Temporal server needed, which matters when the
 * outage that caused the lag was wider), and it is idempotent, so an interrupted copy is
 * finished by running it again. It needs the disk of the host whose `local` repository it reads.
 */
export async function copyCommand(
  config: Config,
  options: { from: string; to: string; backup?: string },
  out: NodeJS.WritableStream = process.stdout,
): Promise<CopyOutcome[]> {
  const configured = repositoryNames(config);
  for (const [flag, name] of [['--from', options.from], ['--to', options.to]] as const) {
    if (!configured.includes(name)) throw new InputError(`${flag} ${name}: repository not configured (configured: ${configured.join(', ')})`);
  }
  if (options.from === options.to) throw new InputError(`--to ${options.to}: the same repository as --from; name another one`);
  const opened: Repository[] = [];
  const open = (role: 'reader' | 'writer', name: string) => {
    const repository = openRepository(config, role, name)!;
    opened.push(repository);
    return repository;
  };
  const policy = pruneSettings(config).retention[options.to]?.policy;
  const now = new Date();
  try {
    const outcomes = await copyBackups({
      env: config.env,
      source: open('reader', options.from),
      target: { writer: open('writer', options.to), reader: open('reader', options.to) },
      stagingRoot: join(config.local.backupDir, '.staging'),
      manifestKeyOf: (manifest) => manifestKey({ env: config.env, prefix: config.local.prefix }, manifest.id),
      // The lifecycle tier the target's policy gives the backup now (a pinned one stays pinned), as pin and prune set it.
      tagsOf: policy ? (manifest, object) => tierTags(desiredTier(manifest, now, policy), object) : undefined,
      backupId: options.backup,
      onEvent: progressPrinter(options.to, out),
    });
    const count = (status: CopyOutcome['status']) => outcomes.filter((o) => o.status === status).length;
    out.write(
      `${options.from} -> ${options.to}: ${count('copied')} copied, ${count('present')} already there, ` +
        `${count('conflict')} conflicting, ${count('failed')} failed\n`,
    );
    if (options.backup !== undefined && outcomes.length === 0) {
      throw new InputError(`--backup ${options.backup}: not a complete backup in repository ${options.from} for env ${config.env}`);
    }
    return outcomes;
  } finally {
    await Promise.all(opened.map((repository) => repository.close()));
  }
}

/** One line per backup; per artifact its first progress, then a line at most every 2 s while it moves, and its end. */
function progressPrinter(target: string, out: NodeJS.WritableStream): (event: CopyEvent) => void {
  let current = '';
  let lastLine = 0;
  let finishedOne = false;
  return (event) => {
    switch (event.type) {
      case 'backup':
        out.write(`[${event.index}/${event.count}] copying ${event.backupId} to ${target} (${formatBytes(event.bytes)})\n`);
        break;
      case 'artifact': {
        const finished = event.bytesDone >= event.bytes;
        const artifact = `${event.backupId}/${event.artifact}`;
        if (artifact !== current) {
          current = artifact;
          lastLine = 0;
          finishedOne = false;
        }
        // A backend reports the end once more after its last progress event: one line is enough.
        if (finishedOne || (!finished && Date.now() - lastLine < 2000)) break;
        finishedOne = finished;
        lastLine = Date.now();
        const percent = event.bytes === 0 ? 100 : Math.floor((100 * event.bytesDone) / event.bytes);
        out.write(`  ${event.artifact}: ${formatBytes(event.bytesDone)} of ${formatBytes(event.bytes)} (${percent}%)\n`);
        break;
      }
      case 'verified':
        out.write(`  read back from ${target}: every artifact matches the manifest's sha256\n`);
        break;
      case 'done': {
        const { outcome } = event;
        const what = { copied: 'copied', present: 'already there', conflict: 'CONFLICT', failed: 'FAILED' }[outcome.status];
        out.write(`${outcome.backupId}: ${what}${outcome.detail ? `: ${outcome.detail}` : ''}\n`);
        break;
      }
    }
  };
}

/** The `copy` command of the CLI. */
export function addCopyCommand(program: Command): void {
  program
    .command('copy')
    .description('copy every complete backup a repository lacks into it (same id, verified, manifest last): the remedy for offsite-lag')
    .option('--from <name>', 'repository to read: local, s3, s3-copy or sftp', 'local')
    .requiredOption('--to <name>', 'repository to write: s3, s3-copy, sftp or local')
    .option('--backup <id>', 'copy only this backup (default: every one the target lacks)', (value: string) => {
      if (!isBackupId(value)) throw new InvalidArgumentError('expected a backup id like 20261126T170000Z-daily (see list)');
      return value;
    })
    .action(async (options: { from: string; to: string; backup?: string }) => {
      const outcomes = await copyCommand(loadConfig(process.env, { database: false }), options);
      if (outcomes.some((o) => o.status === 'failed' || o.status === 'conflict')) process.exitCode = ExitCode.checkFailed;
    });
}

#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { loadConfig, type Config } from './config.js';
import { BACKUP_KINDS, isBackupId } from './layout.js';
import { createRepositories } from './repositories.js';
import type { Repository } from './storage/repository.js';
import { approveCommand } from './commands/approve.js';
import { backupCommand } from './commands/backup.js';
import { drillCommand } from './commands/drill.js';
import { listCommand } from './commands/list.js';
import { restoreCommand } from './commands/restore.js';
import { addLifecycleCommands } from './commands/lifecycle.js';
import { addPinCommands } from './commands/pin.js';
import { addKeysCommand } from './commands/keys.js';
import { addCheckCommand } from './commands/check.js';
import { addHealthcheckCommand } from './commands/healthcheck.js';
import { addPruneCommand } from './commands/prune.js';
import { addSchedulesCommands } from './commands/schedules.js';
import { addCopyCommand } from './commands/copy.js';
import { addImportCommand } from './commands/import.js';
import { verifyCommand } from './commands/verify.js';
import { workerCommand } from './commands/worker.js';
import { describeError } from './commands/format.js';
import { ExitCode, exitCodeOf } from './commands/exit-codes.js';
import { projectRoot } from './tools.js';

// Usage errors commander has already printed (see exitOverride below).
const usageErrorsPrinted = new WeakSet<Error>();

/**
 * The operator's command line. Every command reads the same environment variables as the
 * worker (see README); the repository commands work from the manifests alone, with no
 * Temporal server needed.
 */
const program = new Command()
  .name('erp4-backup')
  .description('Durable, verifiable backups and restore drills of the erp4 PostgreSQL database and its PDF files')
  .version(productVersion(), '-V, --version', 'print the version of erp4-backup')
  .option('--env-file <path>', 'read settings from this file of KEY=value lines (as .env.example) first; variables already set win')
  // Node's own parser (.env.example's format); variables already set win. Node itself refuses a
  // missing or malformed file before this code runs ("node: FILE: not found", exit 9).
  .hook('preAction', (thisCommand) => {
    const { envFile } = thisCommand.opts<{ envFile?: string }>();
    if (envFile !== undefined) process.loadEnvFile(envFile);
  })
  .showHelpAfterError()
  // Commander has printed its usage error; remember it so the handler below only sets the exit code.
  .exitOverride((error) => {
    usageErrorsPrinted.add(error);
    throw error;
  });

program
  .command('worker')
  .description('run the Temporal worker (NightlyBackup and the other workflows) until SIGTERM')
  .action(async () => workerCommand(loadConfig()));

program
  .command('backup')
  .description('start a NightlyBackup now and follow its progress')
  .addOption(new Option('--kind <kind>', 'what to back up').choices(BACKUP_KINDS).default('manual'))
  .option('--label <text>', 'why this backup is taken (required for --kind manual), e.g. "before release 2026.11"')
  .option('--pin', 'never prune this backup', false)
  .option('--no-follow', 'start the workflow and return at once')
  .option('--json', 'print the result as JSON on stdout (progress goes to stderr)', false)
  .action(async (options: { kind: (typeof BACKUP_KINDS)[number]; label?: string; pin: boolean; follow: boolean; json: boolean }) => {
    await backupCommand(loadConfig(), options);
  });

const repoOption = () => new Option('--repo <name>', 'repository to read: local, s3, s3-copy or sftp').default('local');

program
  .command('list')
  .description("list the complete backups, read from the repository's manifests")
  .addOption(repoOption())
  .option('--json', 'print the catalog as JSON', false)
  .action(async (options: { repo: string; json: boolean }) => {
    const config = loadConfig(process.env, { database: false });
    await withRepository(config, options.repo, (repository) => listCommand(config, repository, options));
  });

program
  .command('verify')
  .description('re-read every artifact of a backup and check its size and sha256 against the manifest')
  .argument('<backup-id>', 'a backup id (see list) or "latest"', parseBackupIdArgument)
  .addOption(repoOption())
  .option('--json', 'print every check as JSON', false)
  .action(async (backupId: string, options: { repo: string; json: boolean }) => {
    const config = loadConfig(process.env, { database: false });
    const ok = await withRepository(config, options.repo, (repository) => verifyCommand(config, repository, backupId, process.stdout, options));
    if (!ok) process.exitCode = ExitCode.checkFailed;
  });

const restoreSourceOptions = (command: Command) =>
  command
    .option('--backup <id>', 'a backup id (see list) or "latest": the newest complete backup of --kind', parseBackupIdArgument, 'latest')
    .option('--repo <name>', 'repository to restore from: s3, s3-copy, sftp or local (default: the first configured of s3, sftp, local)')
    .addOption(new Option('--kind <kind>', 'the kind "latest" picks').choices(BACKUP_KINDS).default('daily'))
    .option('--overlay <backup>', 'lay the important tables of "latest-critical" (the newest critical or weekly-full backup) or of a backup id over the restored one, in one transaction (6-hour RPO)')
    .option('--no-follow', 'start the workflow and return at once')
    .option('--json', 'print the result (or the failure) as JSON on stdout (progress goes to stderr)', false);

restoreSourceOptions(
  program
    .command('drill')
    .description('start a RestoreDrill: restore a backup into a scratch database, check it, report; waits for approve-restore'),
)
  .option('--keep-scratch', 'keep the scratch database and files for inspection', false)
  .action(async (options: { backup: string; repo?: string; kind: (typeof BACKUP_KINDS)[number]; overlay?: string; keepScratch: boolean; follow: boolean; json: boolean }) => {
    const result = await drillCommand(loadConfig(), options);
    if (result && result.outcome !== 'passed') process.exitCode = ExitCode.checkFailed;
  });

program
  .command('approve')
  .description('send approve-restore to a waiting RestoreDrill or Restore, as one of RESTORE_APPROVERS')
  .argument('<workflow-id>', 'the workflow id printed by drill or restore')
  .requiredOption('--as <name>', 'your name as listed in RESTORE_APPROVERS')
  .option('--key <file>', 'sign with this SSH key (private key file, or public key file with the private key in ssh-agent); listed for you in RESTORE_ALLOWED_SIGNERS_FILE')
  .option('--comment <text>', 'why you approve, kept in the report (signed with the statement)')
  .option('--json', 'print the verdict as JSON', false)
  .action(async (workflowId: string, options: { as: string; key?: string; comment?: string; json: boolean }) => {
    if (!(await approveCommand(loadConfig(process.env, { database: false }), workflowId, options))) process.exitCode = ExitCode.checkFailed;
  });

restoreSourceOptions(
  program
    .command('restore')
    .description('start a production Restore into RESTORE_TARGET_DB (created empty); needs two approvers of two different roles'),
)
  .option('--apply-globals', "apply the backup's roles (shown before approval) before restoring", false)
  .action(async (options: { backup: string; repo?: string; kind: (typeof BACKUP_KINDS)[number]; overlay?: string; applyGlobals: boolean; follow: boolean; json: boolean }) => {
    const result = await restoreCommand(loadConfig(), options);
    if (result && result.outcome !== 'passed') process.exitCode = ExitCode.checkFailed;
  });

addSchedulesCommands(program);
addPruneCommand(program);
addPinCommands(program);
addLifecycleCommands(program);
addCopyCommand(program);
addImportCommand(program);
addKeysCommand(program);
addCheckCommand(program);
addHealthcheckCommand(program);

async function withRepository<T>(config: Config, name: string, work: (repository: Repository) => Promise<T>): Promise<T> {
  const repositories = createRepositories(config, 'reader');
  try {
    const repository = repositories.get(name);
    if (!repository) {
      throw new InvalidArgumentError(`--repo ${name}: not configured (configured: ${[...repositories.keys()].join(', ')})`);
    }
    return await work(repository);
  } finally {
    await Promise.all([...repositories.values()].map((r) => r.close()));
  }
}

function productVersion(): string {
  return (JSON.parse(readFileSync(join(projectRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

function parseBackupIdArgument(value: string): string {
  if (value !== 'latest' && !isBackupId(value)) {
    throw new InvalidArgumentError('expected a backup id like 20261126T170000Z-daily, or "latest"');
  }
  return value;
}

// The exit codes are those of src/commands/exit-codes.ts (the README's table).
program.parseAsync().catch((error: unknown) => {
  if (!(error instanceof Error && usageErrorsPrinted.has(error))) process.stderr.write(`erp4-backup: ${describeError(error)}\n`);
  process.exitCode = exitCodeOf(error);
});

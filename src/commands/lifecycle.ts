import { InvalidArgumentError, type Command } from 'commander';
import { loadConfig, type Config } from '../config.js';
import { ExitCode } from './exit-codes.js';
import { describeRule, isOwnRule, lifecycleRules, mergedRules } from '../lifecycle.js';
import { pruneSettings } from '../prune-policy.js';
import { createRepositories } from '../repositories.js';
import { S3Repository } from '../storage/s3.js';

/**
 * `erp4-backup lifecycle apply|show` (S16): the bucket's lifecycle rules for this env, derived
 * from S3_RETENTION (src/lifecycle.ts), for `s3` and the off-site copy `s3-copy`. `apply`
 * replaces only this env's own rules and keeps every other rule of the bucket; `show` prints
 * the rules in the bucket next to what the policy wants. Uses the pruning credentials
 * (S3_PRUNER_*, or the SDK chain), which need s3:Get/PutLifecycleConfiguration.
 */
interface S3Target {
  name: string;
  repository: S3Repository;
  bucketPrefix: string;
}

async function withS3Repositories<T>(config: Config, only: string | undefined, work: (targets: S3Target[]) => Promise<T>): Promise<T> {
  const retention = pruneSettings(config).retention;
  const repositories = createRepositories(config, 'pruner');
  try {
    const targets = [...repositories].flatMap(([name, repository]) =>
      repository instanceof S3Repository && retention[name]?.lifecycle && (only === undefined || only === name)
        ? [{ name, repository, bucketPrefix: repository.bucketKeyPrefix(`${config.env}/`) }]
        : [],
    );
    if (targets.length === 0) {
      throw new InvalidArgumentError(
        only === undefined ? 'no S3 repository is configured (S3_BUCKET)' : `--repo ${only}: not a configured S3 repository (s3, s3-copy)`,
      );
    }
    return await work(targets);
  } finally {
    await Promise.all([...repositories.values()].map((repository) => repository.close()));
  }
}

const wantedRules = (config: Config, target: S3Target) => lifecycleRules(pruneSettings(config).retention[target.name]!.policy, target.bucketPrefix);

export async function lifecycleApplyCommand(config: Config, options: { repo?: string }, out: NodeJS.WritableStream = process.stdout): Promise<void> {
  await withS3Repositories(config, options.repo, async (targets) => {
    for (const target of targets) {
      const wanted = wantedRules(config, target);
      const current = await target.repository.getLifecycleRules();
      await target.repository.putLifecycleRules(mergedRules(current, wanted, target.bucketPrefix));
      out.write(`${target.name}: applied ${wanted.length} lifecycle rule(s) for ${target.bucketPrefix} (other rules of the bucket kept: ${current.filter((rule) => !isOwnRule(rule, target.bucketPrefix)).length})\n`);
      for (const rule of wanted) out.write(`  ${rule.ID}: ${describeRule(rule)}\n`);
    }
  });
}

/** Prints current and wanted rules; returns true when every repository's rules are as the policy wants. */
export async function lifecycleShowCommand(config: Config, options: { repo?: string }, out: NodeJS.WritableStream = process.stdout): Promise<boolean> {
  return withS3Repositories(config, options.repo, async (targets) => {
    let inSync = true;
    for (const target of targets) {
      const wanted = wantedRules(config, target);
      const current = await target.repository.getLifecycleRules();
      const own = new Map(current.filter((rule) => isOwnRule(rule, target.bucketPrefix)).map((rule) => [rule.ID, rule]));
      out.write(`${target.name}: lifecycle rules for ${target.bucketPrefix} (policy ${pruneSettings(config).retention[target.name]!.description})\n`);
      for (const rule of wanted) {
        const present = own.get(rule.ID);
        const status = present === undefined ? 'MISSING' : describeRule(present) === describeRule(rule) ? 'ok' : `DIFFERS, bucket has: ${describeRule(present)}`;
        if (status !== 'ok') inSync = false;
        out.write(`  ${status === 'ok' ? 'ok     ' : 'WRONG  '} ${rule.ID}: wants ${describeRule(rule)}${status === 'ok' ? '' : ` (${status})`}\n`);
        own.delete(rule.ID);
      }
      for (const stale of own.values()) {
        inSync = false;
        out.write(`  STALE   ${stale.ID}: ${describeRule(stale)} (the policy no longer wants it)\n`);
      }
      for (const other of current.filter((rule) => !isOwnRule(rule, target.bucketPrefix))) {
        out.write(`  other   ${other.ID ?? '(no id)'}: ${describeRule(other)} (not managed by erp4-backup)\n`);
      }
      out.write(`${target.name}: ${inSync ? 'in sync with the policy' : 'NOT in sync: run `erp4-backup lifecycle apply`'}\n`);
    }
    return inSync;
  });
}

/** The `lifecycle` command group of the CLI. */
export function addLifecycleCommands(program: Command): void {
  const lifecycle = program.command('lifecycle').description("the S3 bucket's lifecycle rules, derived from S3_RETENTION");
  lifecycle
    .command('apply')
    .description("write this env's lifecycle rules into the bucket (other rules are kept)")
    .option('--repo <name>', 's3 or s3-copy (default: both, when configured)')
    .action(async (options: { repo?: string }) => lifecycleApplyCommand(loadConfig(process.env, { database: false }), options));
  lifecycle
    .command('show')
    .description("print the bucket's rules next to what the policy wants; exit 1 when they differ")
    .option('--repo <name>', 's3 or s3-copy (default: both, when configured)')
    .action(async (options: { repo?: string }) => {
      if (!(await lifecycleShowCommand(loadConfig(process.env, { database: false }), options))) process.exitCode = ExitCode.checkFailed;
    });
}

import { InvalidArgumentError, Option, type Command } from 'commander';
import { readCatalog } from '../catalog.js';
import { loadConfig, type Config } from '../config.js';
import { ExitCode } from './exit-codes.js';
import { checkBackupKeys, type BackupKeyCheck } from '../crypto/key-availability.js';
import { privateKeyIds } from '../crypto/openpgp.js';
import { openRepository } from '../repositories.js';
import type { Repository } from '../storage/repository.js';
import { formatTable } from './format.js';

/** What `erp4-backup keys` found in one repository: every backup with the state of its keys. */
export interface KeysReport {
  repository: string;
  /** `<fingerprint> (<user id>)` of each private key of GPG_PRIVATE_KEY_FILE. */
  keys: string[];
  keyIds: string[];
  backups: (BackupKeyCheck & { state: 'ok' | 'missing' | 'unrecorded' | 'unencrypted' })[];
}

/**
 * Which backups of `repository` the private keys of GPG_PRIVATE_KEY_FILE decrypt, from the
 * manifests (the keys need not be unlocked). After a key rotation: the backups listed as
 * `missing` cannot be restored until their key is configured again.
 */
export async function keysReport(config: Config, repository: Repository): Promise<KeysReport> {
  const configured = await privateKeyIds(config.gpg?.decryption?.keyFiles.map((keyFile) => keyFile.file) ?? []);
  const catalog = await readCatalog(repository, config.env);
  const backups = catalog.backups.map((manifest) => {
    const check = checkBackupKeys(manifest, configured.keyIds);
    const state = check.missing.length > 0 ? 'missing' : check.unrecorded.length > 0 ? 'unrecorded' : check.encrypted > 0 ? 'ok' : 'unencrypted';
    return { ...check, state } as const;
  });
  return { repository: repository.name, keys: configured.keys, keyIds: configured.keyIds, backups };
}

/** Prints the report; false when a backup's key is not available. */
export async function keysCommand(config: Config, repository: Repository, options: { json: boolean }, out: NodeJS.WritableStream = process.stdout): Promise<boolean> {
  const report = await keysReport(config, repository);
  const ok = report.backups.every((backup) => backup.state !== 'missing');
  if (options.json) {
    out.write(`${JSON.stringify(report, null, 2)}\n`);
    return ok;
  }
  out.write(`GPG_PRIVATE_KEY_FILE: ${report.keys.length === 0 ? 'no private key configured' : report.keys.join('; ')}\n`);
  const rows = report.backups.map((backup) => [
    backup.backupId,
    backup.state === 'missing' ? 'KEY MISSING' : backup.state === 'unrecorded' ? 'not recorded (checked at restore)' : backup.state,
    backup.missing.map((m) => `${m.artifact}: key id ${m.keyIds.join(', ')} (primary ${[...new Set(m.primaryFingerprints)].join(', ')})`).join('; '),
  ]);
  out.write(`${formatTable(['ID', 'KEY', 'NEEDS'], rows)}\n`);
  const missing = report.backups.filter((backup) => backup.state === 'missing').length;
  out.write(`${report.repository}: ${missing} backup(s) whose key is not available\n`);
  return ok;
}

export function addKeysCommand(program: Command): void {
  program
    .command('keys')
    .description('list the backups whose OpenPGP key is not among GPG_PRIVATE_KEY_FILE (key rotation); exits 1 when any')
    .addOption(new Option('--repo <name>', 'repository to read: local, s3, s3-copy or sftp').default('local'))
    .option('--json', 'print the report as JSON', false)
    .action(async (options: { repo: string; json: boolean }) => {
      const config = loadConfig(process.env, { database: false });
      const repository = openRepository(config, 'reader', options.repo);
      if (!repository) throw new InvalidArgumentError(`--repo ${options.repo}: not configured`);
      try {
        if (!(await keysCommand(config, repository, options))) process.exitCode = ExitCode.checkFailed;
      } finally {
        await repository.close();
      }
    });
}

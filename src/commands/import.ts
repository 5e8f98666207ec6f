import { InvalidArgumentError, type Command } from 'commander';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { loadConfig, type Config } from '../config.js';
import { encryptStream, loadRecipientKeys } from '../crypto/openpgp.js';
import { InputError } from '../errors.js';
import { importDump, type ImportResult } from '../import-dump.js';
import { resolvePgTool } from '../pg/tools.js';
import { openRepository } from '../repositories.js';
import { formatBytes } from './format.js';

/**
 * `erp4-backup import`: BACKUP_FILE (and BACKUP_GLOBALS_FILE, BACKUP_ASSETS_FILE) into the local
 * repository, as a `manual` backup marked imported (src/import-dump.ts). Runs in this process:
 * the files are on this host's disk. `copy` then takes it to the other repositories.
 */
export async function importCommand(
  config: Config,
  options: { label?: string; generatedAt?: Date },
  out: NodeJS.WritableStream = process.stdout,
): Promise<ImportResult> {
  const dumpFile = config.local.backupFile;
  if (dumpFile === undefined) {
    throw new InputError('BACKUP_FILE: not set; import needs the pg_dump -Fc file to bring in (a path inside BACKUP_DIR)');
  }
  const recipient = config.gpg?.encryption;
  const keys = recipient ? await loadRecipientKeys(recipient.publicKeyFile, recipient.recipient) : undefined;
  const writer = openRepository(config, 'writer', 'local')!;
  const reader = openRepository(config, 'reader', 'local')!;
  try {
    const result = await importDump({
      layout: { env: config.env, prefix: config.local.prefix },
      timeZone: config.timeZone,
      dumpFile,
      globalsFile: config.local.globalsFile,
      assetsFile: config.local.assetsFile,
      writer,
      reader,
      pgRestore: await resolvePgTool('pg_restore', { binDir: config.db.pgBinDir }),
      stagingRoot: join(config.local.backupDir, '.staging'),
      encrypt: keys ? (plaintext: Readable) => encryptStream(plaintext, keys) : undefined,
      label: options.label,
      generatedAt: options.generatedAt,
    });
    const { manifest } = result;
    const size = Object.values(manifest.artifacts).reduce((sum, artifact) => sum + (artifact?.size ?? 0), 0);
    out.write(
      result.written
        ? `imported ${dumpFile} as backup ${manifest.id} into ${writer.name} (${formatBytes(size)}, artifacts: ${Object.keys(manifest.artifacts).join(', ')})\n`
        : `${dumpFile} was imported before as backup ${manifest.id}: nothing changed\n`,
    );
    out.write(
      `not verified against its source: the dump carries no fingerprint; a drill checks that it restores and records the row counts\n` +
        `next: erp4-backup drill --backup ${manifest.id} --repo local; erp4-backup copy --from local --to <repository>\n`,
    );
    return result;
  } finally {
    await Promise.all([writer.close(), reader.close()]);
  }
}

/** The `import` command of the CLI. */
export function addImportCommand(program: Command): void {
  program
    .command('import')
    .description('bring a pg_dump -Fc file made by the old scripts (BACKUP_FILE, with BACKUP_GLOBALS_FILE and BACKUP_ASSETS_FILE) into the local repository')
    .option('--label <text>', 'why it is imported (default: "imported <file name>")')
    .option('--generated-at <time>', "when the dump was taken, ISO 8601 (default: the archive's own creation time, read in TIME_ZONE)", (value: string) => {
      const time = new Date(value);
      if (!/^\d{4}-\d{2}-\d{2}T/.test(value) || Number.isNaN(time.getTime())) throw new InvalidArgumentError('expected an ISO 8601 time such as 2026-11-26T17:00:00Z');
      return time;
    })
    .action(async (options: { label?: string; generatedAt?: Date }) => {
      await importCommand(loadConfig(), options);
    });
}

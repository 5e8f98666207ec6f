import { ConfigError, loadConfig, type Config } from '../config.js';
import { repositoryNames } from '../repositories.js';
import { probeBackupAge, readCatalogs } from './backups.js';
import { probeDatabase, probeDrillDatabase, probePgTools } from './database.js';
import { probeBackupKeys, probeDecryptionKeys, probeEncryptionKey } from './keys.js';
import { checkReport, critical, ok, unknown, type CheckReport, type ProbeResult } from './probe.js';
import { probeRepositories } from './repositories.js';
import { probeTemporal, TEMPORAL_PROBES } from './temporal.js';

/**
 * Runs every probe of `erp4-backup check` against `env` and reports them in a fixed order:
 * configuration, database and tools, repositories, keys, Temporal, backup age, PDF files.
 * Independent groups run at the same time; nothing here throws.
 */
export async function runChecks(env: NodeJS.ProcessEnv, now: () => Date = () => new Date()): Promise<CheckReport> {
  let config: Config;
  try {
    config = loadConfig(env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return checkReport([critical('config', error), ...PROBES_AFTER_CONFIG.map((name) => unknown(name, 'not run: the configuration is invalid'))]);
  }
  const [database, repositories, keys, temporal, catalogs] = await Promise.all([
    probeDatabase(config).then(async ({ result, login }) => [
      result,
      ...(await probePgTools(config, login?.server)),
      await probeDrillDatabase(config, login),
    ]),
    probeRepositories(config),
    probeEncryptionKey(config).then(async ({ result, ciphertext }) => [result, await probeDecryptionKeys(config, ciphertext)]),
    probeTemporal(config, now()),
    readCatalogs(config),
  ]);
  return checkReport([
    ok('config', `BACKUP_ENV ${config.env}; repositories ${repositoryNames(config).join(', ')}`),
    ...database,
    ...repositories,
    ...keys,
    await probeBackupKeys(config, catalogs),
    ...temporal,
    ...probeBackupAge(config, catalogs, now()),
    probePdfFiles(config),
  ]);
}

/** What an invalid configuration leaves unknown: the probes that need it, by subject. */
const PROBES_AFTER_CONFIG = ['database', 'pg tools', 'drill database', 'repositories', 'gpg', ...TEMPORAL_PROBES, 'backup age', 'pdf files'];

/** S2: with PDF_PROVIDER=none the product protects no PDF file at all. */
export function probePdfFiles(config: Config): ProbeResult {
  const name = 'pdf files';
  const assets = config.assets;
  if (assets.provider === 'local') return ok(name, `ASSET_DIR ${assets.dir} is archived with every backup`);
  if (assets.provider === 's3') return ok(name, 'PDF_PROVIDER=s3: the PDF files stay in the ERP\'s own S3 storage; the backups hold none');
  return {
    name,
    status: 'WARNING',
    detail: 'PDF_PROVIDER=none: no PDF/attachment file is protected by these backups (S2)',
    settings: ['PDF_PROVIDER', 'ASSET_DIR'],
    remedy: 'PDF_PROVIDER=local and ASSET_DIR=<the PDF directory>, if erp4 keeps its files on local disk',
  };
}

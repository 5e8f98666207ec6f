import type { Config } from '../config.js';
import { findBackup, verifyBackup } from '../catalog.js';
import type { Repository } from '../storage/repository.js';
import { formatBytes } from './format.js';
import { writeJson } from './json-output.js';

/**
 * `erp4-backup verify <id> [--json]`: re-reads every artifact and compares it with the manifest.
 * Returns true when all match. With --json stdout holds one document: the repository, the
 * backup id, `verified`, and each artifact's check.
 */
export async function verifyCommand(
  config: Config,
  repository: Repository,
  backupId: string,
  out: NodeJS.WritableStream = process.stdout,
  options: { json?: boolean } = {},
): Promise<boolean> {
  const manifest = await findBackup(repository, config.env, backupId);
  const checks = await verifyBackup(repository, manifest);
  const ok = checks.every((c) => c.ok);
  if (options.json) {
    writeJson(out, { repository: repository.name, backupId: manifest.id, verified: ok, checks, ...(manifest.imported ? { imported: manifest.imported } : {}) });
    return ok;
  }
  for (const check of checks) {
    if (check.ok) {
      out.write(`ok       ${check.artifact} ${check.key} ${formatBytes(check.expected.size)} sha256 ${check.expected.sha256}\n`);
    } else {
      const actual = check.actual ? `${check.actual.size} bytes sha256 ${check.actual.sha256}` : check.error;
      out.write(`MISMATCH ${check.artifact} ${check.key}: manifest says ${check.expected.size} bytes sha256 ${check.expected.sha256}, repository has ${actual}\n`);
    }
  }
  out.write(`${repository.name}: backup ${manifest.id} ${ok ? 'verified' : 'FAILED verification'}\n`);
  if (manifest.imported) out.write(`imported from ${manifest.imported.file}: matches its manifest, not verified against its source (no fingerprint)\n`);
  return ok;
}

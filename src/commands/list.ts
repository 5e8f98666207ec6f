import type { Config } from '../config.js';
import { readCatalog } from '../catalog.js';
import type { Repository } from '../storage/repository.js';
import { formatBytes, formatTable } from './format.js';

/** `erp4-backup list`: the catalog read from the repository's manifests (no Temporal needed). */
export async function listCommand(config: Config, repository: Repository, options: { json: boolean }, out: NodeJS.WritableStream = process.stdout): Promise<void> {
  const catalog = await readCatalog(repository, config.env);
  if (options.json) {
    out.write(`${JSON.stringify(catalog, null, 2)}\n`);
    return;
  }
  const rows = catalog.backups.map((b) => [
    b.id,
    b.kind,
    b.generatedAt,
    formatBytes(Object.values(b.artifacts).reduce((sum, a) => sum + (a?.size ?? 0), 0)),
    Object.values(b.artifacts).some((a) => a?.encryption === 'openpgp') ? 'openpgp' : 'none',
    b.pinned ? 'pinned' : '',
    b.schemaVersion,
    // An imported dump's fingerprint is empty: say so wherever the backup is shown.
    [b.label, b.imported ? '[imported: not verified against its source]' : undefined].filter(Boolean).join(' '),
  ]);
  // Each host has its own local repository (src/host.ts): say whose.
  const whose = repository.name === 'local' ? ` (the local repository of host ${config.host.id}: ${config.local.backupDir})` : '';
  out.write(`${repository.name}: ${catalog.backups.length} complete backup(s) for env ${config.env}${whose}\n`);
  out.write(`${formatTable(['ID', 'KIND', 'GENERATED_AT', 'SIZE', 'ENCRYPTION', 'PIN', 'SCHEMA', 'LABEL'], rows)}\n`);
  for (const bad of catalog.invalid) out.write(`INVALID manifest ${bad.key}: ${bad.error}\n`);
}

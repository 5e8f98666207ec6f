import { InputError } from '../src/errors.js';
import { manifestKey } from '../src/layout.js';
import type { BackupRuntime } from './runtime.js';

/**
 * Refuses a backup id that already names a complete backup (its manifest, written last,
 * exists) in any configured repository: a NightlyBackup started again with that id (by hand,
 * by `temporal workflow start`, or the Web UI's "start like this one") would overwrite the
 * artifacts that manifest describes. Reads with the read-only credentials: the writer role
 * (S15) may not even look at what it wrote.
 */
export async function refuseCompleteBackupId(runtime: BackupRuntime, backupId: string): Promise<void> {
  const key = manifestKey(runtime.layout, backupId);
  const holding: string[] = [];
  for (const name of runtime.repositories.keys()) {
    const reader = runtime.restore.openReader(name);
    if (!reader) throw new InputError(`repository ${JSON.stringify(name)} has no read-only credentials to check backup id ${backupId} with`);
    try {
      if (await reader.stat(key)) holding.push(name);
    } finally {
      await reader.close();
    }
  }
  if (holding.length > 0) {
    throw new InputError(
      `backupId ${backupId} is already a complete backup in ${holding.join(', ')} (manifest ${key}): a backup id is written once, never overwritten; start a new backup, which gets a new id`,
    );
  }
}

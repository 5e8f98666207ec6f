import { InputError } from '../errors.js';
import { isBackupId } from '../layout.js';
import type { FingerprintEntry, Manifest } from '../manifest.js';
import type { FingerprintExpectation } from './checks.js';

/** `--overlay latest-critical`: the newest `critical` or `weekly-full` backup; or a backup id. */
export const LATEST_CRITICAL = 'latest-critical';

type OverlayCandidate = Pick<Manifest, 'id' | 'kind' | 'generatedAt' | 'schemaVersion' | 'database'>;

/**
 * Chooses the backup laid over `base` and refuses, before anything is restored, every overlay
 * that cannot give the important tables a newer point in time than the daily: a name that is not
 * `latest-critical` or a backup id, a backup that is not critical/weekly-full, one in the older
 * format (the tables alone, no schema), one not newer than the daily, one of another schema
 * version. `backups` is the repository's catalog, oldest first.
 */
export function chooseOverlay(base: OverlayCandidate, selector: string, backups: readonly OverlayCandidate[]): OverlayCandidate {
  if (selector !== LATEST_CRITICAL && !isBackupId(selector)) {
    throw new InputError(`overlay ${JSON.stringify(selector)}: expected ${LATEST_CRITICAL} or a backup id like 20261126T230000Z-critical`);
  }
  if (base.database.dataTables) throw new InputError(`overlay: backup ${base.id} is itself a ${base.kind} backup; an overlay goes over a whole-database backup (daily, manual)`);
  const overlay =
    selector === LATEST_CRITICAL
      ? backups.filter((b) => b.kind === 'critical' || b.kind === 'weekly-full').at(-1)
      : backups.find((b) => b.id === selector);
  if (!overlay) {
    throw new InputError(selector === LATEST_CRITICAL ? 'overlay: there is no complete critical or weekly-full backup in the repository' : `overlay: backup ${selector} not found (no valid manifest)`);
  }
  if (overlay.kind !== 'critical' && overlay.kind !== 'weekly-full') {
    throw new InputError(`overlay: backup ${overlay.id} is a ${overlay.kind} backup; an overlay takes a critical or weekly-full backup`);
  }
  if (!overlay.database.dataTables) {
    throw new InputError(`overlay: backup ${overlay.id} holds the important tables alone (the older format, without the schema); take a new ${overlay.kind} backup to overlay`);
  }
  if (Date.parse(overlay.generatedAt) <= Date.parse(base.generatedAt)) {
    throw new InputError(
      `overlay: the ${overlay.kind} backup ${overlay.id} (generated at ${overlay.generatedAt}) is not newer than ${base.id} (generated at ${base.generatedAt}): laying it over would take the important tables back in time; restore ${base.id} alone`,
    );
  }
  if (overlay.schemaVersion !== base.schemaVersion) {
    throw new InputError(`overlay: ${overlay.id} has schema version ${overlay.schemaVersion}, ${base.id} has ${base.schemaVersion}: rows of one schema cannot be laid over the other`);
  }
  return overlay;
}

/**
 * What the fingerprint check expects after an overlay: the important tables as in the critical
 * backup, every other table as in the daily. The daily's entries of the tables the overlay
 * replaced are dropped (and a partitioned important table's partitions count through its parent).
 */
export function overlayExpectation(
  daily: Pick<Manifest, 'fingerprint' | 'fingerprintScope'>,
  critical: Pick<Manifest, 'fingerprint' | 'database'>,
): FingerprintExpectation {
  const replaced = new Set([...(critical.database.dataTables ?? []), ...(critical.database.tables ?? []), ...critical.fingerprint.map((e) => e.table)]);
  const fingerprint: FingerprintEntry[] = [...daily.fingerprint.filter((entry) => !replaced.has(entry.table)), ...critical.fingerprint];
  return { fingerprint, fingerprintScope: daily.fingerprintScope, coveredTables: critical.database.dataTables ?? [] };
}

/**
 * The prune plan of one repository: what Prune will delete there and why, computed from what
 * the repository holds. Pure (no I/O, `now` passed in): `Prune` with `dryRun: true` returns
 * exactly this, and the real run acts on exactly this, so a dry run shows what the next run
 * deletes.
 *
 * On top of the retention policy (src/retention.ts), a backup the policy would delete is kept
 * when
 * - a running RestoreDrill uses it (`in use by RestoreDrill <workflow id>`), or
 * - this is the primary S3 repository of an off-site copy and the backup is newer than the
 *   newest backup of its kind the copy holds (`not yet in s3-copy`, S8): while the copy lags,
 *   the primary keeps what the copy has not got yet.
 *
 * Deletion order (done by activities/prune.ts): the manifest FIRST, then the artifacts. An
 * interrupted prune leaves artifacts without a manifest, which readers ignore and the next run
 * reaps as abandoned; it never leaves a complete-looking backup missing files.
 *
 * Abandoned objects: artifacts whose backup has no manifest (valid or not) and whose upload
 * ended more than PRUNE_ABANDONED_AFTER ago (by the later of the backup id's time and the
 * object's own modification time), unless a running NightlyBackup is still making that backup;
 * and unfinished S3 multipart uploads started more than PRUNE_ABANDONED_AFTER ago.
 *
 * In S3 repositories every kept backup whose lifecycle tier must change (pinned, or about to be
 * reached by its tier's expiry rule: src/lifecycle.ts) is listed for retagging.
 */
import { backupObjectOf } from './backup-objects.js';
import { backupIdTime, manifestKey, type BackupKind, type LayoutOptions } from './layout.js';
import { desiredTier, type TaggedObject, type Tier } from './lifecycle.js';
import type { Manifest } from './manifest.js';
import type { RepositoryRetention } from './prune-policy.js';
import { planRetention } from './retention.js';

/** What a repository holds under `<env>/`, as activities/prune.ts reads it. */
export interface RepositoryInventory {
  repository: string;
  /** Complete backups: their valid manifests (src/catalog.ts). */
  backups: Manifest[];
  /** Manifests that failed validation: never trusted, never deleted, and their artifacts are not reaped. */
  invalidManifests: Array<{ key: string; error: string }>;
  /** Every object under `<env>/`. */
  objects: Array<{ key: string; modifiedAt: string }>;
  /** S3 only: multipart uploads under `<env>/` never completed nor aborted. */
  incompleteUploads: Array<{ key: string; uploadId: string; initiatedAt?: string }>;
}

/** What running workflows use, read from Temporal's visibility (src/temporal/backups-in-use.ts). */
export interface BackupsInUse {
  /** Backup id -> workflow ids of the running RestoreDrills restoring it. */
  restoreDrills: Record<string, string[]>;
  /** Ids of backups a running NightlyBackup is still making. */
  inProgress: string[];
}

export interface PruneDecision {
  id: string;
  kind: BackupKind;
  generatedAt: string;
  pinned: boolean;
  label?: string;
  action: 'keep' | 'delete';
  /** Why it is kept (`daily 3/14`, `pinned`, `in use by RestoreDrill ...`); empty when deleted. */
  reasons: string[];
  /** Deleted first. */
  manifestKey: string;
  /** Deleted after the manifest: the manifest's artifacts and any other artifact of this backup id. */
  artifactKeys: string[];
}

export interface AbandonedObject {
  key: string;
  backupId: string;
  reason: string;
}

export interface AbandonedUpload {
  key: string;
  uploadId: string;
  initiatedAt: string;
}

export interface Retag {
  backupId: string;
  tier: Tier;
  objects: Array<{ key: string; object: TaggedObject }>;
}

export interface RepositoryPrunePlan {
  repository: string;
  /** For `local`: the host (WORKER_HOST_ID) whose local repository this is; each host has its own. */
  host?: string;
  /** The policy applied, in words. */
  policy: string;
  /** One decision per complete backup, newest first. */
  backups: PruneDecision[];
  abandoned: AbandonedObject[];
  abandonedUploads: AbandonedUpload[];
  retag: Retag[];
  warnings: string[];
}

export interface RepositoryPlanInput {
  layout: LayoutOptions;
  now: Date;
  inventory: RepositoryInventory;
  retention: RepositoryRetention;
  abandonedAfterMs: number;
  inUse: BackupsInUse;
  /** For the primary of an off-site copy: the copy's name and complete backups. */
  offsiteCopy?: { repository: string; backups: Array<Pick<Manifest, 'id' | 'kind' | 'generatedAt'>> };
}

const HOUR_MS = 3_600_000;

export function planRepositoryPrune(input: RepositoryPlanInput): RepositoryPrunePlan {
  const { layout, now, inventory, retention, inUse } = input;
  const nowMs = now.getTime();
  const warnings: string[] = [];

  const manifestKeys = new Map<string, string>();
  const artifactsOf = new Map<string, Array<{ key: string; modifiedAt: string }>>();
  for (const object of inventory.objects) {
    const found = backupObjectOf(object.key);
    if (found?.env !== layout.env) continue;
    if (found.object === 'manifest') manifestKeys.set(found.backupId, object.key);
    else artifactsOf.set(found.backupId, [...(artifactsOf.get(found.backupId) ?? []), object]);
  }
  for (const invalid of inventory.invalidManifests) {
    warnings.push(`manifest ${invalid.key} is invalid, so its backup is neither trusted nor pruned: ${invalid.error}`);
  }

  const retentionPlan = planRetention(inventory.backups, now, retention.policy);
  warnings.push(...retentionPlan.warnings);

  const newestInCopy = new Map<BackupKind, number>();
  for (const backup of input.offsiteCopy?.backups ?? []) {
    newestInCopy.set(backup.kind, Math.max(newestInCopy.get(backup.kind) ?? 0, Date.parse(backup.generatedAt)));
  }
  let heldForCopy = 0;

  const backups = retentionPlan.decisions.map(({ backup, action, reasons: policyReasons }): PruneDecision => {
    const reasons = [...policyReasons];
    if (action === 'delete') {
      for (const workflowId of inUse.restoreDrills[backup.id] ?? []) reasons.push(`in use by RestoreDrill ${workflowId}`);
      const copy = input.offsiteCopy;
      if (copy && Date.parse(backup.generatedAt) > (newestInCopy.get(backup.kind) ?? -Infinity)) {
        reasons.push(`not yet in ${copy.repository}`);
        heldForCopy += 1;
      }
    }
    return {
      id: backup.id,
      kind: backup.kind,
      generatedAt: backup.generatedAt,
      pinned: backup.pinned,
      ...(backup.label !== undefined ? { label: backup.label } : {}),
      action: reasons.length > 0 ? 'keep' : 'delete',
      reasons,
      manifestKey: manifestKeys.get(backup.id) ?? manifestKey(layout, backup.id),
      artifactKeys: artifactKeysOf(backup, artifactsOf.get(backup.id) ?? [], layout.env, warnings),
    };
  });
  if (heldForCopy > 0) {
    warnings.push(`${heldForCopy} backup(s) the policy would delete are kept: ${input.offsiteCopy?.repository} does not hold them or anything newer of their kind yet`);
  }

  const completeOrInvalid = new Set([...manifestKeys.keys(), ...inventory.backups.map((backup) => backup.id)]);
  const inProgress = new Set([...inUse.inProgress, ...Object.keys(inUse.restoreDrills)]);
  const abandoned: AbandonedObject[] = [];
  for (const [backupId, objects] of artifactsOf) {
    if (completeOrInvalid.has(backupId) || inProgress.has(backupId)) continue;
    for (const object of objects) {
      const endedAt = Math.max(backupIdTime(backupId).getTime(), Date.parse(object.modifiedAt));
      const ageMs = nowMs - endedAt;
      if (ageMs >= input.abandonedAfterMs) {
        abandoned.push({ key: object.key, backupId, reason: `no manifest, last written ${Math.floor(ageMs / HOUR_MS)}h ago` });
      }
    }
  }
  abandoned.sort((a, b) => a.key.localeCompare(b.key));

  const abandonedUploads: AbandonedUpload[] = [];
  for (const upload of inventory.incompleteUploads) {
    if (upload.initiatedAt === undefined) {
      warnings.push(`multipart upload ${upload.uploadId} of ${upload.key} reports no start time: left alone`);
    } else if (nowMs - Date.parse(upload.initiatedAt) >= input.abandonedAfterMs) {
      abandonedUploads.push({ key: upload.key, uploadId: upload.uploadId, initiatedAt: upload.initiatedAt });
    }
  }

  const retag: Retag[] = [];
  if (retention.lifecycle) {
    for (const decision of backups) {
      if (decision.action !== 'keep') continue;
      const tier = desiredTier(decision, now, retention.policy);
      if (tier === decision.kind) continue;
      retag.push({
        backupId: decision.id,
        tier,
        objects: [
          { key: decision.manifestKey, object: 'manifest' },
          ...decision.artifactKeys.map((key) => ({ key, object: 'artifact' as const })),
        ],
      });
    }
  }

  return { repository: inventory.repository, policy: retention.description, backups, abandoned, abandonedUploads, retag, warnings };
}

/**
 * The artifacts to delete with a backup: those its manifest names, and any other stored artifact
 * of the same backup id (e.g. one left by a failed earlier attempt). A manifest key outside the
 * backup's own objects (a hand-edited manifest) is never deleted: it may be another backup's.
 */
function artifactKeysOf(backup: Manifest, stored: ReadonlyArray<{ key: string }>, env: string, warnings: string[]): string[] {
  const keys = new Set(stored.map((object) => object.key));
  for (const artifact of Object.values(backup.artifacts)) {
    if (artifact === undefined) continue;
    const found = backupObjectOf(artifact.key);
    if (found?.env === env && found.backupId === backup.id && found.object === 'artifact') keys.add(artifact.key);
    else warnings.push(`manifest of ${backup.id} names artifact ${artifact.key}, which is not one of its own objects: never deleted with it`);
  }
  return [...keys].sort();
}

import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { readCatalog } from '../src/catalog.js';
import { InputError } from '../src/errors.js';
import { manifestKey } from '../src/layout.js';
import { tierTags } from '../src/lifecycle.js';
import { parseManifest, type Manifest } from '../src/manifest.js';
import { planRepositoryPrune, type RepositoryInventory, type RepositoryPrunePlan, type Retag } from '../src/prune-plan.js';
import { ObjectNotFoundError, type Repository } from '../src/storage/repository.js';
import { S3Repository } from '../src/storage/s3.js';
import { listBackupsInUse } from '../src/temporal/backups-in-use.js';
import type { RepositoryPruneResult } from '../workflows/messages.js';
import { withHeartbeat } from './heartbeat.js';
import type { BackupRuntime } from './runtime.js';

/** Each host's own repository (BACKUP_DIR): planned and pruned on that host. */
const LOCAL = 'local';

/** Errors of the retention module that retrying cannot fix: the policy or the catalog must change first. */
const REFUSALS = new Set(['RetentionRefusedError', 'RetentionInputError']);

/**
 * The activities of Prune. `planPrune` only reads; `applyPrune` deletes exactly what a plan
 * lists, manifest first, and is idempotent: deleting a missing key succeeds, so a retry after a
 * crash resumes where the last attempt stopped. Both ask Temporal (the worker's own client) which
 * backups running RestoreDrills use, `applyPrune` again right before deleting.
 */
export function createPruneActivities(runtime: BackupRuntime) {
  const { layout, prune } = runtime;

  async function withRepository<T>(name: string, work: (repository: Repository) => Promise<T>): Promise<T> {
    const repository = prune.openRepository(name);
    if (!repository) {
      throw new InputError(`repositories: no repository named ${JSON.stringify(name)} is configured (have: ${prune.repositoryNames.join(', ')})`);
    }
    try {
      return await work(repository);
    } finally {
      await repository.close();
    }
  }

  async function readInventory(repository: Repository): Promise<RepositoryInventory> {
    const [catalog, objects, incompleteUploads] = await Promise.all([
      readCatalog(repository, layout.env),
      repository.list(`${layout.env}/`),
      repository instanceof S3Repository ? repository.listIncompleteUploads(`${layout.env}/`) : Promise.resolve([]),
    ]);
    return {
      repository: repository.name,
      backups: catalog.backups,
      invalidManifests: catalog.invalid,
      objects: objects.map((object) => ({ key: object.key, modifiedAt: object.modifiedAt.toISOString() })),
      incompleteUploads: incompleteUploads.map((upload) => ({ ...upload, initiatedAt: upload.initiatedAt?.toISOString() })),
    };
  }

  return {
    /**
     * The plan of every selected repository (default: all), as `Prune` acts on it. `scope`
     * `remote` leaves out `local`, `local` plans only `local` (if selected): each host's local
     * repository is planned on that host (workflows/prune.ts); its plan names the host.
     */
    async planPrune(input: { now: string; repositories?: string[]; scope?: 'remote' | 'local' }): Promise<{ env: string; plans: RepositoryPrunePlan[] }> {
      const now = new Date(input.now);
      if (Number.isNaN(now.getTime())) throw new InputError(`now: ${JSON.stringify(input.now)} is not an ISO 8601 time`);
      const names = input.repositories ?? [...prune.repositoryNames];
      const unknown = names.filter((name) => !prune.repositoryNames.includes(name));
      if (names.length === 0 || unknown.length > 0) {
        throw new InputError(`repositories: ${JSON.stringify(unknown.length > 0 ? unknown : names)} not configured (have: ${prune.repositoryNames.join(', ')})`);
      }
      return withHeartbeat(
        'prune:plan',
        (async () => {
          const inUse = await listBackupsInUse(Context.current().client, layout.env);
          const inventories = new Map<string, Promise<RepositoryInventory>>();
          const inventoryOf = (name: string) => {
            let inventory = inventories.get(name);
            if (!inventory) {
              inventory = withRepository(name, readInventory);
              inventories.set(name, inventory);
            }
            return inventory;
          };
          const plans: RepositoryPrunePlan[] = [];
          const inScope = names.filter((name) => input.scope === undefined || (input.scope === 'local') === (name === LOCAL));
          for (const name of inScope) {
            const copy = prune.offsiteCopy?.primary === name ? prune.offsiteCopy.copy : undefined;
            const [inventory, copyInventory] = await Promise.all([inventoryOf(name), copy ? inventoryOf(copy) : undefined]);
            try {
              plans.push(
                planRepositoryPrune({
                  layout,
                  now,
                  inventory,
                  retention: prune.retention[name]!,
                  abandonedAfterMs: prune.abandonedAfterMs,
                  inUse,
                  ...(copy && copyInventory ? { offsiteCopy: { repository: copy, backups: copyInventory.backups } } : {}),
                }),
              );
              if (name === LOCAL) plans[plans.length - 1]!.host = runtime.host.id;
            } catch (error) {
              if (!(error instanceof Error && REFUSALS.has(error.name))) throw error;
              throw ApplicationFailure.create({ type: error.name, message: `prune of repository ${name}: ${error.message}`, nonRetryable: true });
            }
          }
          return { env: layout.env, plans };
        })(),
      );
    },

    /** Deletes what `plan` lists in its repository: each backup's manifest first, then its artifacts. */
    async applyPrune(input: { plan: RepositoryPrunePlan }): Promise<RepositoryPruneResult> {
      const { plan } = input;
      if (plan.host !== undefined && plan.host !== runtime.host.id) {
        throw new InputError(`the plan of the local repository of host ${plan.host} reached host ${runtime.host.id}: each host prunes only its own`);
      }
      const context = Context.current();
      return withHeartbeat(
        `prune:${plan.repository}`,
        withRepository(plan.repository, async (repository) => {
          const result: RepositoryPruneResult = {
            repository: plan.repository,
            ...(plan.host !== undefined ? { host: plan.host } : {}),
            deletedBackups: [],
            deletedKeys: [],
            skipped: [],
            reapedKeys: [],
            abortedUploads: [],
            retagged: [],
          };
          // Again now: a drill may have started since the plan was made.
          const inUse = await listBackupsInUse(context.client, layout.env);

          for (const decision of plan.backups.filter((backup) => backup.action === 'delete')) {
            context.cancellationSignal.throwIfAborted();
            const drills = inUse.restoreDrills[decision.id];
            if (drills) {
              result.skipped.push({ backupId: decision.id, reason: `in use by RestoreDrill ${drills.join(', ')}` });
              continue;
            }
            const locked = await lockedUntil(repository, [decision.manifestKey, ...decision.artifactKeys]);
            if (locked) {
              result.skipped.push({ backupId: decision.id, reason: lockedReason(locked) });
              continue;
            }
            const current = await readManifest(repository, decision.manifestKey);
            if (current !== 'absent' && (current === 'invalid' || current.pinned)) {
              result.skipped.push({ backupId: decision.id, reason: current === 'invalid' ? 'manifest no longer valid' : 'pinned since the plan was made' });
              continue;
            }
            // The manifest FIRST: from here on the backup does not exist for readers, so an
            // interruption leaves artifacts to reap, never a complete-looking backup missing files.
            await repository.delete(decision.manifestKey);
            for (const key of decision.artifactKeys) await repository.delete(key);
            result.deletedBackups.push(decision.id);
            result.deletedKeys.push(decision.manifestKey, ...decision.artifactKeys);
          }

          for (const object of plan.abandoned) {
            context.cancellationSignal.throwIfAborted();
            const stillMade = inUse.inProgress.includes(object.backupId) || inUse.restoreDrills[object.backupId] !== undefined;
            if (stillMade || (await repository.stat(manifestKey(layout, object.backupId)))) {
              result.skipped.push({ backupId: object.backupId, reason: `${object.key}: its backup is in use or complete now` });
              continue;
            }
            const locked = await lockedUntil(repository, [object.key]);
            if (locked) {
              result.skipped.push({ backupId: object.backupId, reason: `${object.key}: ${lockedReason(locked)}` });
              continue;
            }
            await repository.delete(object.key);
            result.reapedKeys.push(object.key);
          }

          if (plan.abandonedUploads.length > 0 || plan.retag.length > 0) {
            if (!(repository instanceof S3Repository)) throw new Error(`${plan.repository} is not an S3 repository: it has no multipart uploads or tags`);
            for (const upload of plan.abandonedUploads) {
              await repository.abortIncompleteUpload(upload);
              result.abortedUploads.push({ key: upload.key, uploadId: upload.uploadId });
            }
            for (const retag of plan.retag) {
              if (await retagBackup(repository, retag)) result.retagged.push({ backupId: retag.backupId, tier: retag.tier });
            }
          }
          return result;
        }),
      );
    },
  };
}

/**
 * The latest end of the Object Lock of `keys` when it is still in the future (an immutable S3
 * repository, S3_OBJECT_LOCK_MODE); undefined when they may be deleted. Prune never tries to
 * delete a locked object early: S3 would refuse, and a half-deleted backup would remain.
 */
async function lockedUntil(repository: Repository, keys: readonly string[]): Promise<Date | undefined> {
  if (!(repository instanceof S3Repository) || !repository.immutable) return undefined;
  let latest: Date | undefined;
  for (const key of keys) {
    const until = await repository.lockedUntil(key);
    if (until && until.getTime() > Date.now() && (!latest || until > latest)) latest = until;
  }
  return latest;
}

function lockedReason(until: Date): string {
  return `locked until ${until.toISOString()} (S3 Object Lock): not deleted before the lock ends`;
}

async function readManifest(repository: Repository, key: string): Promise<Manifest | 'absent' | 'invalid'> {
  let bytes: Buffer;
  try {
    bytes = await repository.getBytes(key);
  } catch (error) {
    if (error instanceof ObjectNotFoundError) return 'absent';
    throw error;
  }
  try {
    return parseManifest(bytes, `${repository.name}:${key}`);
  } catch {
    return 'invalid';
  }
}

/** Sets the lifecycle tier of each object whose tier differs (other tags stay); true when any changed. */
async function retagBackup(repository: S3Repository, { objects, tier }: Retag): Promise<boolean> {
  let changed = false;
  for (const { key, object } of objects) {
    let tags: Record<string, string>;
    try {
      tags = await repository.getObjectTags(key);
    } catch (error) {
      if (error instanceof ObjectNotFoundError) continue;
      throw error;
    }
    const wanted = { ...tags, ...tierTags(tier, object) };
    if (Object.entries(wanted).every(([name, value]) => tags[name] === value)) continue;
    await repository.putObjectTags(key, wanted);
    changed = true;
  }
  return changed;
}

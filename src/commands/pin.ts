import { InvalidArgumentError, type Command } from 'commander';
import { backupObjectOf } from '../backup-objects.js';
import { loadConfig, type Config } from '../config.js';
import { ExitCode } from './exit-codes.js';
import { InputError } from '../errors.js';
import { isBackupId, manifestDirectory } from '../layout.js';
import { desiredTier, tierTags, type Tier } from '../lifecycle.js';
import { parseManifest, serializeManifest, type Manifest } from '../manifest.js';
import { pruneSettings } from '../prune-policy.js';
import { createRepositories } from '../repositories.js';
import type { Repository } from '../storage/repository.js';
import { S3Repository } from '../storage/s3.js';

/**
 * `erp4-backup pin <id>` / `unpin <id>`: sets the manifest's `pinned` in every repository that
 * holds the backup. The manifest is rewritten whole (atomically: a temporary name and a rename,
 * or one S3 PutObject); in S3 every object of the backup is also moved to the `pinned` tier,
 * which no lifecycle rule expires (src/lifecycle.ts). Pinning protects first: the artifacts'
 * tags, then the manifest. Unpinning releases the manifest first and gives the objects back
 * the tier their age calls for. Reads with the read-only role (S3_READER_*) and writes with the
 * write-only role (S3_WRITER_*: PutObject, PutObjectTagging), as deploy/iam allows them.
 */
export async function pinCommand(config: Config, backupId: string, pinned: boolean, out: NodeJS.WritableStream = process.stdout): Promise<boolean> {
  const retention = pruneSettings(config).retention;
  const readers = createRepositories(config, 'reader');
  const writers = createRepositories(config, 'writer');
  let held = 0;
  let ok = true;
  try {
    for (const [name, reader] of readers) {
      try {
        const found = await findManifest(reader, config.env, backupId);
        if (!found) {
          out.write(`${name}: does not hold ${backupId}\n`);
          continue;
        }
        held += 1;
        const policy = retention[name]?.policy;
        const tier: Tier = pinned ? 'pinned' : policy ? desiredTier({ ...found.manifest, pinned }, new Date(), policy) : found.manifest.kind;
        const tagged = await setPinned(writers.get(name)!, found, pinned, tier);
        out.write(`${name}: ${pinned ? 'pinned' : 'unpinned'} ${backupId}${tagged > 0 ? ` (${tagged} objects tagged tier=${tier})` : ''}\n`);
      } catch (error) {
        ok = false;
        out.write(`${name}: FAILED to ${pinned ? 'pin' : 'unpin'} ${backupId}: ${(error as Error).message}\n`);
      }
    }
  } finally {
    await Promise.all([...readers.values(), ...writers.values()].map((repository) => repository.close()));
  }
  if (held === 0 && ok) throw new InputError(`backup ${JSON.stringify(backupId)} is in no configured repository for env ${config.env} (no manifest)`);
  return ok;
}

async function findManifest(repository: Repository, env: string, backupId: string): Promise<{ key: string; manifest: Manifest } | undefined> {
  const key = (await repository.list(manifestDirectory({ env }))).map((object) => object.key).find((candidate) => {
    const found = backupObjectOf(candidate);
    return found?.object === 'manifest' && found.backupId === backupId && found.env === env;
  });
  return key === undefined ? undefined : { key, manifest: parseManifest(await repository.getBytes(key), `${repository.name}:${key}`) };
}

/** Rewrites the manifest with `pinned` and, in S3, tags the backup's objects with `tier`; returns how many objects were tagged. */
async function setPinned(repository: Repository, { key, manifest }: { key: string; manifest: Manifest }, pinned: boolean, tier: Tier): Promise<number> {
  const s3 = repository instanceof S3Repository ? repository : undefined;
  const artifactKeys = Object.values(manifest.artifacts).flatMap((artifact) => {
    const found = artifact && backupObjectOf(artifact.key);
    return found?.backupId === manifest.id && found.object === 'artifact' ? [artifact.key] : [];
  });
  const tagArtifacts = async () => {
    for (const artifactKey of artifactKeys) await s3?.putObjectTags(artifactKey, tierTags(tier, 'artifact'));
  };
  if (pinned) await tagArtifacts();
  const manifestTags = tierTags(tier, 'manifest');
  // On purpose: in an immutable (Object Lock) bucket the manifest gets a new version; the old one stays locked.
  await repository.putBytes(key, serializeManifest({ ...manifest, pinned }), {
    metadata: { env: manifest.env, generated_at: manifest.generatedAt, schema_version: manifest.schemaVersion },
    tags: manifestTags,
    overwrite: true,
  });
  // putBytes skips an upload of identical content (already pinned): set the tags regardless.
  await s3?.putObjectTags(key, manifestTags);
  if (!pinned) await tagArtifacts();
  return s3 ? artifactKeys.length + 1 : 0;
}

function parseBackupId(value: string): string {
  if (!isBackupId(value)) throw new InvalidArgumentError('expected a backup id like 20261126T170000Z-daily (see list)');
  return value;
}

/** The `pin` and `unpin` commands of the CLI. */
export function addPinCommands(program: Command): void {
  for (const pinned of [true, false]) {
    program
      .command(pinned ? 'pin' : 'unpin')
      .description(pinned ? 'never prune this backup, in any repository' : 'let the retention policy decide about this backup again')
      .argument('<backup-id>', 'a backup id (see list)', parseBackupId)
      .action(async (backupId: string) => {
        if (!(await pinCommand(loadConfig(process.env, { database: false }), backupId, pinned))) process.exitCode = ExitCode.checkFailed;
      });
  }
}

import { Context } from '@temporalio/activity';
import type { Repository } from '../src/storage/repository.js';
import { progressHeartbeat } from './heartbeat.js';

export interface StagedArtifactRef {
  /** The key in the layout (src/layout.ts), the same in every repository. */
  key: string;
  path: string;
  size: number;
  sha256: string;
}

/**
 * Puts a backup's staged artifacts into one repository. Each put verifies what the store
 * holds (size and sha256) and a put of content already there is a no-op, so a retry after a
 * crash or a network fault resumes without damage. The manifest is NOT written here: it goes
 * up last, once every repository holds every artifact.
 */
export async function uploadArtifacts(
  repository: Repository,
  artifacts: readonly StagedArtifactRef[],
  metadata: Record<string, string>,
): Promise<void> {
  const signal = Context.current().cancellationSignal;
  const heartbeat = progressHeartbeat(`upload:${repository.name}`);
  let done = 0;
  for (const artifact of artifacts) {
    await repository.putFile(artifact.key, artifact.path, {
      expected: { size: artifact.size, sha256: artifact.sha256 },
      metadata,
      // Written once by stageStream and never again: the local repository links it (no copy).
      staged: true,
      onProgress: (bytes) => heartbeat(done + bytes),
      signal,
    });
    done += artifact.size;
  }
}

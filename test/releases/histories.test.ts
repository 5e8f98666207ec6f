import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { Worker } from '@temporalio/worker';
import { expect, it } from 'vitest';
import { workflowInterceptorModules, workflowsPath } from '../../src/temporal/worker.js';

/**
 * Safe deploys (docs/DEPLOYS.md): a RestoreDrill or Restore waits up to a day for approval and a
 * NightlyBackup runs for hours, so a worker of this code must replay what earlier releases
 * recorded (`npm run record-release`: test/releases/<version>/histories/<Type>--<scenario>.json).
 * A workflow change made without `patched()` fails here with a non-determinism error.
 */
const releasesDir = fileURLToPath(new URL('./', import.meta.url));

async function recordedHistories(): Promise<Array<{ name: string; workflowId: string; json: unknown }>> {
  const found = [];
  for (const release of await readdir(releasesDir)) {
    const dir = join(releasesDir, release, 'histories');
    const files = (await readdir(dir).catch(() => [] as string[])).filter((file) => file.endsWith('.json') && file !== 'workflow-ids.json');
    if (files.length === 0) continue;
    // The run's own workflow id: approval statements name it, so a replay under another id differs.
    const workflowIds = JSON.parse(await readFile(join(dir, 'workflow-ids.json'), 'utf8')) as Record<string, string>;
    for (const file of files) {
      expect(workflowIds[file], `${release}/histories/workflow-ids.json names ${file}`).toBeDefined();
      found.push({ name: `${release}/${file}`, workflowId: workflowIds[file]!, json: JSON.parse(await readFile(join(dir, file), 'utf8')) as unknown });
    }
  }
  return found;
}

it('every recorded history of every release replays against this code', async () => {
  const histories = await recordedHistories();
  const types = new Set(histories.map((h) => h.name.split('/')[1]!.split('--')[0]));
  expect([...types].sort()).toEqual(['Freshness', 'NightlyBackup', 'Prune', 'Restore', 'RestoreDrill']);
  const failures: string[] = [];
  // One at a time: a replay worker takes each history under its own workflow id.
  for (const h of histories) {
    const replays = Worker.runReplayHistories(
      { workflowsPath: workflowsPath(), interceptors: { workflowModules: workflowInterceptorModules() } },
      [{ workflowId: h.workflowId, history: historyFromJSON(h.json) }],
    );
    for await (const result of replays) if (result.error) failures.push(`${h.name}: ${result.error.message}`);
  }
  expect(failures).toEqual([]);
});

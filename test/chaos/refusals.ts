import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkflowFailedError } from '@temporalio/client';
import { expect } from 'vitest';
import { readCatalog } from '../../src/catalog.js';
import { describeError } from '../../src/commands/format.js';
import { NightlyBackup } from '../../workflows/index.js';
import type { NightlyBackupInput } from '../../workflows/messages.js';
import { activityFailures, activityRetries } from './backup-checks.js';
import type { TestProduct } from './products.js';

/** Files (not directories) under `dir`: what a refused backup must not leave behind. */
export async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((entry) => !entry.isDirectory()).map((entry) => join(entry.parentPath, entry.name));
}

/**
 * Runs one NightlyBackup that must be refused at once: the workflow fails, `message` is in the
 * error the operator sees, every failed activity was non-retryable and ran once, and nothing
 * was written (no manifest in any repository, no file left in BACKUP_DIR). Returns the message.
 */
export async function expectCleanRefusal(product: TestProduct, message: RegExp, input: Partial<NightlyBackupInput> = {}): Promise<string> {
  const handle = await product.client.workflow.start(NightlyBackup, {
    taskQueue: product.taskQueue,
    workflowId: `chaos-refusal-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`,
    args: [{ kind: 'daily', heartbeatTimeoutSeconds: 5, ...input }],
  });
  const error = await handle.result().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(WorkflowFailedError);
  const text = describeError(error);
  expect(text).toMatch(message);
  const failures = await activityFailures(handle);
  expect(failures.every((f) => f.nonRetryable && f.attempt === 1), JSON.stringify(failures)).toBe(true);
  expect(await activityRetries(handle)).toEqual([]);
  // An activity still running when the workflow failed must not leave files behind either.
  await sleep(1_000);
  for (const repository of product.runtime.repositories.values()) expect((await readCatalog(repository, 'test')).backups).toEqual([]);
  expect(await filesUnder(product.config.local.backupDir)).toEqual([]);
  return text;
}

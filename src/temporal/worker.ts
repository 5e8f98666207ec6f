import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { NativeConnection, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { createActivities, type BackupRuntime } from '../../activities/index.js';
import { ensureSearchAttributes } from './search-attributes.js';

/**
 * The workflow bundle's entry: `dist/workflows/index.js` when running the built product,
 * `workflows/index.ts` when running from source (tests); Temporal's bundler compiles either.
 */
export function workflowsPath(): string {
  const built = fileURLToPath(new URL('../../workflows/index.js', import.meta.url));
  return existsSync(built) ? built : built.replace(/\.js$/, '.ts');
}

/** The workflow interceptors the worker bundles with the workflows (our metrics). */
export function workflowInterceptorModules(): string[] {
  const built = fileURLToPath(new URL('../../workflows/outcome-metrics.js', import.meta.url));
  return [existsSync(built) ? built : built.replace(/\.js$/, '.ts')];
}

export interface WorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  runtime: BackupRuntime;
  /** A pre-built bundle (tests build it once for many workers; include workflowInterceptorModules()); default: bundle workflowsPath(). */
  workflowBundle?: WorkflowBundleWithSourceMap;
}

export async function createBackupWorker(options: WorkerOptions): Promise<Worker> {
  await ensureSearchAttributes(options.connection, options.namespace);
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue,
    activities: createActivities(options.runtime),
    ...(options.workflowBundle ? { workflowBundle: options.workflowBundle } : { workflowsPath: workflowsPath() }),
    interceptors: { workflowModules: workflowInterceptorModules() },
    // Dumps and uploads are I/O-bound child processes and streams: a few at once per worker.
    maxConcurrentActivityTaskExecutions: 8,
  });
}

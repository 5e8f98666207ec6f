import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, NativeConnection, Worker, type WorkflowBundleOption, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { createActivities, type BackupRuntime } from '../../activities/index.js';
import { workerIdentity } from '../host.js';
import { ensureSearchAttributes } from './search-attributes.js';

/** This module's sibling at `relative`: the built `.js` when running the built product, else the `.ts` source (tests). */
function builtOrSource(relative: string): string {
  const built = fileURLToPath(new URL(relative, import.meta.url));
  return existsSync(built) ? built : built.replace(/\.js$/, '.ts');
}

/** The workflow bundle's entry: `dist/workflows/index.js`, or `workflows/index.ts` from source. */
export function workflowsPath(): string {
  return builtOrSource('../../workflows/index.js');
}

/** The workflow interceptors bundled with the workflows (our metrics). */
export function workflowInterceptorModules(): string[] {
  return [builtOrSource('../../workflows/outcome-metrics.js')];
}

/**
 * Where `npm run build` writes the workflow bundle (scripts/bundle-workflows.mjs):
 * `dist/workflow-bundle.js`. Bundling at start-up runs webpack inside the worker, which costs
 * seconds and ~80 MB of memory the process never gives back (BENCHMARKS.md); Temporal
 * recommends a pre-built bundle in production for the same reasons.
 */
export function prebuiltBundlePath(): string {
  return fileURLToPath(new URL('../../workflow-bundle.js', import.meta.url));
}

/** The workflows and their interceptors, bundled for the worker's sandbox. */
export function bundleWorkflows(): Promise<WorkflowBundleWithSourceMap> {
  return bundleWorkflowCode({ workflowsPath: workflowsPath(), workflowInterceptorModules: workflowInterceptorModules() });
}

export interface WorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  runtime: BackupRuntime;
  /** A bundle built once for many workers (tests; see bundleWorkflows()); default: the pre-built one, else bundle now. */
  workflowBundle?: WorkflowBundleOption;
  /** WORKER_SHUTDOWN_GRACE: how long activities in flight may finish after shutdown(); default 0 (cancelled at once). */
  shutdownGraceMs?: number;
}

/**
 * The bundle to run: the caller's; else the one the build wrote, when running the built product
 * and it is newer than the compiled workflows (a bare `tsc` after `npm run build` would otherwise
 * leave the worker running old workflow code); else bundle at start-up.
 */
function chooseBundle(options: WorkerOptions): { workflowBundle: WorkflowBundleOption } | { workflowsPath: string; interceptors: { workflowModules: string[] } } {
  if (options.workflowBundle) return { workflowBundle: options.workflowBundle };
  const entry = workflowsPath();
  const prebuilt = prebuiltBundlePath();
  if (entry.endsWith('.js') && existsSync(prebuilt) && statSync(prebuilt).mtimeMs >= statSync(entry).mtimeMs) {
    return { workflowBundle: { codePath: prebuilt } };
  }
  return { workflowsPath: entry, interceptors: { workflowModules: workflowInterceptorModules() } };
}

export async function createBackupWorker(options: WorkerOptions): Promise<Worker> {
  await ensureSearchAttributes(options.connection, options.namespace);
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue,
    identity: workerIdentity(process.pid, options.runtime.host.id),
    activities: createActivities(options.runtime),
    ...chooseBundle(options),
    // Memory (docs/MEMORY.md, worker RSS at rest): the SDK's workflow defaults stay. One reused V8
    // context (reuseV8Context, the default): without it +30 MB. maxCachedWorkflows 10 instead of
    // the default: no difference (no workflow is open at rest, and a backup keeps a few).
    // Dumps and uploads are I/O-bound child processes and streams: a few at once per worker.
    maxConcurrentActivityTaskExecutions: 8,
    // The SDK refuses an explicit undefined here.
    ...(options.shutdownGraceMs === undefined ? {} : { shutdownGraceTime: options.shutdownGraceMs }),
  });
}

/**
 * The workers of one worker process (src/host.ts): one polls the shared task queue (workflows
 * and host-free activities), one polls this host's own queue (activities that need its disk).
 * Both run the same activities, bound to the same runtime; run and stop them together.
 */
export async function createBackupWorkers(options: Omit<WorkerOptions, 'taskQueue'>): Promise<Worker[]> {
  const shared = await createBackupWorker({ ...options, taskQueue: options.runtime.host.sharedTaskQueue });
  // Activities only, no workflow thread: measured at most 3 MB of RSS beside the shared one.
  const host = await Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: options.runtime.host.taskQueue,
    identity: workerIdentity(process.pid, options.runtime.host.id),
    activities: createActivities(options.runtime),
    maxConcurrentActivityTaskExecutions: 8,
    ...(options.shutdownGraceMs === undefined ? {} : { shutdownGraceTime: options.shutdownGraceMs }),
  });
  return [shared, host];
}

/**
 * Runs the workers until each has stopped; when one fails, the others are shut down (a process
 * polling only one of its two queues would take work it cannot finish) and the failure is rethrown.
 */
export async function runWorkers(workers: readonly Worker[]): Promise<void> {
  const results = await Promise.allSettled(
    workers.map((worker) =>
      worker.run().catch((error: unknown) => {
        for (const other of workers) if (other !== worker && other.getState() === 'RUNNING') other.shutdown();
        throw error;
      }),
    ),
  );
  const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed) throw failed.reason;
}

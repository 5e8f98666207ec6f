import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnService, waitUntilReady, type ServiceProcess } from '../src/dev/processes.js';
import { projectRoot } from '../src/tools.js';
import { WORKER_MALLOC_ENV, WORKER_NODE_FLAGS } from '../src/worker-launch.js';

const CLI = join(projectRoot(), 'dist', 'src', 'cli.js');

/**
 * `node dist/src/cli.js worker` in its own process, as operators run it, so its CPU time and
 * peak RSS are its own (not the benchmark driver's), started with the product's memory settings
 * (src/worker-launch.ts). Configuration only from `env`.
 */
export async function startWorker(env: Record<string, string>, logPath: string): Promise<ServiceProcess> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
  const worker = await spawnService({
    name: 'worker',
    command: process.execPath,
    args: [...WORKER_NODE_FLAGS, CLI, 'worker'],
    logPath,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...WORKER_MALLOC_ENV, ...env },
    stopSignal: 'SIGTERM',
  });
  try {
    await waitUntilReady(worker, async () => (readFileSync(logPath, 'utf8').includes('erp4-backup worker:') ? true : undefined), {
      timeoutMs: 60_000,
    });
  } catch (error) {
    await worker.stop();
    throw error;
  }
  return worker;
}

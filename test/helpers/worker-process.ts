import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnService, waitUntilReady, type ServiceProcess } from '../../src/dev/processes.js';
import { WORKER_MALLOC_ENV, WORKER_NODE_FLAGS } from '../../src/worker-launch.js';
import type { Services } from './services.js';

const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));

/**
 * The worker as operators run it (`erp4-backup worker`, the built CLI) in its own process, so
 * tests can SIGKILL it at any moment and start it again. Configuration comes only from `env`.
 */
export interface WorkerProcess {
  process: ServiceProcess;
  /** SIGKILL: no cleanup, no goodbye to the server (a power cut, the OOM killer). */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

/** `cli`: the built CLI to run (default: this checkout's dist/src/cli.js). */
export async function startWorkerProcess(s: Services, env: Record<string, string>, name: string, cli = CLI): Promise<WorkerProcess> {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first (npm test does)`);
  const logPath = join(s.workDir, 'logs', `${name}.log`);
  // The log is appended to across restarts: readiness is judged on what this start wrote.
  const logStart = existsSync(logPath) ? readFileSync(logPath, 'utf8').length : 0;
  const service = await spawnService({
    name,
    command: process.execPath,
    args: [...WORKER_NODE_FLAGS, cli, 'worker'],
    logPath,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...WORKER_MALLOC_ENV, ...env },
    stopSignal: 'SIGTERM',
    stopTimeoutMs: 10_000,
  });
  await waitUntilReady(service, async () => (readFileSync(logPath, 'utf8').slice(logStart).includes('erp4-backup worker:') ? true : undefined), {
    timeoutMs: 60_000,
  });
  return {
    process: service,
    async kill() {
      process.kill(-service.pid, 'SIGKILL');
      await service.exited;
    },
    stop: () => service.stop(),
  };
}

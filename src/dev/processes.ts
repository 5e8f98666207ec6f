import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** A long-running service process whose stdout and stderr go to a log file. */
export interface ServiceProcess {
  name: string;
  logPath: string;
  pid: number;
  /** Resolves when the process has exited (never rejects). */
  exited: Promise<ExitStatus>;
  /** Whether the process has exited already. */
  hasExited(): boolean;
  /** Stops the process (and its process group); resolves once it is gone. */
  stop(): Promise<void>;
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SpawnServiceOptions {
  name: string;
  command: string;
  args: string[];
  logPath: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Run as this OS user (needed for PostgreSQL, which refuses to run as root). */
  uid?: number;
  gid?: number;
  /** Signal asking the service for a clean, fast shutdown (PostgreSQL: SIGINT). */
  stopSignal?: NodeJS.Signals;
  /** How long to wait for a clean shutdown before SIGKILL. */
  stopTimeoutMs?: number;
}

// Every service still running, so a signal or an unexpected exit of the test runner can take
// them down: they run in their own process groups and would otherwise outlive it.
const running = new Set<ServiceProcess>();
// Synchronous clean-ups for things that are not our children (e.g. a daemonized gpg-agent).
const emergencyCleanups = new Set<() => void>();
let exitHandlersInstalled = false;

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is gone already.
  }
}

function installExitHandlers(): void {
  if (exitHandlersInstalled) return;
  exitHandlersInstalled = true;
  const killEverything = (): void => {
    for (const service of running) killGroup(service.pid, 'SIGKILL');
    running.clear();
    for (const cleanup of emergencyCleanups) {
      try {
        cleanup();
      } catch {
        // Best effort: the process is going away.
      }
    }
    emergencyCleanups.clear();
  };
  process.on('exit', killEverything);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      killEverything();
      // If nobody else handles the signal, keep its default meaning: terminate.
      if (process.listenerCount(signal) === 1) {
        process.removeListener(signal, onSignal);
        process.kill(process.pid, signal);
      }
    };
    process.on(signal, onSignal);
  }
}

/**
 * Registers a synchronous clean-up to run if the test runner is interrupted or exits before
 * the normal teardown; returns a function that unregisters it (call it after the teardown).
 */
export function onEmergencyExit(cleanup: () => void): () => void {
  installExitHandlers();
  emergencyCleanups.add(cleanup);
  return () => emergencyCleanups.delete(cleanup);
}

/** Starts a service in its own process group with stdout/stderr appended to `logPath`. */
export async function spawnService(options: SpawnServiceOptions): Promise<ServiceProcess> {
  installExitHandlers();
  await mkdir(dirname(options.logPath), { recursive: true });
  const logFd = openSync(options.logPath, 'a');
  const spawnOptions: SpawnOptions = {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', logFd, logFd],
    detached: true,
  };
  if (options.uid !== undefined) spawnOptions.uid = options.uid;
  if (options.gid !== undefined) spawnOptions.gid = options.gid;
  let child: ChildProcess;
  try {
    child = spawn(options.command, options.args, spawnOptions);
  } finally {
    closeSync(logFd);
  }
  const pid = await new Promise<number>((resolve, reject) => {
    child.once('spawn', () => resolve(child.pid as number));
    child.once('error', (error) =>
      reject(new Error(`${options.name}: cannot start ${options.command}: ${error.message}`)),
    );
  });
  let exitStatus: ExitStatus | undefined;
  let service: ServiceProcess | undefined;
  const exited = new Promise<ExitStatus>((resolve) => {
    child.once('exit', (code, signal) => {
      exitStatus = { code, signal };
      // Children the service left behind (e.g. sshd sessions) go with it. Done right now,
      // while the group id cannot have been reused by an unrelated process.
      killGroup(pid, 'SIGKILL');
      if (service) running.delete(service);
      resolve(exitStatus);
    });
  });
  service = {
    name: options.name,
    logPath: options.logPath,
    pid,
    exited,
    hasExited: () => exitStatus !== undefined,
    stop: async () => {
      if (exitStatus === undefined) {
        killGroup(pid, options.stopSignal ?? 'SIGTERM');
        // Unref'd: a pending timer must not keep the test runner alive once the process is gone.
        const timeout = sleep(options.stopTimeoutMs ?? 10_000, undefined, { ref: false }).then(() => 'timeout' as const);
        if ((await Promise.race([exited, timeout])) === 'timeout') {
          killGroup(pid, 'SIGKILL');
          await exited;
        }
      }
    },
  };
  running.add(service);
  return service;
}

/** The last `lines` lines of a log file ('' when it does not exist). */
export function logTail(logPath: string, lines = 40): string {
  let text: string;
  try {
    text = readFileSync(logPath, 'utf8');
  } catch {
    return '';
  }
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

export function describeExit(status: ExitStatus): string {
  return status.signal ? `was killed by ${status.signal}` : `exited with code ${status.code}`;
}

/** An Error naming the service, with the tail of its log. */
export function serviceError(service: Pick<ServiceProcess, 'name' | 'logPath'>, problem: string): Error {
  return new Error(
    `${service.name} ${problem}\n--- last lines of ${service.logPath} ---\n${logTail(service.logPath)}`,
  );
}

/**
 * Polls `probe` until it returns a value other than undefined. Fails with the service's log
 * tail when the process exits first or when `timeoutMs` passes. Each probe is raced against
 * the process's exit and `probeTimeoutMs`, so a probe that hangs (e.g. connected to a port
 * someone else holds) cannot hang the start.
 */
export async function waitUntilReady<T>(
  service: ServiceProcess,
  probe: () => Promise<T | undefined>,
  {
    timeoutMs = 60_000,
    intervalMs = 100,
    probeTimeoutMs = 5_000,
  }: { timeoutMs?: number; intervalMs?: number; probeTimeoutMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  const exitedEarly = async (): Promise<never> => {
    throw serviceError(service, `${describeExit(await service.exited)} before it was ready`);
  };
  let lastError: unknown;
  for (;;) {
    const probeTimer = new AbortController();
    try {
      const result = await Promise.race([
        probe(),
        exitedEarly(),
        sleep(probeTimeoutMs, undefined, { signal: probeTimer.signal }).then(() => {
          throw new Error(`probe did not answer within ${probeTimeoutMs} ms`);
        }),
      ]);
      if (result !== undefined) return result;
    } catch (error) {
      if (service.hasExited()) return exitedEarly();
      lastError = error;
    } finally {
      probeTimer.abort();
    }
    if (Date.now() > deadline) {
      const reason = lastError instanceof Error ? ` (last probe error: ${lastError.message})` : '';
      throw serviceError(service, `was not ready within ${timeoutMs} ms${reason}`);
    }
    await sleep(intervalMs);
  }
}

/** Resolves true when something accepts TCP connections on host:port. */
export function isPortOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Waits until `host:port` accepts connections (failing early if the service exits). */
export async function waitForPort(
  service: ServiceProcess,
  host: string,
  port: number,
  timeoutMs?: number,
): Promise<void> {
  await waitUntilReady(service, async () => ((await isPortOpen(host, port)) ? true : undefined), {
    timeoutMs,
  });
}

/** A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it by binding port 0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('could not determine a free port'));
      });
    });
  });
}

/** Runs a command to completion; resolves with stdout, rejects with stderr on failure. */
export function runCommand(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; uid?: number; gid?: number; input?: string } = {},
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      uid: options.uid,
      gid: options.gid,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', (error) => reject(new Error(`cannot run ${command}: ${error.message}`)));
    child.once('close', (code, signal) => {
      if (code === 0) resolve({ stdout, stderr });
      else
        reject(
          new Error(
            `${command} ${args.join(' ')} ${describeExit({ code, signal })}\n${stderr.trim() || stdout.trim()}`,
          ),
        );
    });
    // A child that exits without reading its input (EPIPE) reports that through its exit code.
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input);
  });
}

const PORT_IN_USE = /address already in use|port \d+ is in use|bind.*failed/i;

/**
 * Runs `start` again (up to `attempts` times) when it failed because its port was taken:
 * a port found free by freePort() can be grabbed by another process before the service
 * binds it (e.g. by the random ports the Temporal dev server picks for itself).
 */
export async function retryOnPortConflict<T>(start: () => Promise<T>, attempts = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (error) {
      if (attempt >= attempts || !(error instanceof Error) || !PORT_IN_USE.test(error.message)) throw error;
    }
  }
}

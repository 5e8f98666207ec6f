import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';

/**
 * Runs the external tools of the trade (pg_dump, pg_restore, pg_dumpall, tar, gpg) without a
 * shell: arguments are passed as an array, so names with quotes, spaces or `$(...)` are data,
 * never code (S19). Secrets go through `env` (PGPASSWORD), never argv, where /proc/<pid>/cmdline
 * would show them.
 */
export class ToolError extends Error {
  constructor(
    readonly tool: string,
    message: string,
    /** True when retrying cannot help (tool missing, bad arguments, authentication). */
    readonly permanent: boolean,
  ) {
    super(message);
    this.name = 'ToolError';
  }
}

export interface ToolProcess {
  stdin: Writable;
  stdout: Readable;
  /** Resolves when the tool exits 0; rejects with a ToolError carrying the end of its stderr. */
  exited: Promise<void>;
  kill(): void;
}

export interface RunToolOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  signal?: AbortSignal;
  /** Patterns of stderr that mean "do not retry" (e.g. authentication failures). */
  permanentErrors?: RegExp[];
  /** What to tell the operator to install when the tool is missing. */
  installHint?: string;
}

const STDERR_TAIL_BYTES = 4096;

export function startTool(path: string, args: readonly string[], options: RunToolOptions = {}): ToolProcess {
  const tool = path.split('/').pop() ?? path;
  const child: ChildProcessByStdio<Writable, Readable, Readable> = spawn(path, args, {
    env: options.env ?? process.env,
    cwd: options.cwd,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderrTail = '';
  // The first lines too: a tool that stops at its first error (pg_restore --exit-on-error) may
  // print kilobytes of the failed command after it, which would push the error out of the tail.
  let stderrHead = '';
  let stderrLength = 0;
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    if (stderrHead.length < STDERR_TAIL_BYTES) stderrHead += chunk.slice(0, STDERR_TAIL_BYTES - stderrHead.length);
    stderrLength += chunk.length;
    stderrTail = (stderrTail + chunk).slice(-STDERR_TAIL_BYTES);
  });
  const onAbort = () => child.kill('SIGTERM');
  options.signal?.addEventListener('abort', onAbort, { once: true });

  const exited = new Promise<void>((resolve, reject) => {
    child.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') {
        reject(new ToolError(tool, `${tool} not found at ${path}${options.installHint ? `: ${options.installHint}` : ''}`, true));
      } else {
        reject(new ToolError(tool, `${tool} could not start: ${error.message}`, false));
      }
    });
    child.once('close', (code, signal) => {
      options.signal?.removeEventListener('abort', onAbort);
      if (code === 0) return resolve();
      const stderr = stderrLength > stderrTail.length ? `${stderrHead}\n[...]\n${stderrTail}` : stderrTail;
      const detail = stderr.trim() || '(no output on stderr)';
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      const permanent = (options.permanentErrors ?? []).some((pattern) => pattern.test(stderr));
      reject(new ToolError(tool, `${tool} ${how}: ${detail}`, permanent));
    });
  });
  // Nobody may be awaiting `exited` yet when the tool fails early; the caller awaits it later.
  exited.catch(() => undefined);
  return { stdin: child.stdin, stdout: child.stdout, exited, kill: () => child.kill('SIGKILL') };
}

/** Runs a tool to completion and returns its stdout as text (for short outputs: versions, lists). */
export async function runTool(path: string, args: readonly string[], options: RunToolOptions = {}): Promise<string> {
  const proc = startTool(path, args, options);
  proc.stdin.end();
  proc.stdout.setEncoding('utf8');
  let out = '';
  proc.stdout.on('data', (chunk: string) => (out += chunk));
  await proc.exited;
  return out;
}

import { formatBytes, formatDuration } from './format.js';

/** One poll of a running backup, drill or restore: its phase and the steps in flight with their bytes. */
export interface ProgressSample {
  elapsedMs: number;
  phase: string;
  inFlight: Array<{ step: string; bytes: number; attempt: number }>;
  /** Local clock of the poll, for the rate. */
  at: number;
}

/**
 * `[0m04s] transferring: db 12.0 MiB (3.0 MiB/s)`: the phase and each step in flight with its
 * bytes and, when the previous poll saw the same step, its rate since then.
 */
export function progressText(sample: ProgressSample, previous?: ProgressSample): string {
  const steps = sample.inFlight.map(({ step, bytes, attempt }) => {
    const before = previous?.inFlight.find((p) => p.step === step);
    const seconds = previous ? (sample.at - previous.at) / 1000 : 0;
    const rate = before && seconds > 0 && bytes >= before.bytes ? ` (${formatBytes(Math.round((bytes - before.bytes) / seconds))}/s)` : '';
    return `${step} ${formatBytes(bytes)}${rate}${attempt > 1 ? ` (attempt ${attempt})` : ''}`;
  });
  return `[${formatDuration(sample.elapsedMs)}] ${sample.phase}${steps.length ? `: ${steps.join(', ')}` : ''}`;
}

const PLAIN_REPEAT_MS = 30_000;

/**
 * Where progress goes. On a terminal (stderr is a TTY): one line on stderr, rewritten in place
 * at every poll, the phase in colour unless NO_COLOR is set (no-color.org). Otherwise (a pipe, a
 * log file, cron): a plain line on `out` whenever the phase or the step in flight changes.
 */
export class ProgressDisplay {
  readonly #out: NodeJS.WritableStream;
  readonly #terminal: (NodeJS.WritableStream & { isTTY?: boolean }) | undefined;
  readonly #colour: boolean;
  #previous: ProgressSample | undefined;
  #lastPlain = '';
  #lastPlainAt = 0;
  #lineShown = false;

  constructor(out: NodeJS.WritableStream, stderr: NodeJS.WritableStream & { isTTY?: boolean } = process.stderr, env: NodeJS.ProcessEnv = process.env) {
    this.#out = out;
    this.#terminal = stderr.isTTY ? stderr : undefined;
    this.#colour = env.NO_COLOR === undefined || env.NO_COLOR === '';
  }

  show(sample: ProgressSample): void {
    const text = progressText(sample, this.#previous);
    this.#previous = sample;
    if (this.#terminal) {
      const shown = this.#colour ? text.replace(`] ${sample.phase}`, `] \x1b[36m${sample.phase}\x1b[39m`) : text;
      this.#terminal.write(`\r\x1b[2K${shown}`);
      this.#lineShown = true;
      return;
    }
    // Plain lines: a new one when the phase or the steps change, else at most every 30 s (a log, not a ticker).
    const plain = text.replace(/^\[[^\]]*\] /, '').replace(/ [\d.]+ [KMGT]?i?B( \([^)]*\/s\))?/g, '');
    if (plain !== this.#lastPlain || sample.at - this.#lastPlainAt >= PLAIN_REPEAT_MS) {
      this.#out.write(`${text}\n`);
      this.#lastPlainAt = sample.at;
    }
    this.#lastPlain = plain;
  }

  /** Before another message, and at the end: the updating line is finished with a newline. */
  endLine(): void {
    if (this.#terminal && this.#lineShown) this.#terminal.write('\n');
    this.#lineShown = false;
  }
}

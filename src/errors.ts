/** Bad input (an argument, a configured name, a backup id): the message names it; never retried. */
export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InputError';
  }
}

/**
 * A disk is full (ENOSPC, or a quota: EDQUOT). Retrying cannot help until someone frees space,
 * so it is never retried: the failure notice goes out at once, naming the full directory.
 */
export class DiskFullError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DiskFullError';
  }
}

/** Whether `error`, or an error in its cause chain, is a full disk or an exhausted quota. */
export function isDiskFull(error: unknown): boolean {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') return true;
  }
  return false;
}

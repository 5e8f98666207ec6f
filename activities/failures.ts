import { ApplicationFailure } from '@temporalio/common';
import { ToolError } from '../src/child-process.js';
import { isDiskFull } from '../src/errors.js';

/**
 * Errors that retrying cannot fix (bad configuration, a missing tool, refused credentials, an
 * unusable key, a host key mismatch, a full disk) become non-retryable ApplicationFailures
 * whose type is the error's name: the workflow fails at once with the clear message instead
 * of retrying for hours. Everything else (network, timeouts, a server restart) is retried with backoff.
 */
const PERMANENT_ERROR_NAMES = new Set([
  'ConfigError',
  'ManifestError',
  'OpenPgpKeyError',
  'HostKeyMismatchError',
  'InputError',
  'DiskFullError',
  'DatabaseAccessError',
  'PgTlsError',
  'ImmutableObjectError',
]);

export function isPermanent(error: unknown): boolean {
  if (error instanceof ToolError) return error.permanent;
  // Also a full disk met by a repository (a StorageError whose cause is ENOSPC).
  if (isDiskFull(error)) return true;
  return error instanceof Error && PERMANENT_ERROR_NAMES.has(error.name);
}

/** Wraps an activity so permanent errors fail without retries. */
export function failFastOnPermanentErrors<A extends unknown[], R>(fn: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return async (...args: A) => {
    try {
      return await fn(...args);
    } catch (error) {
      if (isPermanent(error)) {
        const e = error as Error;
        throw ApplicationFailure.create({ message: e.message, type: e.name, nonRetryable: true, cause: e });
      }
      throw error;
    }
  };
}

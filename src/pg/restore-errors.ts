import { ToolError } from '../child-process.js';
import { PERMANENT_PG_ERRORS } from './connection.js';

/**
 * What pg_restore and psql report when a retry cannot help: the same dump (or globals script)
 * fails the same way every time, so the restore fails at once with the cause in its report
 * instead of sitting in `restoring-database` attempt after attempt.
 *
 * - An SQL error from the server (`ERROR:  type "public.invoice_status" does not exist`; libpq
 *   writes the severity followed by two spaces), except the few that depend on timing or on
 *   the server's state and may pass on a retry: a deadlock, a serialization failure, a
 *   cancelled statement (timeouts, recovery conflicts), a lock not available, exhausted memory
 *   or disk on the server.
 * - A damaged or foreign archive (pg_restore's own messages).
 *
 * Connection failures are FATAL or libpq messages, never `ERROR:`, so a refused connection,
 * `too many connections` or a server starting up stay retryable.
 */
export const PERMANENT_RESTORE_ERRORS: readonly RegExp[] = [
  ...PERMANENT_PG_ERRORS,
  /\bERROR: {2}(?!deadlock detected|could not serialize access|canceling statement due to|could not obtain lock|out of (?:shared )?memory|could not extend file|could not write)/,
  /pg_restore: error: (?:input file (?:does not appear to be a valid archive|is too short)|did not find magic string|unsupported version|could not read (?:from )?input file: end of file|could not uncompress data|unexpected end of file|could not find block ID|found unexpected block ID|unrecognized data block type|invalid (?:OID|dumpId))/,
];

const FIRST_LINES = 6;
const LINE_CHARS = 300;

/**
 * The first error of a tool's stderr and the lines after it (the failed statement's position
 * and text), a few short lines: what a report shows as the cause.
 */
export function firstErrorLines(stderr: string): string {
  const lines = stderr.split('\n').map((line) => line.trimEnd()).filter((line) => line.length > 0);
  const first = lines.findIndex((line) => /\b(?:error|ERROR|FATAL):/.test(line));
  return lines
    .slice(first < 0 ? 0 : first, (first < 0 ? 0 : first) + FIRST_LINES)
    .map((line) => (line.length > LINE_CHARS ? `${line.slice(0, LINE_CHARS)}...` : line))
    .join('\n');
}

/**
 * A pg_restore or psql failure, restated for the report: its first error lines, and whether it
 * will be retried. Other errors pass unchanged.
 */
export function explainRestoreToolFailure(error: unknown): unknown {
  if (!(error instanceof ToolError)) return error;
  const stderr = error.message.replace(/^\S+ (?:exited with code \S+|was killed by \S+): /, '');
  const verdict = error.permanent ? 'not retried: the same input fails the same way' : 'retried';
  return new ToolError(error.tool, `${error.tool} failed (${verdict}): ${firstErrorLines(stderr)}`, error.permanent);
}

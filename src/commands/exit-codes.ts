import { CommanderError } from 'commander';

/**
 * The exit codes of every command but `check` (which keeps the Nagios plugin codes), so that
 * cron, systemd and monitoring can tell "the backup is bad" from "fix the command line" from
 * "try again later". The README's exit-code table is this one.
 */
export const ExitCode = {
  /** The command did what was asked (a drill or restore passed, a backup verified). */
  ok: 0,
  /**
   * The command ran and found a problem: verify found a mismatch, a drill or restore failed
   * (its report says at which step), an approval was not accepted, copy left a backup out,
   * pin/unpin failed in a repository, `lifecycle show` or `keys` found something to fix.
   */
  checkFailed: 1,
  /** Usage or configuration: an unknown option, a bad argument, a setting (named in the message). */
  usage: 2,
  /** The run failed or could not start: a service unreachable, a backup workflow failed, anything unexpected. */
  runFailed: 3,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/**
 * Error names (and Temporal failure types) that mean the operator must change the command or a
 * setting: each names the argument or the variable to fix.
 */
const USAGE_ERRORS = new Set(['ConfigError', 'InputError', 'OpenPgpKeyError', 'PgTlsError']);
/** The command found a backup or a restore not good: a drill or restore that failed (its report is stored), an invalid manifest. */
const CHECK_FAILURES = new Set(['RestoreDrillFailed', 'RestoreFailed', 'ManifestError']);

/**
 * A Temporal connection refused for a setting (a certificate, the CA, TLS, the API key) is a
 * setting to fix; an address that cannot be reached is a service to bring back (exit 3).
 */
const isSettingRefused = (error: Error) =>
  error.name === 'TemporalConnectionError' && (error as Error & { setting?: unknown }).setting !== 'TEMPORAL_ADDRESS';

/**
 * The exit code for an error that ended a command. Temporal wraps the real error (a workflow
 * failure <- an activity failure <- the ApplicationFailure whose `type` is the error's name),
 * so the whole cause chain is read; a setting or an argument to fix wins. A failed drill or
 * restore carries only its message (the workflow stores the cause in its report): any failed
 * drill, a backup id it could not find included, is 1.
 */
export function exitCodeOf(error: unknown): ExitCodeValue {
  if (error instanceof CommanderError) return error.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
  const names: string[] = [];
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    const type = (e as { type?: unknown }).type;
    names.push(e.name, ...(typeof type === 'string' ? [type] : []), ...(isSettingRefused(e) ? ['ConfigError'] : []));
  }
  if (names.some((name) => USAGE_ERRORS.has(name))) return ExitCode.usage;
  if (names.some((name) => CHECK_FAILURES.has(name))) return ExitCode.checkFailed;
  return ExitCode.runFailed;
}

import { CONFIG_VARIABLES } from '../config.js';

/**
 * `erp4-backup check`: one probe per thing that must work before the first night (pgBackRest's
 * `check`, Barman's `check`). Each probe answers with a Nagios plugin status and, when it is not
 * OK, the settings (environment variables) to fix.
 *
 * Pure: no I/O here; the probes themselves live beside this file, one module per subject.
 */
export type ProbeStatus = 'OK' | 'WARNING' | 'CRITICAL' | 'UNKNOWN';

export interface ProbeResult {
  /** Stable, e.g. `database`, `s3: write`, `temporal: worker`. */
  name: string;
  status: ProbeStatus;
  /** One line for the operator: what was tried and what came of it. Never a secret. */
  detail: string;
  /** The environment variables to fix; empty when OK (and for an UNKNOWN that depends on another probe). */
  settings: string[];
  /** An action beside the settings, e.g. `erp4-backup schedules apply`. */
  remedy?: string;
}

export interface CheckReport {
  status: ProbeStatus;
  exitCode: number;
  probes: ProbeResult[];
}

/** The Nagios plugin exit codes (Monitoring Plugins Development Guidelines). */
export const EXIT_CODES: Record<ProbeStatus, number> = { OK: 0, WARNING: 1, CRITICAL: 2, UNKNOWN: 3 };

/**
 * The overall status is the worst probe's, in the order of the Monitoring Plugins' max_state_alt:
 * CRITICAL > WARNING > UNKNOWN > OK. A probe that could not run because another failed is
 * UNKNOWN, so the failure that caused it decides the exit code.
 */
const SEVERITY: Record<ProbeStatus, number> = { OK: 0, UNKNOWN: 1, WARNING: 2, CRITICAL: 3 };

export function overallStatus(probes: readonly ProbeResult[]): ProbeStatus {
  let worst: ProbeStatus = 'OK';
  for (const probe of probes) if (SEVERITY[probe.status] > SEVERITY[worst]) worst = probe.status;
  return worst;
}

export function checkReport(probes: ProbeResult[]): CheckReport {
  const status = overallStatus(probes);
  return { status, exitCode: EXIT_CODES[status], probes };
}

export const ok = (name: string, detail: string): ProbeResult => ({ name, status: 'OK', detail, settings: [] });

/** A probe that could not run because `reason` (another probe failed, or nothing to probe). */
export const unknown = (name: string, reason: string): ProbeResult => ({ name, status: 'UNKNOWN', detail: reason, settings: [] });

const KNOWN_VARIABLES: ReadonlySet<string> = new Set(CONFIG_VARIABLES);
const VARIABLE_LIKE = /\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b/g;

/**
 * The settings an error names: the variables of a ConfigError's issues (only those), an error's own `setting`
 * (the Temporal connection errors carry one), and every configuration variable its message (or a
 * cause's) mentions, in order of appearance; empty when it names none.
 */
export function settingsNamedIn(error: unknown): string[] {
  const found: string[] = [];
  const add = (name: string) => {
    if (!found.includes(name)) found.push(name);
  };
  for (let e: unknown = error; e !== undefined && e !== null; e = (e as { cause?: unknown }).cause) {
    const issues = (e as { issues?: unknown }).issues;
    if (Array.isArray(issues)) {
      // A ConfigError lists exactly the variables at fault; its message also names the ones they relate to.
      for (const issue of issues as { variable?: unknown }[]) if (typeof issue.variable === 'string') add(issue.variable);
      continue;
    }
    const setting = (e as { setting?: unknown }).setting;
    if (typeof setting === 'string') add(setting);
    const message = e instanceof Error ? e.message : typeof e === 'string' ? e : '';
    for (const match of message.matchAll(VARIABLE_LIKE)) {
      if (KNOWN_VARIABLES.has(match[0]) || match[0].startsWith('TEMPORAL_')) add(match[0]);
    }
    if (!(e instanceof Error)) break;
  }
  return found;
}

/** The message of `error` and its causes, on one line (probe details are one line each). */
export function oneLine(error: unknown): string {
  const messages: string[] = [];
  for (let e: unknown = error; e !== undefined && e !== null; e = (e as { cause?: unknown }).cause) {
    const message = e instanceof Error ? e.message : String(e);
    if (!messages.some((seen) => seen.includes(message))) messages.push(message);
    if (!(e instanceof Error)) break;
  }
  return messages.join(': ').replace(/:\s*\n\s*/g, ': ').replace(/\s*\n\s*/g, '; ').trim();
}

/** A failed probe: CRITICAL, naming `settings` (or, when none are given, the ones the error names, else `fallback`). */
export function critical(name: string, error: unknown, options: { settings?: string[]; fallback?: string[]; remedy?: string } = {}): ProbeResult {
  const named = settingsNamedIn(error);
  const settings = options.settings ?? (named.length > 0 ? named : (options.fallback ?? []));
  return { name, status: 'CRITICAL', detail: oneLine(error), settings, ...(options.remedy ? { remedy: options.remedy } : {}) };
}

/** Rejects with a message naming `what` when `work` takes longer than `ms`: a probe must never hang the check. */
export async function within<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

import { drillReportKey, type BackupKind, type LayoutOptions } from '../layout.js';
import type { ApprovalState } from './approval.js';
import type { OverlayResult } from './overlay.js';

/**
 * The record of one restore drill or production restore (S28): what was restored from where,
 * who approved, how long each phase took (the measured RTO), every check with its expected and
 * actual value, and on failure the cause and the failing step. Stored as JSON (for machines:
 * the freshness watchdog, dashboards) and Markdown (for the people who improve the procedure)
 * beside the backup, in every repository the restore read from and in the local one.
 *
 * Pure and deterministic: the workflows build the report; an activity renders and stores it.
 */
export const REPORT_FORMAT = 1;

export type RestoreMode = 'drill' | 'restore';
export type RestoreOutcome = 'passed' | 'failed' | 'not-approved' | 'cancelled';
export type CheckKind = 'fingerprint' | 'assets' | 'latest-data' | 'sql' | 'http' | 'batch-resume' | 'foreign-key';

export interface CheckResult {
  kind: CheckKind;
  name: string;
  expected: string;
  actual: string;
  passed: boolean;
}

export interface PhaseTiming {
  phase: string;
  startedAt: string;
  durationMs: number;
}

/** An artifact of the selected backup as its manifest describes it: only keys, sizes, checksums. */
export interface ArtifactSummary {
  key: string;
  size: number;
  sha256: string;
  encryption: 'none' | 'openpgp';
  format: 'pg_dump-custom' | 'sql' | 'tar';
}

/** The facts of the selected backup that cross Temporal (the fingerprint stays in the manifest). */
export interface BackupSummary {
  id: string;
  env: string;
  kind: BackupKind;
  generatedAt: string;
  schemaVersion: string;
  artifacts: Partial<Record<'db' | 'globals' | 'assets', ArtifactSummary>>;
  assets?: { fileCount: number; bytes: number };
  /** A `critical`/`weekly-full` backup: the tables whose rows it holds (the rest is schema only). */
  dataTables?: string[];
}

export interface GlobalsPlan {
  /** Roles in the backup that the cluster does not have. */
  create: string[];
  /** Roles in the backup that exist: their attributes (and password) would be set from the backup. */
  change: string[];
  /** Roles never touched: the role the restore connects as. */
  skipped: string[];
}

/** The critical backup laid over the restored one (`--overlay`), and what the overlay found. */
export interface OverlayReport {
  backupId: string;
  kind: BackupKind;
  generatedAt: string;
  /** Set once the overlay committed: the replaced tables, every orphan, the constraints made NOT VALID. */
  result?: OverlayResult;
}

/** When a run decrypted its artifacts: a production Restore only after approval (issue 14). */
export interface DecryptionRecord {
  finishedAt: string;
  beforeApproval: boolean;
  host: string;
}

export interface RestoreReport {
  format: typeof REPORT_FORMAT;
  mode: RestoreMode;
  /** `<run start>-<workflow id>`: unique per run, sorts by time. */
  id: string;
  workflowId: string;
  env: string;
  outcome: RestoreOutcome;
  startedAt: string;
  finishedAt: string;
  repository?: string;
  backup?: BackupSummary;
  /** S24: the database and the files come from one backup, so their points in time match. */
  generation?: { backupId: string; generatedAt: string; database?: string; assets?: string };
  target: { database?: string; assetDir?: string; kept: boolean };
  approvals: ApprovalState & { preApproved: boolean };
  globals?: GlobalsPlan & { applied: boolean };
  overlay?: OverlayReport;
  /** The host (WORKER_HOST_ID) that held the run's files, the hosts lost before it, and when it decrypted. */
  host?: string;
  hostsLost?: string[];
  decryption?: DecryptionRecord;
  phases: PhaseTiming[];
  rto: { measuredMs: number; targetMs: number; withinTarget: boolean; excludes: string };
  checks: CheckResult[];
  failure?: { step: string; cause: string };
  cancellation?: { by?: string; reason?: string };
}

/** Phases that are not part of the recovery time: people deciding, and bookkeeping after it. */
const NOT_RTO = new Set(['awaiting-approval', 'reporting', 'cleaning-up']);

const HOUR = 3_600_000;

/** S9: normal data back within 4 h, important data (critical, weekly-full) within 2 h. */
export function rtoTargetMs(kind: BackupKind | undefined): number {
  return kind === 'critical' || kind === 'weekly-full' ? 2 * HOUR : 4 * HOUR;
}

export function measuredRto(phases: readonly PhaseTiming[], kind: BackupKind | undefined): RestoreReport['rto'] {
  const measuredMs = phases.filter((p) => !NOT_RTO.has(p.phase)).reduce((sum, p) => sum + p.durationMs, 0);
  const targetMs = rtoTargetMs(kind);
  return { measuredMs, targetMs, withinTarget: measuredMs <= targetMs, excludes: [...NOT_RTO].join(', ') };
}

/** `20261201T010000Z-drill-prod-42`: a safe storage-key segment from the run's start and workflow id. */
export function reportIdFor(workflowId: string, startedAt: Date): string {
  const stamp = startedAt.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
  const safe = workflowId.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^[._-]+/, '').slice(0, 120);
  return `${stamp}-${safe || 'run'}`;
}

/** Drill reports go to `meta/drills/`, production restores to `meta/restores/`, beside the backup. */
export function reportKey(layout: Pick<LayoutOptions, 'env'>, mode: RestoreMode, backupId: string | undefined, reportId: string, extension: 'json' | 'md'): string {
  const backup = backupId ?? 'no-backup-selected';
  return mode === 'drill'
    ? drillReportKey(layout, backup, reportId, extension)
    : `${layout.env}/meta/restores/${backup}/${reportId}.${extension}`;
}

export function renderMarkdown(report: RestoreReport): string {
  const title = report.mode === 'drill' ? 'Restore drill' : 'Production restore';
  const lines: string[] = [
    `# ${title} ${report.id}: ${report.outcome.toUpperCase()}`,
    '',
    `- Workflow: \`${report.workflowId}\` (env ${report.env})`,
    `- Started ${report.startedAt}, finished ${report.finishedAt}`,
    `- Backup: ${report.backup ? `\`${report.backup.id}\` (${report.backup.kind}, generated at ${report.backup.generatedAt}, schema ${report.backup.schemaVersion})` : 'none selected'}` +
      (report.repository ? ` from repository \`${report.repository}\`` : ''),
    `- Restored into: database ${report.target.database ? `\`${report.target.database}\`` : '-'}` +
      (report.target.assetDir ? `, files in \`${report.target.assetDir}\`` : '') +
      (report.target.database ? (report.target.kept ? ' (kept)' : ' (dropped after the checks)') : ''),
  ];
  if (report.generation) {
    lines.push(
      `- Same generation (S24): database and files both from backup \`${report.generation.backupId}\` generated at ${report.generation.generatedAt}`,
    );
  }
  if (report.host) {
    lines.push(`- Host: \`${report.host}\`` + (report.hostsLost?.length ? ` (after losing ${report.hostsLost.map((h) => `\`${h}\``).join(', ')})` : ''));
  }
  if (report.decryption) {
    lines.push(`- Decrypted: finished ${report.decryption.finishedAt} on \`${report.decryption.host}\`, ${report.decryption.beforeApproval ? 'BEFORE approval' : 'after approval'}`);
  }
  lines.push(
    `- Measured RTO: ${formatMs(report.rto.measuredMs)} (target ${formatMs(report.rto.targetMs)}: ${report.rto.withinTarget ? 'met' : 'MISSED'}; excludes ${report.rto.excludes})`,
  );
  if (report.failure) {
    lines.push('', '## Failure', '', `- Failing step: **${report.failure.step}**`, `- Cause: ${oneLine(report.failure.cause)}`);
  }
  if (report.cancellation) {
    lines.push('', '## Cancelled', '', `- By: ${report.cancellation.by ?? 'unknown'}`, `- Reason: ${report.cancellation.reason ?? '-'}`);
  }
  lines.push('', '## Approvals', '', `Rule: ${report.approvals.preApproved ? 'pre-approved drill (DRILL_PREAPPROVED)' : report.approvals.rule}`, '');
  if (report.approvals.accepted.length + report.approvals.ignored.length === 0) lines.push('No approval signal received.');
  for (const a of report.approvals.accepted) {
    lines.push(`- accepted: ${a.approver} (${a.role ?? '?'}${a.key ? `, signed by key ${a.key}` : ''}) at ${a.at}${a.comment ? `: ${oneLine(a.comment)}` : ''}`);
  }
  for (const a of report.approvals.ignored) lines.push(`- ignored: ${a.approver} at ${a.at}: ${a.ignoredBecause ?? ''}`);
  if (report.globals) {
    lines.push(
      '',
      '## Roles (globals)',
      '',
      `- ${report.globals.applied ? 'Applied' : 'Not applied (not asked for)'}; would create: ${list(report.globals.create)}; would change: ${list(report.globals.change)}; never touched: ${list(report.globals.skipped)}`,
    );
  }
  if (report.overlay) lines.push('', ...renderOverlay(report.overlay));
  lines.push('', '## Phases', '', '| Phase | Started | Duration |', '|---|---|---|');
  for (const p of report.phases) lines.push(`| ${p.phase} | ${p.startedAt} | ${formatMs(p.durationMs)} |`);
  lines.push('', '## Checks', '');
  if (report.checks.length === 0) {
    lines.push('No checks ran.');
  } else {
    lines.push('| Result | Check | Expected | Actual |', '|---|---|---|---|');
    for (const c of report.checks) lines.push(`| ${c.passed ? 'pass' : '**FAIL**'} | ${c.kind}: ${cell(c.name)} | ${cell(c.expected)} | ${cell(c.actual)} |`);
  }
  lines.push('', '## Response', '', '_To be filled in by the on-call engineer: what was done, and what changes in the procedure (S28)._', '');
  return lines.join('\n');
}

function renderOverlay(overlay: OverlayReport): string[] {
  const lines = [
    '## Overlay of the important tables (6-hour RPO)',
    '',
    `- Laid over: \`${overlay.backupId}\` (${overlay.kind}, generated at ${overlay.generatedAt}); the other tables are as in the backup above`,
  ];
  if (!overlay.result) return [...lines, '- Not applied (the run ended before the overlay committed)'];
  const { result } = overlay;
  lines.push(`- Tables replaced: ${list(result.dataTables)}`);
  lines.push(`- Foreign keys restored NOT VALID (rows point outside what was restored): ${list(result.notValidConstraints)}`);
  lines.push(`- Orphan rows: ${result.orphanCount}${result.orphanCount > result.orphans.length ? ` (the first ${result.orphans.length} listed)` : ''}`);
  if (result.orphans.length > 0) {
    lines.push('', '| Constraint | Row | Points at (missing) |', '|---|---|---|');
    for (const o of result.orphans) lines.push(`| ${cell(o.constraint)} | ${cell(o.row)} | ${cell(o.references)} |`);
  }
  return lines;
}

function formatMs(ms: number): string {
  const seconds = Math.round(ms / 1000);
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m${String(s).padStart(2, '0')}s` : `${m}m${String(s).padStart(2, '0')}s`;
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ');
}

function cell(text: string): string {
  return oneLine(text).replace(/\|/g, '\\|');
}

function list(items: readonly string[]): string {
  return items.length ? items.join(', ') : '-';
}

import type { ClientBase } from 'pg';
import type { FingerprintEntry, Manifest } from '../manifest.js';
import { computeFingerprint, fingerprintTablesOf, listUserTables, qualifiedName } from '../pg/fingerprint.js';
import type { NamedQuery } from './checks-file.js';
import type { CheckResult } from './report.js';

/**
 * The checks run on a restored database (S26, S27) and against the application (S21, S25).
 * Each returns CheckResults with the expected and the actual value as text, so a report shows
 * exactly what differed. A check whose query fails is a failed check (the error is its actual
 * value), never an exception that hides the other checks' results.
 */

/**
 * S26: the fingerprint the backup took in the dump's own snapshot, recomputed on the restored
 * database with the same tables and columns: every row count and money total must be EQUAL. When
 * the fingerprint covered every table, a restored table it does not name is a difference too;
 * except in a `critical`/`weekly-full` backup (`database.dataTables`), whose other tables are
 * definitions only, and except `coveredTables`, whose rows another entry counts (the partitions
 * of a partitioned important table laid over a daily).
 */
export interface FingerprintExpectation extends Pick<Manifest, 'fingerprint' | 'fingerprintScope' | 'imported'> {
  database?: { dataTables?: readonly string[] };
  coveredTables?: readonly string[];
}

export async function fingerprintChecks(client: ClientBase, manifest: FingerprintExpectation): Promise<CheckResult[]> {
  const restoredTables = await listUserTables(client);
  if (manifest.imported) return recordedRowCounts(manifest.imported.file, await computeFingerprint(client, restoredTables));
  const present = new Set((await listUserTables(client, { partitioned: true })).map(qualifiedName));
  const recorded = fingerprintTablesOf(manifest.fingerprint).filter((table) => present.has(qualifiedName(table)));
  const actual = await computeFingerprint(client, recorded);
  if (manifest.fingerprintScope === 'every-table' && !manifest.database?.dataTables) {
    const named = new Set([...manifest.fingerprint.map((entry) => entry.table), ...(manifest.coveredTables ?? [])]);
    const extra = restoredTables.filter((table) => !named.has(qualifiedName(table)));
    actual.push(...(await computeFingerprint(client, extra)));
  }
  return compareFingerprints(manifest.fingerprint, actual);
}

export function compareFingerprints(expected: readonly FingerprintEntry[], actual: readonly FingerprintEntry[]): CheckResult[] {
  const actualByTable = new Map(actual.map((entry) => [entry.table, entry]));
  const results: CheckResult[] = expected.map((entry) => {
    const restored = actualByTable.get(entry.table);
    const want = describeEntry(entry);
    const got = restored ? describeEntry(restored) : 'table missing';
    return { kind: 'fingerprint', name: entry.table, expected: want, actual: got, passed: want === got };
  });
  const expectedTables = new Set(expected.map((entry) => entry.table));
  for (const entry of actual) {
    if (!expectedTables.has(entry.table)) {
      results.push({ kind: 'fingerprint', name: entry.table, expected: 'table absent (not in the backup)', actual: describeEntry(entry), passed: false });
    }
  }
  return results;
}

/**
 * An imported backup (`erp4-backup import`) has no fingerprint of its source: nothing to demand.
 * The restored row counts and totals are recorded, each marked as not verified against the source.
 */
function recordedRowCounts(file: string, restored: readonly FingerprintEntry[]): CheckResult[] {
  const expected = `not verified against its source: imported from ${file}, no fingerprint`;
  return restored.map((entry) => ({ kind: 'fingerprint', name: entry.table, expected, actual: describeEntry(entry), passed: true }));
}

function describeEntry(entry: FingerprintEntry): string {
  const sums = Object.entries(entry.sums)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([column, sum]) => `sum(${column}) ${sum}`);
  return [`rows ${entry.rowCount}`, ...sums].join('; ');
}

/**
 * S27 "the newest data is present": the configured query's first value (a timestamp) must be no
 * older than the backup's generated_at minus the RPO of its kind.
 */
export async function latestDataCheck(client: ClientBase, query: string, generatedAt: string, rpoMs: number): Promise<CheckResult> {
  const oldestAllowed = new Date(Date.parse(generatedAt) - rpoMs);
  const expected = `>= ${oldestAllowed.toISOString()} (generated_at ${generatedAt} minus RPO ${rpoMs / 3_600_000} h)`;
  const name = 'DRILL_LATEST_DATA_QUERY';
  try {
    const value: unknown = (await readOnly(client, query)).rows[0]?.[0];
    const newest = value instanceof Date ? value : typeof value === 'string' ? new Date(value) : undefined;
    if (!newest || Number.isNaN(newest.getTime())) {
      return { kind: 'latest-data', name, expected, actual: `no timestamp (got ${JSON.stringify(value ?? null)})`, passed: false };
    }
    return { kind: 'latest-data', name, expected, actual: newest.toISOString(), passed: newest >= oldestAllowed };
  } catch (error) {
    return { kind: 'latest-data', name, expected, actual: `query failed: ${(error as Error).message}`, passed: false };
  }
}

/** S26: the user's named checks (DRILL_CHECKS_FILE): one row each, `expected` equal to `actual`. */
export async function sqlChecks(client: ClientBase, checks: readonly NamedQuery[]): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const check of checks) {
    try {
      const result = await readOnly(client, check.sql);
      const columns = result.fields.map((f) => f.name);
      const expectedAt = columns.indexOf('expected');
      const actualAt = columns.indexOf('actual');
      if (result.rows.length !== 1 || expectedAt < 0 || actualAt < 0) {
        results.push({
          kind: 'sql',
          name: check.name,
          expected: 'one row with columns expected, actual',
          actual: `${result.rows.length} row(s) with columns ${columns.join(', ') || '(none)'}`,
          passed: false,
        });
        continue;
      }
      const row = result.rows[0]!;
      const expected = asText(row[expectedAt]);
      const actual = asText(row[actualAt]);
      results.push({ kind: 'sql', name: check.name, expected, actual, passed: expected === actual });
    } catch (error) {
      results.push({ kind: 'sql', name: check.name, expected: 'the query to run', actual: `query failed: ${(error as Error).message}`, passed: false });
    }
  }
  return results;
}

/**
 * S27 "batch jobs can resume": the configured query returns one row per batch job with the
 * columns `job` and `resumable` (boolean); it passes when there is at least one job and every
 * job can resume.
 */
export async function batchResumeCheck(client: ClientBase, query: string): Promise<CheckResult> {
  const name = 'DRILL_BATCH_RESUME_QUERY';
  const expected = 'at least one job, every job resumable';
  try {
    const result = await readOnly(client, query);
    const columns = result.fields.map((f) => f.name);
    const jobAt = columns.indexOf('job');
    const resumableAt = columns.indexOf('resumable');
    if (jobAt < 0 || resumableAt < 0) {
      return { kind: 'batch-resume', name, expected: 'columns job, resumable', actual: `columns ${columns.join(', ') || '(none)'}`, passed: false };
    }
    const stuck = result.rows.filter((row) => row[resumableAt] !== true).map((row) => asText(row[jobAt]));
    const actual =
      result.rows.length === 0
        ? 'no jobs'
        : stuck.length === 0
          ? `${result.rows.length} job(s), all resumable`
          : `cannot resume: ${stuck.join(', ')}`;
    return { kind: 'batch-resume', name, expected, actual, passed: result.rows.length > 0 && stuck.length === 0 };
  } catch (error) {
    return { kind: 'batch-resume', name, expected, actual: `query failed: ${(error as Error).message}`, passed: false };
  }
}

/**
 * S21/S25: each URL must answer 2xx (`/health` and the main endpoints of the app on the restored
 * data). Reports name a URL without its query string, which may carry a token.
 */
export async function smokeChecks(urls: readonly string[], signal?: AbortSignal): Promise<CheckResult[]> {
  return Promise.all(
    urls.map(async (url): Promise<CheckResult> => {
      const started = Date.now();
      const parsed = new URL(url);
      const name = `GET ${parsed.origin}${parsed.pathname}${parsed.search ? '?...' : ''}`;
      try {
        const timeout = AbortSignal.timeout(15_000);
        const response = await fetch(url, { signal: signal ? AbortSignal.any([signal, timeout]) : timeout, redirect: 'manual' });
        await response.body?.cancel();
        const actual = `${response.status} ${response.statusText} in ${Date.now() - started} ms`;
        return { kind: 'http', name, expected: '2xx', actual, passed: response.status >= 200 && response.status < 300 };
      } catch (error) {
        return { kind: 'http', name, expected: '2xx', actual: `no answer: ${(error as Error).message}`, passed: false };
      }
    }),
  );
}

/**
 * User queries run read-only, with a statement timeout: a check may look, never change what it
 * checks. Array rows keep duplicate column names apart.
 */
async function readOnly(client: ClientBase, sql: string) {
  await client.query('BEGIN READ ONLY');
  try {
    await client.query("SET LOCAL statement_timeout = '10min'");
    const result = await client.query<unknown[]>({ text: sql, rowMode: 'array' });
    return result;
  } finally {
    await client.query('ROLLBACK');
  }
}

function asText(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  if (value instanceof Date) return value.toISOString();
  return String(value);
}

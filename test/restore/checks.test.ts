import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgClientConfig } from '../../src/pg/connection.js';
import { batchResumeCheck, latestDataCheck, smokeChecks, sqlChecks } from '../../src/restore/checks.js';
import { harnessDb } from '../helpers/drill.js';
import { services } from '../helpers/services.js';

// The drill's checks must be able to FAIL, with the expected and actual values in the report.
// Run read-only against the shared sample database.
describe('restore checks on a real database', () => {
  const s = services();
  const client = new pg.Client(pgClientConfig(harnessDb(s)));
  beforeAll(() => client.connect());
  afterAll(() => client.end());

  it('user SQL checks: equal passes; a difference, a wrong shape and a failing query fail; nothing can write', async () => {
    const jobs = async () => (await client.query<{ n: number }>('SELECT count(*)::int AS n FROM batch_jobs')).rows[0]!.n;
    const jobsBefore = await jobs();
    const results = await sqlChecks(client, [
      { name: 'customers', sql: 'SELECT 200 AS expected, count(*) AS actual FROM customers' },
      { name: 'off_by_one', sql: 'SELECT 2 AS expected, count(*) AS actual FROM (VALUES (1), (2), (3)) AS v' },
      { name: 'shape', sql: 'SELECT 1 AS wanted, 1 AS got' },
      { name: 'broken', sql: 'SELECT 1 AS expected, count(*) AS actual FROM no_such_table' },
      { name: 'sneaky', sql: 'DELETE FROM batch_jobs RETURNING 1 AS expected, 1 AS actual' },
    ]);
    expect(results.map((r) => [r.name, r.passed, r.expected, r.actual])).toEqual([
      ['customers', true, '200', '200'],
      ['off_by_one', false, '2', '3'],
      ['shape', false, 'one row with columns expected, actual', '1 row(s) with columns wanted, got'],
      ['broken', false, 'the query to run', 'query failed: relation "no_such_table" does not exist'],
      ['sneaky', false, 'the query to run', 'query failed: cannot execute DELETE in a read-only transaction'],
    ]);
    expect(await jobs()).toBe(jobsBefore);
  });

  it('latest data: the newest row must be no older than generated_at minus the RPO', async () => {
    const query = 'SELECT max(issued_at) FROM invoices';
    const newest = (await client.query<{ max: Date }>(query)).rows[0]!.max;
    const day = 86_400_000;
    const fresh = await latestDataCheck(client, query, new Date(newest.getTime() + day / 2).toISOString(), day);
    expect(fresh).toMatchObject({ kind: 'latest-data', passed: true, actual: newest.toISOString() });
    const stale = await latestDataCheck(client, query, new Date(newest.getTime() + 2 * day).toISOString(), day);
    expect(stale).toMatchObject({ passed: false, expected: `>= ${new Date(newest.getTime() + day).toISOString()} (generated_at ${new Date(newest.getTime() + 2 * day).toISOString()} minus RPO 24 h)` });
    expect(await latestDataCheck(client, 'SELECT max(issued_at) FROM invoices WHERE false', newest.toISOString(), day)).toMatchObject({ passed: false, actual: 'no timestamp (got null)' });
  });

  it('batch resume: every job must be resumable, and there must be jobs', async () => {
    expect(await batchResumeCheck(client, `SELECT name AS job, status <> 'running' AS resumable FROM batch_jobs`)).toMatchObject({ passed: true, actual: '4 job(s), all resumable' });
    const stuck = await batchResumeCheck(client, `SELECT name AS job, status = 'succeeded' AS resumable FROM batch_jobs ORDER BY id`);
    expect(stuck).toMatchObject({ passed: false, actual: 'cannot resume: 督促メール送信, 在庫同期' });
    expect(await batchResumeCheck(client, 'SELECT name AS job, true AS resumable FROM batch_jobs WHERE false')).toMatchObject({ passed: false, actual: 'no jobs' });
  });

  it('HTTP smoke checks: 2xx passes; an error status or no answer fails; a query string never reaches the report', async () => {
    const server = createServer((request, response) => response.writeHead(request.url?.startsWith('/health') ? 200 : 503).end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const results = await smokeChecks([`${base}/health?token=s3cret`, `${base}/api/invoices`, 'http://127.0.0.1:1/health']);
      expect(results.map((r) => [r.name, r.passed])).toEqual([
        [`GET ${base}/health?...`, true],
        [`GET ${base}/api/invoices`, false],
        ['GET http://127.0.0.1:1/health', false],
      ]);
      expect(results[1]!.actual).toMatch(/^503 Service Unavailable in \d+ ms$/);
      expect(results[2]!.actual).toMatch(/^no answer: /);
      expect(JSON.stringify(results)).not.toContain('s3cret');
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

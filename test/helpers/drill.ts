import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { WorkflowHandle } from '@temporalio/client';
import pg from 'pg';
import { pgClientConfig, type DbConnection } from '../../src/pg/connection.js';
import { restoreStatusQuery, type RestorePhase, type RestoreStatus } from '../../workflows/messages.js';
import type { Services } from './services.js';

/** The superuser connection of the harness PostgreSQL, to `database`. */
export function harnessDb(s: Services, database = s.postgres.sampleDb): DbConnection {
  return { host: s.postgres.host, port: s.postgres.port, user: s.postgres.user, password: s.postgres.password, database };
}

/** Names of the databases matching a LIKE pattern. */
export async function databasesLike(s: Services, pattern: string): Promise<string[]> {
  const client = new pg.Client(pgClientConfig(harnessDb(s), 'postgres'));
  await client.connect();
  try {
    return (await client.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname LIKE $1 ORDER BY 1', [pattern])).rows.map((r) => r.datname);
  } finally {
    await client.end();
  }
}

/**
 * Writes invoices with their lines, one transaction each (the invoice's amount is the sum of its
 * lines, issued now), until stopped: the concurrent writer of the consistency acceptance tests.
 */
export function startInvoiceWriter(db: DbConnection): { stop(): Promise<number> } {
  let running = true;
  let written = 0;
  const loop = (async () => {
    const client = new pg.Client(pgClientConfig(db));
    await client.connect();
    try {
      while (running) {
        await client.query('BEGIN');
        const invoice = await client.query<{ id: string }>(`INSERT INTO invoices (customer_id, amount, issued_at) VALUES (1 + $1 % 200, 0, now()) RETURNING id`, [written]);
        const id = invoice.rows[0]!.id;
        await client.query(
          `INSERT INTO invoice_lines (invoice_id, line_no, product_id, quantity, unit_price, amount)
           SELECT $1, l, p.id, l, p.unit_price, l * p.unit_price FROM generate_series(1, 2) AS l JOIN products p ON p.id = l`,
          [id],
        );
        await client.query('UPDATE invoices SET amount = (SELECT sum(amount) FROM invoice_lines WHERE invoice_id = $1) WHERE id = $1', [id]);
        await client.query('COMMIT');
        written += 1;
      }
    } finally {
      await client.end();
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return written;
    },
  };
}

/**
 * A stand-in for the operators' webhook (Slack-compatible JSON posted to `/notify`) and for the
 * application a drill smoke-checks (`/health` answers 200).
 */
export async function startNoticeReceiver(): Promise<{ url: string; notices: Array<Record<string, string>>; close(): Promise<void> }> {
  const notices: Array<Record<string, string>> = [];
  const server: Server = createServer((request, response) => {
    if (request.method === 'GET' && request.url === '/health') {
      response.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
      return;
    }
    if (request.method === 'POST' && request.url === '/notify') {
      let body = '';
      request.setEncoding('utf8');
      request.on('data', (chunk: string) => (body += chunk));
      request.on('end', () => {
        notices.push(JSON.parse(body) as Record<string, string>);
        response.writeHead(200).end('ok');
      });
      return;
    }
    response.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    notices,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Polls the `status` query until `done` holds; fails when the workflow ends first or after `timeoutMs`. */
export async function waitForStatus(handle: WorkflowHandle, done: (status: RestoreStatus) => boolean, timeoutMs = 60_000): Promise<RestoreStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: RestoreStatus | undefined;
  while (Date.now() < deadline) {
    try {
      last = await handle.query(restoreStatusQuery);
      if (done(last)) return last;
    } catch {
      // The first workflow task has not run yet.
    }
    await sleep(100);
  }
  throw new Error(`workflow ${handle.workflowId} did not reach the expected status; last: ${JSON.stringify(last)}`);
}

export const inPhase = (phase: RestorePhase) => (status: RestoreStatus) => status.phase === phase;

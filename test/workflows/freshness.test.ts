import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { readCatalog } from '../../src/catalog.js';
import { drillReportKey, manifestKey } from '../../src/layout.js';
import type { Repository } from '../../src/storage/repository.js';
import { Freshness, NightlyBackup } from '../../workflows/index.js';
import type { FreshnessResult, NightlyBackupResult } from '../../workflows/messages.js';
import { productEnv, startProduct, type RunningProduct } from '../helpers/product.js';
import { services } from '../helpers/services.js';

interface Notice {
  text: string;
  event: string;
  incident: string;
  [field: string]: string;
}

/** A Slack-compatible webhook receiver: records every JSON body it is sent. */
async function startWebhookReceiver(): Promise<{ server: Server; url: string; notices: Notice[] }> {
  const notices: Notice[] = [];
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      notices.push(JSON.parse(body) as Notice);
      response.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/erp4`, notices };
}

// The watchdog against the real dev server, the real local repository and a real HTTP receiver.
describe('Freshness: one alert per incident, one recovery message', () => {
  const s = services();
  let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;
  let product: RunningProduct;
  let local: Repository;
  let first: NightlyBackupResult;
  let runs = 0;

  const freshness = (now?: Date): Promise<FreshnessResult> =>
    product.client.workflow.execute(Freshness, {
      taskQueue: product.config.temporal.taskQueue,
      workflowId: `freshness-test-${process.pid}-${++runs}`,
      args: [now ? { now: now.toISOString() } : {}],
    });
  const backup = (): Promise<NightlyBackupResult> =>
    product.client.workflow.execute(NightlyBackup, {
      taskQueue: product.config.temporal.taskQueue,
      workflowId: `freshness-backup-${process.pid}-${Date.now()}`,
      args: [{ kind: 'daily' }],
    });

  beforeAll(async () => {
    receiver = await startWebhookReceiver();
    const env = await productEnv(s, 'freshness', { assets: false, env: { NOTIFY_WEBHOOK_URL: receiver.url } });
    product = await startProduct(s, env);
    local = product.runtime.repositories.get('local')!;
    // A passed drill, in the shape RestoreDrill writes its report (src/restore/report.ts), so
    // only the backup checks can fire below.
    const finishedAt = new Date().toISOString();
    await local.putBytes(
      drillReportKey({ env: 'test' }, '20261101T170000Z-daily', '20261102T010000Z-drill', 'json'),
      Buffer.from(JSON.stringify({ format: 1, mode: 'drill', outcome: 'passed', startedAt: finishedAt, finishedAt })),
    );
    first = await backup();
  });
  afterAll(async () => {
    await product?.close();
    await new Promise((resolve) => receiver?.server.close(resolve));
  });
  beforeEach(() => {
    receiver.notices.length = 0;
  });

  it('is quiet while the newest backup is within its RPO', async () => {
    const result = await freshness();
    expect(result).toMatchObject({ findings: [], opened: [], recovered: [], open: [] });
    expect(receiver.notices).toEqual([]);
  });

  it('with the clock past the RPO: exactly one alert, however often it runs; back in time: one recovery', async () => {
    const generatedAt = Date.parse(first.generatedAt);
    const late = await freshness(new Date(generatedAt + 25 * 3_600_000));
    expect(late.opened).toEqual(['backup-stale:daily']);
    expect(receiver.notices).toHaveLength(1);
    expect(receiver.notices[0]).toMatchObject({ event: 'alert', env: 'test', incident: 'backup-stale:daily', newest_backup: first.backupId, age: '1d01h' });
    expect(receiver.notices[0]?.text).toMatch(/^\[erp4-backup test\] ALERT newest whole-database backup .* is 1d01h old, beyond the RPO of 1d00h/);

    const later = await freshness(new Date(generatedAt + 25.5 * 3_600_000));
    expect(later).toMatchObject({ opened: [], recovered: [], open: ['backup-stale:daily'] });
    expect(receiver.notices).toHaveLength(1);

    const recovered = await freshness();
    expect(recovered).toMatchObject({ opened: [], recovered: ['backup-stale:daily'], open: [] });
    expect(receiver.notices).toHaveLength(2);
    expect(receiver.notices[1]).toMatchObject({ event: 'recovered', incident: 'backup-stale:daily' });
  });

  it('with the only backup deleted: exactly one alert; after a fresh backup: one recovery message', async () => {
    await local.delete(manifestKey(product.runtime.layout, first.backupId));
    expect((await readCatalog(local, 'test')).backups).toEqual([]);

    await freshness();
    await freshness();
    expect(receiver.notices).toHaveLength(1);
    expect(receiver.notices[0]).toMatchObject({ event: 'alert', incident: 'backup-stale:daily' });
    expect(receiver.notices[0]?.text).toContain('no complete whole-database backup in any repository');

    await backup();
    const result = await freshness();
    expect(result).toMatchObject({ opened: [], recovered: ['backup-stale:daily'], open: [] });
    expect(receiver.notices).toHaveLength(2);
    expect(receiver.notices[1]).toMatchObject({ event: 'recovered', incident: 'backup-stale:daily' });
    expect(receiver.notices[1]?.text).toContain('RECOVERED backup-stale:daily');
  });

  it('alerts once for a failed drill, with its cause', async () => {
    const finishedAt = new Date().toISOString();
    await local.putBytes(
      drillReportKey({ env: 'test' }, first.backupId, '20261201T010000Z-drill', 'json'),
      Buffer.from(JSON.stringify({ format: 1, mode: 'drill', outcome: 'failed', finishedAt, failure: { step: 'checks', cause: 'row count of public.invoices differs' } })),
    );
    await freshness();
    await freshness();
    expect(receiver.notices).toHaveLength(1);
    expect(receiver.notices[0]).toMatchObject({ event: 'alert', incident: 'drill-failed', cause: 'row count of public.invoices differs' });
  });
});

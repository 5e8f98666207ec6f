import { describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/manifest.js';
import { foreignKeyStatements, notValidStatement } from '../../src/pg/restore-scoped.js';
import { overlayRestoreList } from '../../src/restore/overlay.js';
import { chooseOverlay, overlayExpectation } from '../../src/restore/overlay-plan.js';
import { renderMarkdown, type RestoreReport } from '../../src/restore/report.js';

type Candidate = Parameters<typeof chooseOverlay>[0];
const backup = (id: string, generatedAt: string, extra: Partial<Candidate> = {}): Candidate => ({
  id,
  kind: id.endsWith('-daily') ? 'daily' : id.endsWith('-weekly-full') ? 'weekly-full' : 'critical',
  generatedAt,
  schemaVersion: '20261101_init',
  database: id.endsWith('-daily') ? { name: 'erp4', serverVersion: '15', pgDumpVersion: '15' } : { name: 'erp4', serverVersion: '15', pgDumpVersion: '15', tables: ['public.invoices'], dataTables: ['public.invoices'] },
  ...extra,
});
const daily = backup('20261126T170000Z-daily', '2026-11-26T17:00:01Z');
const critical = backup('20261126T230000Z-critical', '2026-11-26T23:00:01Z');
const weekly = backup('20261127T180000Z-weekly-full', '2026-11-27T18:00:01Z');
const later = backup('20261127T170000Z-daily', '2026-11-27T17:00:01Z');

describe('chooseOverlay', () => {
  it('takes the newest critical or weekly-full backup for latest-critical, or the named one', () => {
    expect(chooseOverlay(daily, 'latest-critical', [daily, critical, later, weekly]).id).toBe(weekly.id);
    expect(chooseOverlay(daily, 'latest-critical', [daily, critical, later]).id).toBe(critical.id);
    expect(chooseOverlay(daily, critical.id, [daily, critical, weekly]).id).toBe(critical.id);
  });

  it.each([
    ['a critical backup older than the daily', later, 'latest-critical', [daily, critical, later], `the critical backup ${critical.id} (generated at 2026-11-26T23:00:01Z) is not newer than ${later.id}`],
    ['no critical backup at all', daily, 'latest-critical', [daily], 'there is no complete critical or weekly-full backup'],
    ['a daily as the overlay', daily, later.id, [daily, later], `backup ${later.id} is a daily backup`],
    ['an unknown id', daily, '20261130T000000Z-critical', [daily], 'not found'],
    ['a selector that is neither', daily, 'newest', [daily], 'expected latest-critical or a backup id'],
    ['a critical backup as the base', critical, 'latest-critical', [critical, weekly], 'is itself a critical backup'],
    ['the older format without the schema', daily, 'latest-critical', [daily, backup('20261126T230000Z-critical', '2026-11-26T23:00:01Z', { database: { name: 'erp4', serverVersion: '15', pgDumpVersion: '15', tables: ['public.invoices'] } })], 'the older format'],
    ['another schema version', daily, 'latest-critical', [daily, { ...critical, schemaVersion: '20261126_add_column' }], 'has schema version 20261126_add_column'],
  ] as const)('refuses %s, naming it', (_, base, selector, backups, message) => {
    expect(() => chooseOverlay(base, selector, backups)).toThrow(message);
  });
});

describe('overlayExpectation', () => {
  it('expects the important tables as in the critical backup and the others as in the daily', () => {
    const entry = (table: string, rowCount: string) => ({ table, rowCount, sums: {} });
    const expected = overlayExpectation(
      { fingerprint: [entry('public.customers', '5'), entry('public.invoices', '6'), entry('public.payments_2026_11', '1')], fingerprintScope: 'every-table' },
      { fingerprint: [entry('public.invoices', '7'), entry('public.payments', '3')], database: { tables: ['public.invoices', 'public.payments'], dataTables: ['public.invoices', 'public.payments_2026_11'] } as Manifest['database'] },
    );
    expect(expected).toEqual({
      fingerprint: [entry('public.customers', '5'), entry('public.invoices', '7'), entry('public.payments', '3')],
      fingerprintScope: 'every-table',
      coveredTables: ['public.invoices', 'public.payments_2026_11'],
    });
  });
});

describe('pg_restore lists and scripts', () => {
  it('keeps only table rows and sequence values for an overlay', () => {
    const toc = [
      ';',
      '; Archive created at 2026-11-29 18:00:00 UTC',
      '215; 1259 16390 TABLE public invoices postgres',
      '3390; 0 16390 TABLE DATA public invoices postgres',
      '3391; 0 16400 TABLE DATA 会計 取引先 postgres',
      '3400; 0 0 SEQUENCE SET public invoices_id_seq postgres',
      '3250; 2606 16420 FK CONSTRAINT public invoices invoices_customer_id_fkey postgres',
    ].join('\n');
    expect(overlayRestoreList(toc)).toBe(
      '3390; 0 16390 TABLE DATA public invoices postgres\n3391; 0 16400 TABLE DATA 会計 取引先 postgres\n3400; 0 0 SEQUENCE SET public invoices_id_seq postgres\n',
    );
  });

  it('splits a foreign-key script into named statements and makes one NOT VALID', () => {
    const script = [
      '\\restrict abc',
      'SET statement_timeout = 0;',
      '--',
      '-- Name: invoices invoices_customer_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -',
      '--',
      '',
      'ALTER TABLE ONLY public.invoices',
      '    ADD CONSTRAINT invoices_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES public.customers(id) DEFERRABLE;',
      '',
      '',
      '--',
      '-- PostgreSQL database dump complete',
      '--',
      '',
      '\\unrestrict abc',
      '',
    ].join('\n');
    const statements = foreignKeyStatements(script);
    expect(statements).toEqual([
      {
        constraint: 'public.invoices invoices_customer_id_fkey',
        statement: 'ALTER TABLE ONLY public.invoices\n    ADD CONSTRAINT invoices_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES public.customers(id) DEFERRABLE;',
      },
    ]);
    expect(notValidStatement(statements[0]!.statement)).toMatch(/REFERENCES public\.customers\(id\) DEFERRABLE NOT VALID;$/);
  });
});

describe('report of an overlay', () => {
  it('lists every orphan and the NOT VALID constraints in the Markdown', () => {
    const report = {
      format: 1,
      mode: 'restore',
      id: 'r',
      workflowId: 'restore-1',
      env: 'prod',
      outcome: 'passed',
      startedAt: '2026-12-01T01:00:00.000Z',
      finishedAt: '2026-12-01T01:20:00.000Z',
      target: { kept: true },
      approvals: { rule: 'dual-control', satisfied: true, accepted: [], ignored: [], preApproved: false },
      overlay: {
        backupId: '20261126T230000Z-critical',
        kind: 'critical',
        generatedAt: '2026-11-26T23:00:01.000Z',
        result: {
          dataTables: ['public.invoices'],
          notValidConstraints: ['public.invoices.invoices_customer_id_fkey'],
          orphanCount: 1,
          orphans: [{ constraint: 'public.invoices.invoices_customer_id_fkey', row: '(id)=(7)', references: '(customer_id)=(100)' }],
        },
      },
      phases: [],
      rto: { measuredMs: 0, targetMs: 1, withinTarget: true, excludes: '' },
      checks: [],
    } as RestoreReport;
    const markdown = renderMarkdown(report);
    expect(markdown).toContain('- Laid over: `20261126T230000Z-critical` (critical, generated at 2026-11-26T23:00:01.000Z)');
    expect(markdown).toContain('- Foreign keys restored NOT VALID (rows point outside what was restored): public.invoices.invoices_customer_id_fkey');
    expect(markdown).toContain('| public.invoices.invoices_customer_id_fkey | (id)=(7) | (customer_id)=(100) |');
  });
});

import { describe, expect, it } from 'vitest';
import { measuredRto, renderMarkdown, reportIdFor, reportKey, type RestoreReport } from '../../src/restore/report.js';

const report: RestoreReport = {
  format: 1,
  mode: 'drill',
  id: '20261201T010000Z-drill-1',
  workflowId: 'drill-1',
  env: 'prod',
  outcome: 'failed',
  startedAt: '2026-12-01T01:00:00.000Z',
  finishedAt: '2026-12-01T01:20:00.000Z',
  repository: 's3',
  backup: {
    id: '20261126T170000Z-daily',
    env: 'prod',
    kind: 'daily',
    generatedAt: '2026-11-26T17:00:01.000Z',
    schemaVersion: '20250210010000_invoice_pdf_path',
    artifacts: {},
  },
  generation: { backupId: '20261126T170000Z-daily', generatedAt: '2026-11-26T17:00:01.000Z', database: 'prod/db/x.dump', assets: 'prod/assets/x.tar' },
  target: { database: 'drill_20261126t170000z_daily_abcdef', kept: false },
  approvals: {
    rule: 'single',
    satisfied: true,
    accepted: [
      { approver: 'alice', role: 'admin', comment: 'monthly | drill', at: '2026-12-01T01:05:00.000Z' },
      { approver: 'bob', role: 'management', key: 'SHA256:bobkey', at: '2026-12-01T01:06:00.000Z' },
    ],
    ignored: [{ approver: 'mallory', at: '2026-12-01T01:04:00.000Z', ignoredBecause: 'not configured' }],
    preApproved: false,
  },
  phases: [
    { phase: 'selecting', startedAt: '2026-12-01T01:00:00.000Z', durationMs: 1_000 },
    { phase: 'awaiting-approval', startedAt: '2026-12-01T01:00:01.000Z', durationMs: 300_000 },
    { phase: 'restoring-database', startedAt: '2026-12-01T01:05:01.000Z', durationMs: 600_000 },
  ],
  rto: { measuredMs: 601_000, targetMs: 14_400_000, withinTarget: true, excludes: 'awaiting-approval' },
  checks: [
    { kind: 'fingerprint', name: 'public.invoices', expected: 'rows 10', actual: 'rows 9', passed: false },
    { kind: 'sql', name: 'totals', expected: '1', actual: '1', passed: true },
  ],
  failure: { step: 'checking', cause: 'check failed:\nrows differ' },
};

describe('restore report', () => {
  it('measures the RTO without the approval wait and compares it with the S9 target of the kind', () => {
    expect(measuredRto(report.phases, 'daily')).toEqual({
      measuredMs: 601_000,
      targetMs: 4 * 3_600_000,
      withinTarget: true,
      excludes: 'awaiting-approval, reporting, cleaning-up',
    });
    expect(measuredRto([{ phase: 'restoring-database', startedAt: '', durationMs: 3 * 3_600_000 }], 'critical')).toMatchObject({
      targetMs: 2 * 3_600_000,
      withinTarget: false,
    });
  });

  it('names reports by run start and a storage-safe workflow id, beside the backup', () => {
    const id = reportIdFor('drill/prod: "monthly"', new Date('2026-12-01T01:00:00.123Z'));
    expect(id).toBe('20261201T010000Z-drill_prod___monthly_');
    expect(reportKey({ env: 'prod' }, 'drill', '20261126T170000Z-daily', id, 'json')).toBe(`prod/meta/drills/20261126T170000Z-daily/${id}.json`);
    expect(reportKey({ env: 'prod' }, 'restore', '20261126T170000Z-daily', id, 'md')).toBe(`prod/meta/restores/20261126T170000Z-daily/${id}.md`);
    expect(reportKey({ env: 'prod' }, 'drill', undefined, id, 'md')).toBe(`prod/meta/drills/no-backup-selected/${id}.md`);
  });

  it('renders the cause, the failing step, approvals, phases and every check in Markdown (S28)', () => {
    const markdown = renderMarkdown(report);
    expect(markdown).toContain('# Restore drill 20261201T010000Z-drill-1: FAILED');
    expect(markdown).toContain('- Failing step: **checking**');
    expect(markdown).toContain('- Cause: check failed: rows differ');
    expect(markdown).toContain('- accepted: alice (admin) at 2026-12-01T01:05:00.000Z: monthly | drill');
    expect(markdown).toContain('- accepted: bob (management, signed by key SHA256:bobkey) at 2026-12-01T01:06:00.000Z');
    expect(markdown).toContain('- ignored: mallory at 2026-12-01T01:04:00.000Z: not configured');
    expect(markdown).toContain('| restoring-database | 2026-12-01T01:05:01.000Z | 10m00s |');
    expect(markdown).toContain('| **FAIL** | fingerprint: public.invoices | rows 10 | rows 9 |');
    expect(markdown).toContain('- Same generation (S24): database and files both from backup `20261126T170000Z-daily`');
    expect(markdown).toContain('## Response');
  });

  it('says on which host it ran and when it decrypted, before or after approval (issue 14)', () => {
    const markdown = renderMarkdown({
      ...report,
      host: 'backup-2-0a1b2c3d',
      hostsLost: ['backup-1-9f8e7d6c'],
      decryption: { finishedAt: '2026-12-01T01:05:01.000Z', beforeApproval: false, host: 'backup-2-0a1b2c3d' },
    });
    expect(markdown).toContain('- Host: `backup-2-0a1b2c3d` (after losing `backup-1-9f8e7d6c`)');
    expect(markdown).toContain('- Decrypted: finished 2026-12-01T01:05:01.000Z on `backup-2-0a1b2c3d`, after approval');
    expect(renderMarkdown(report)).not.toContain('- Decrypted:');
  });
});

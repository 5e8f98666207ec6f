import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { DASHBOARD_FILE, RULES_FILE, RULES_TEST_FILE, dashboardExpressions, metricNamesIn, ruleExpressions } from '../helpers/promql.js';

// promtool comes with the Debian package prometheus (scripts/provision.sh installs it).
function promtool(...args: string[]) {
  const result = spawnSync('promtool', args, { encoding: 'utf8' });
  if (result.error) throw new Error(`promtool (Debian package prometheus) cannot run: ${result.error.message}`);
  return { status: result.status, output: result.stdout + result.stderr };
}

describe(RULES_FILE, () => {
  it('is valid for promtool check rules', () => {
    const { status, output } = promtool('check', 'rules', RULES_FILE);
    expect(output).toContain(`SUCCESS: ${ruleExpressions().size} rules found`);
    expect(status).toBe(0);
  });

  it("passes promtool's unit tests, in which every alert fires at least once", () => {
    const { status, output } = promtool('test', 'rules', RULES_TEST_FILE);
    expect(output).toContain('SUCCESS');
    expect(status).toBe(0);
    const tests = parse(readFileSync(RULES_TEST_FILE, 'utf8')) as { tests: Array<{ alert_rule_test: Array<{ alertname: string; exp_alerts: unknown[] }> }> };
    const fired = new Set(tests.tests.flatMap((test) => test.alert_rule_test.filter((t) => t.exp_alerts.length > 0).map((t) => t.alertname)));
    expect([...fired].sort()).toEqual([...ruleExpressions().keys()].sort());
  });
});

describe(DASHBOARD_FILE, () => {
  const dir = mkdtempSync(join(tmpdir(), 'erp4-dashboard-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('queries only valid PromQL (checked by promtool as recording rules)', () => {
    const expressions = [...dashboardExpressions().values()];
    expect(expressions.length).toBeGreaterThan(8);
    const file = join(dir, 'dashboard.rules.yml');
    writeFileSync(file, stringify({ groups: [{ name: 'dashboard', rules: expressions.map((expr, i) => ({ record: `dashboard:query_${i}`, expr })) }] }));
    const { status, output } = promtool('check', 'rules', file);
    expect(output).toContain(`SUCCESS: ${expressions.length} rules found`);
    expect(status).toBe(0);
  });

  it('shows backup age, size and duration per kind, drill outcomes and the RTO over time', () => {
    const used = new Set([...dashboardExpressions().values()].flatMap(metricNamesIn));
    for (const name of ['erp4_backup_newest_timestamp_seconds', 'erp4_backup_size_bytes', 'erp4_backup_duration_seconds', 'erp4_drill_runs_total', 'erp4_drill_rto_seconds']) {
      expect(used, name).toContain(name);
    }
  });
});

describe("the README's alert examples", () => {
  const readme = readFileSync('README.md', 'utf8');
  const squash = (text: string) => text.replace(/\s+/g, ' ').trim();
  const stale = [...readme.matchAll(/```promql\n([\s\S]*?)```/g)].map((m) => m[1]!);
  const absent = /`(absent\([^`]*\))`/.exec(readme)?.[1];

  it('are the stale-backup rule that promtool tests, and an absent() rule on the metric it tests', () => {
    expect(stale).toHaveLength(1);
    expect(squash(ruleExpressions().get('Erp4BackupStaleDaily')!)).toContain(squash(stale[0]!));
    expect(absent).toBe('absent(erp4_freshness_objective_seconds{env="prod"})');
    expect(ruleExpressions().get('Erp4BackupMetricsAbsent')).toMatch(/^absent\(erp4_freshness_objective_seconds\{/);
  });
});

describe('metricNamesIn', () => {
  it('finds the selected metrics, not functions, keywords, labels, strings or durations', () => {
    expect(
      metricNamesIn(
        'time() - max by (env, kind) (a_seconds{kind=~"daily|b_label"}) > on (env) group_left max(b_total[5m] offset 1h) or c unless ignoring (x) rate(d:sum[1d]) > 1e3',
      ),
    ).toEqual(['a_seconds', 'b_total', 'c', 'd:sum']);
  });
});

import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

export const RULES_FILE = 'deploy/prometheus/erp4-backup.rules.yml';
export const RULES_TEST_FILE = 'deploy/prometheus/erp4-backup.rules.test.yml';
export const DASHBOARD_FILE = 'deploy/grafana/erp4-backup.json';

const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'inf', 'nan']);

/**
 * The metric names a PromQL expression selects: identifiers that are not functions or
 * aggregations (followed by `(`), keywords, label names (inside `{}` or a by/on/... list),
 * strings or durations. Enough for the expressions of deploy/ (no `__name__` matchers).
 */
export function metricNamesIn(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\boffset\s+\S+/g, ' ');
  const names = new Set<string>();
  for (const match of bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const before = bare[match.index - 1];
    if (before !== undefined && /[0-9.]/.test(before)) continue; // 1e3, 5m
    if (/^\s*\(/.test(bare.slice(match.index + match[0].length)) || KEYWORDS.has(match[0].toLowerCase())) continue;
    names.add(match[0]);
  }
  return [...names].sort();
}

/** Every alert rule's expression (name -> expr). */
export function ruleExpressions(): Map<string, string> {
  const rules = parse(readFileSync(RULES_FILE, 'utf8')) as { groups: Array<{ rules: Array<{ alert: string; expr: string }> }> };
  return new Map(rules.groups.flatMap((group) => group.rules.map((rule) => [rule.alert, rule.expr] as const)));
}

/** Every query of the dashboard: the panels' targets and the template variables' label_values() (panel title -> expr). */
export function dashboardExpressions(): Map<string, string> {
  const dashboard = JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as {
    panels: Array<{ title: string; targets: Array<{ refId: string; expr: string }> }>;
    templating: { list: Array<{ name: string; type: string; definition?: string }> };
  };
  const queries = new Map<string, string>();
  for (const panel of dashboard.panels) for (const target of panel.targets) queries.set(`${panel.title} ${target.refId}`, target.expr);
  for (const variable of dashboard.templating.list.filter((v) => v.type === 'query')) {
    // label_values(<selector>, <label>): the selector is a PromQL expression.
    const selector = /^label_values\((.*),\s*\w+\)$/.exec(variable.definition ?? '')?.[1];
    if (!selector) throw new Error(`template variable ${variable.name}: not a label_values(<selector>, <label>) query`);
    queries.set(`$${variable.name}`, selector);
  }
  return queries;
}

/** The metric names of a Prometheus text exposition (its samples, not its comments). */
export function exposedMetricNames(text: string): Set<string> {
  return new Set(text.split('\n').filter((line) => line !== '' && !line.startsWith('#')).map((line) => /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)![0]));
}

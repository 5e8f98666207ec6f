import { describe, expect, it } from 'vitest';
import { parseChecksFile } from '../../src/restore/checks-file.js';

describe('parseChecksFile (DRILL_CHECKS_FILE)', () => {
  it('reads named blocks, keeping comments inside a block and dropping the trailing semicolon', () => {
    const text = [
      '-- Integrity checks of erp4 (S26).',
      '',
      '-- name: invoice_totals',
      '-- Totals agree with their lines.',
      'SELECT (SELECT sum(amount) FROM invoice_lines) AS expected,',
      '       (SELECT sum(amount) FROM invoices) AS actual;',
      '',
      '--name:orphans',
      "SELECT 0 AS expected, count(*) AS actual FROM invoices WHERE note = 'a;b';",
    ].join('\n');
    expect(parseChecksFile(text)).toEqual([
      {
        name: 'invoice_totals',
        sql: '-- Totals agree with their lines.\nSELECT (SELECT sum(amount) FROM invoice_lines) AS expected,\n       (SELECT sum(amount) FROM invoices) AS actual',
      },
      { name: 'orphans', sql: "SELECT 0 AS expected, count(*) AS actual FROM invoices WHERE note = 'a;b'" },
    ]);
  });

  it.each([
    ['SQL before the first name', 'SELECT 1;\n-- name: a\nSELECT 1 AS expected, 1 AS actual', 'line 1: SQL before the first "-- name: <name>" line'],
    ['a bad name', '-- name: Invoice Totals\nSELECT 1', 'line 1: check name "Invoice Totals" must be'],
    ['a duplicate name', '-- name: a\nSELECT 1\n-- name: a\nSELECT 2', 'line 3: check name a is used twice'],
    ['an empty block', '-- name: a\n-- only a comment\n\n-- name: b\nSELECT 1', 'line 1: check a has no query'],
    ['no blocks at all', '-- nothing here\n', 'no checks'],
  ])('refuses %s', (_title, text, message) => {
    expect(() => parseChecksFile(text)).toThrow(message);
  });
});

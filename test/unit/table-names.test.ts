import { describe, expect, it } from 'vitest';
import { formatTableName, parseRecordedTableName, parseTableName } from '../../src/pg/table-names.js';

describe('table names', () => {
  it.each([
    [{ schema: 'public', table: 'invoices' }, 'public.invoices'],
    [{ schema: '会計', table: '取引先' }, '会計.取引先'],
    [{ schema: 'a.b', table: 'c' }, '"a.b".c'],
    [{ schema: 'x', table: 'say "hi".' }, 'x."say ""hi""."'],
    [{ schema: 'S', table: 'T' }, 'S.T'],
  ])('records %j as %s and reads it back', (name, recorded) => {
    expect(formatTableName(name)).toBe(recorded);
    expect(parseRecordedTableName(recorded)).toEqual(name);
  });

  it('reads names as SQL writes them', () => {
    expect(parseTableName('"a.b"."c,d"')).toEqual({ schema: 'a.b', table: 'c,d' });
    expect(parseTableName('取引先')).toEqual({ schema: 'public', table: '取引先' });
    expect(parseTableName('a.b.c')).toMatch('expected table or schema.table');
    expect(parseTableName('1abc')).toMatch('not starting with a digit');
    expect(parseTableName('a."b"x')).toMatch('unexpected "x"');
  });
});

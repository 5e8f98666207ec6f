import { escapeIdentifier, type ClientBase } from 'pg';
import { z } from 'zod';
import { InputError } from '../errors.js';
import type { FingerprintEntry } from '../manifest.js';
import { formatTableName, parseRecordedTableName } from './table-names.js';

/**
 * The fingerprint of a database: per table its row count and the exact sum of every numeric
 * column (money totals, S26), one scan per table. The backup computes it inside the snapshot
 * that pg_dump reads, and the restore drill recomputes it on the restored copy: the two must
 * be equal, digit for digit (sums travel as decimal strings, never floats).
 */
export interface TableRef {
  schema: string;
  table: string;
}

/**
 * A table of the fingerprint and the numeric columns summed for it. Without `sums`, every
 * numeric column is summed (the default, one scan per table); FINGERPRINT_QUERIES_FILE
 * chooses tables and columns instead, for databases too large to scan whole every night (S26).
 */
export interface FingerprintTable extends TableRef {
  sums?: readonly string[];
}

const IDENTIFIER = /^[a-z_][a-z0-9_$]*$/;
const fingerprintSpecSchema = z
  .array(
    z.object({
      table: z.string().regex(/^([a-z_][a-z0-9_$]*\.)?[a-z_][a-z0-9_$]*$/, 'expected `table` or `schema.table` (lower-case identifiers)'),
      sums: z.array(z.string().regex(IDENTIFIER, 'expected a lower-case column name')).default([]),
    }),
  )
  .min(1, 'expected at least one table');

/**
 * FINGERPRINT_QUERIES_FILE: a JSON array of `{ "table": "public.invoices", "sums": ["amount"] }`:
 * each table's row count plus the sum of each listed column.
 */
export function parseFingerprintSpec(text: string): FingerprintTable[] {
  const result = fingerprintSpecSchema.safeParse(JSON.parse(text));
  if (!result.success) {
    throw new Error(result.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`).join('; '));
  }
  return result.data.map(({ table, sums }) => {
    const [schema, name] = table.includes('.') ? table.split('.') : ['public', table];
    return { schema: schema!, table: name!, sums };
  });
}

/** The tables and columns a recorded fingerprint covers: the restore recomputes exactly these. */
export function fingerprintTablesOf(entries: readonly FingerprintEntry[]): FingerprintTable[] {
  return entries.map((entry) => ({ ...parseRecordedTableName(entry.table), sums: Object.keys(entry.sums) }));
}

/** `schema.table` as manifests record it (see table-names.ts: any name round-trips). */
export function qualifiedName(ref: TableRef): string {
  return formatTableName(ref);
}

/**
 * Every ordinary table (and with `partitioned`, every partitioned table: its count includes its
 * partitions' rows) outside the system schemas and not owned by an extension.
 */
export async function listUserTables(client: ClientBase, options: { partitioned?: boolean } = {}): Promise<TableRef[]> {
  const result = await client.query<{ schema: string; table: string }>(`
    SELECT n.nspname AS schema, c.relname AS table
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r'${options.partitioned ? ", 'p'" : ''})
       AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
       AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
     ORDER BY 1, 2`);
  return result.rows;
}

/**
 * Checks that configured tables (CRITICAL_TABLES) exist and are tables (a view or sequence has no
 * rows of its own to keep); throws naming `variable` and every missing one.
 */
export async function resolveTables(client: ClientBase, tables: readonly TableRef[], variable: string): Promise<TableRef[]> {
  const result = await client.query<{ kind: string | null }>(
    `SELECT (SELECT c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = names.s AND c.relname = names.t) AS kind
       FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS names(s, t, i) ORDER BY names.i`,
    [tables.map((t) => t.schema), tables.map((t) => t.table)],
  );
  const missing = tables.filter((_, i) => !result.rows[i]?.kind).map(qualifiedName);
  if (missing.length > 0) throw new InputError(`${variable}: table(s) not found in the database: ${missing.join(', ')}`);
  const notTables = tables.filter((_, i) => !['r', 'p'].includes(result.rows[i]!.kind!)).map(qualifiedName);
  if (notTables.length > 0) throw new InputError(`${variable}: not a table (a view, sequence or foreign table holds no rows to back up): ${notTables.join(', ')}`);
  return [...tables];
}

export async function computeFingerprint(client: ClientBase, tables: readonly FingerprintTable[]): Promise<FingerprintEntry[]> {
  const entries: FingerprintEntry[] = [];
  for (const ref of tables) {
    const columns = ref.sums ? { rows: ref.sums.map((column) => ({ column })) } : await client.query<{ column: string }>(
      `SELECT a.attname AS column
         FROM pg_attribute a
        WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
          AND a.atttypid = 'numeric'::regtype
        ORDER BY a.attnum`,
      [`${escapeIdentifier(ref.schema)}.${escapeIdentifier(ref.table)}`],
    );
    const sums = columns.rows.map(
      (row, i) => `coalesce(sum(${escapeIdentifier(row.column)}), 0)::text AS s${i}`,
    );
    const scan = await client.query<Record<string, string>>(
      `SELECT count(*)::text AS row_count${sums.map((s) => `, ${s}`).join('')}
         FROM ${escapeIdentifier(ref.schema)}.${escapeIdentifier(ref.table)}`,
    );
    const row = scan.rows[0]!;
    entries.push({
      table: qualifiedName(ref),
      rowCount: row.row_count!,
      sums: Object.fromEntries(columns.rows.map((c, i) => [c.column, row[`s${i}`]!])),
    });
  }
  return entries;
}

import type { ClientBase } from 'pg';
import type { Manifest } from '../manifest.js';
import { qualifiedName } from '../pg/fingerprint.js';
import type { CheckResult } from './report.js';

/**
 * A `critical`/`weekly-full` backup restored on its own (src/pg/restore-scoped.ts): its foreign
 * keys into tables it holds no rows of are NOT VALID by design. This check lists each NOT VALID
 * foreign key of the restored database and passes only when it points at such a table: one
 * pointing at an important table would mean rows the backup should have vouched for are missing.
 */
export async function scopedForeignKeyChecks(client: ClientBase, database: Pick<Manifest['database'], 'tables' | 'dataTables'>): Promise<CheckResult[]> {
  const withRows = new Set([...(database.tables ?? []), ...(database.dataTables ?? [])]);
  const result = await client.query<{ child_schema: string; child_table: string; name: string; parent_schema: string; parent_table: string }>(
    `SELECT cn.nspname AS child_schema, child.relname AS child_table, con.conname AS name, pn.nspname AS parent_schema, parent.relname AS parent_table
       FROM pg_constraint con
       JOIN pg_class child ON child.oid = con.conrelid JOIN pg_namespace cn ON cn.oid = child.relnamespace
       JOIN pg_class parent ON parent.oid = con.confrelid JOIN pg_namespace pn ON pn.oid = parent.relnamespace
      WHERE con.contype = 'f' AND NOT con.convalidated
      ORDER BY 1, 2, 3`,
  );
  return result.rows.map((row) => {
    const parent = qualifiedName({ schema: row.parent_schema, table: row.parent_table });
    const outside = !withRows.has(parent);
    return {
      kind: 'foreign-key',
      name: `${qualifiedName({ schema: row.child_schema, table: row.child_table })}.${row.name}`,
      expected: 'NOT VALID only where it references a table without rows in this backup',
      actual: `NOT VALID, references ${parent}${outside ? ' (no rows in this backup)' : ' (an important table: its rows should be here)'}`,
      passed: outside,
    };
  });
}

import pg, { escapeIdentifier, type ClientBase } from 'pg';
import { InputError } from '../errors.js';
import { connectDatabase, pgClientConfig, type DbConnection } from './connection.js';
import { qualifiedName, resolveTables, type TableRef } from './fingerprint.js';

/**
 * What a `critical` or `weekly-full` backup holds: the WHOLE schema (types, functions, every
 * table, sequences with their values) and the rows of CRITICAL_TABLES only. Such a dump restores
 * on its own into an empty database, because every type and referenced table it needs exists
 * (empty); a `pg_dump --table` dump does not (`type "public.invoice_status" does not exist`).
 *
 * Rows are kept out with one `--exclude-table-data` per other table, listed from the catalog in
 * the dump's exported snapshot, so the list describes exactly the tables pg_dump sees. A
 * partitioned table's rows live in its partitions: those are kept too (PostgreSQL 15's pg_dump
 * has no --table-and-children).
 */
export interface CriticalScope {
  /** CRITICAL_TABLES, checked to exist and to be tables. */
  tables: TableRef[];
  /** The tables whose rows are in the dump: each important table, or a partitioned one's leaf partitions. */
  dataTables: TableRef[];
  /** Every other table holding rows: its definition is dumped, its rows are not. */
  schemaOnlyTables: TableRef[];
}

export async function resolveCriticalScope(client: ClientBase, critical: readonly TableRef[]): Promise<CriticalScope> {
  const tables = await resolveTables(client, critical, 'CRITICAL_TABLES');
  const leaves = await client.query<{ schema: string; table: string; data: boolean }>(
    `WITH critical AS (
       SELECT c.oid FROM unnest($1::text[], $2::text[]) AS names(s, t)
         JOIN pg_namespace n ON n.nspname = names.s JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = names.t),
     data AS (
       -- pg_partition_tree has no rows for a table that is neither partitioned nor a partition.
       SELECT oid FROM critical
       UNION SELECT tree.relid FROM critical, LATERAL pg_partition_tree(critical.oid) AS tree WHERE tree.isleaf)
     SELECT n.nspname AS schema, c.relname AS table, c.oid IN (SELECT oid FROM data) AS data
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'r'
        AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
      ORDER BY 1, 2`,
    [tables.map((t) => t.schema), tables.map((t) => t.table)],
  );
  const ref = (row: { schema: string; table: string }): TableRef => ({ schema: row.schema, table: row.table });
  return {
    tables,
    dataTables: leaves.rows.filter((row) => row.data).map(ref),
    schemaOnlyTables: leaves.rows.filter((row) => !row.data).map(ref),
  };
}

/**
 * The pg_dump arguments of the scope: the tables' names quoted, so that inside pg_dump's pattern
 * syntax every character (`.`, `*`, `$`, quotes, non-ASCII) means itself.
 */
export function criticalDumpArgs(scope: Pick<CriticalScope, 'schemaOnlyTables'>): string[] {
  return scope.schemaOnlyTables.map((t) => `--exclude-table-data=${escapeIdentifier(t.schema)}.${escapeIdentifier(t.table)}`);
}

/** The manifest's record of the scope. */
export function recordedScope(scope: CriticalScope): { tables: string[]; dataTables: string[] } {
  return { tables: scope.tables.map(qualifiedName), dataTables: scope.dataTables.map(qualifiedName) };
}

/**
 * Refuses, before anything is dumped, a CRITICAL_TABLES that is empty or names a table the
 * database does not have (planBackup runs this before the dumps start in parallel).
 */
export async function checkCriticalTables(db: DbConnection, critical: readonly TableRef[], kind: string): Promise<void> {
  if (critical.length === 0) throw new InputError(`CRITICAL_TABLES is empty: a ${kind} backup dumps the important tables' rows`);
  const client = new pg.Client(pgClientConfig(db));
  await connectDatabase(client, db);
  try {
    await resolveTables(client, critical, 'CRITICAL_TABLES');
  } finally {
    await client.end();
  }
}

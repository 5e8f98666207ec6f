import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg, { escapeIdentifier, escapeLiteral } from 'pg';
import { runTool } from '../child-process.js';
import { InputError } from '../errors.js';
import { PERMANENT_PG_ERRORS, pgChildEnv, pgClientConfig, type DbConnection } from '../pg/connection.js';
import { qualifiedName, type TableRef } from '../pg/fingerprint.js';
import { PG_INSTALL_HINT, resolvePgTool } from '../pg/tools.js';

/**
 * The 6-hour RPO path (S9): a restored daily, with the important tables replaced by their rows
 * in a newer `critical` (or `weekly-full`) backup, in ONE transaction (psql --single-transaction:
 * all of it or none of it).
 *
 *   1. `SET LOCAL session_replication_role = replica`: ordinary triggers and foreign-key checks and
 *      actions do not fire, so the rows arrive exactly as they were in the critical backup's
 *      snapshot (no audit rows, no touched timestamps, no cascades into the daily's tables).
 *   2. DELETE every row of the important tables (their partitions, for a partitioned one).
 *   3. The critical dump's TABLE DATA (its only table data: the important tables) and SEQUENCE
 *      SET entries (every sequence: values only grow between the daily and the critical backup,
 *      so ids already handed out are never handed out again), via pg_restore --data-only.
 *   4. Every foreign key with an important table on either side is checked. Rows that point at a
 *      row the daily lacks (an invoice of a customer created after the daily; a shipment of the
 *      daily whose invoice was deleted since) are KEPT, never dropped: the constraint is
 *      re-created NOT VALID and every such row is listed in the result. PostgreSQL 15 cannot
 *      keep a NOT VALID foreign key on a partitioned table: an orphan there refuses the overlay
 *      (the transaction is rolled back), naming the constraint.
 */
export interface OverlayOrphan {
  /** `schema.table.constraint` */
  constraint: string;
  /** The row, by its primary key (`(id)=(7)`), or by ctid when it has none. */
  row: string;
  /** What it points at and the daily lacks: `(customer_id)=(205)`. */
  references: string;
}

export interface OverlayResult {
  /** The tables whose rows were replaced. */
  dataTables: string[];
  /** Constraints re-created NOT VALID because rows point outside what was restored. */
  notValidConstraints: string[];
  orphanCount: number;
  /** Every orphan, up to MAX_LISTED_ORPHANS (orphanCount says how many there are). */
  orphans: OverlayOrphan[];
}

/** The orphans a result lists (they travel through Temporal to the report); the count is always exact. */
export const MAX_LISTED_ORPHANS = 1000;

const ORPHAN_COUNT = 'erp4-overlay-orphan-count:';
const ORPHAN_LINE = 'erp4-overlay-orphan:';
const NOT_VALID_LINE = 'erp4-overlay-not-valid:';

/** The lines of `pg_restore --list` an overlay applies: the table rows and the sequence values. */
export function overlayRestoreList(toc: string): string {
  return toc
    .split('\n')
    .filter((line) => /^\d+; \d+ \d+ (TABLE DATA|SEQUENCE SET) /.test(line))
    .map((line) => `${line}\n`)
    .join('');
}

interface ForeignKey {
  no: number;
  /** As text: an oid is unsigned 32-bit, beyond int4. */
  oid: string;
  name: string;
  childSchema: string;
  childTable: string;
  childKind: string;
  parentSchema: string;
  parentTable: string;
  columns: string[];
  refColumns: string[];
  keyColumns: string[] | null;
}

/**
 * Lays the rows of `dumpFile` (a critical-format dump: whole schema, rows of `dataTables`) over
 * the restored database `database`. Idempotent: a retry replaces the same rows again and finds
 * the same orphans.
 */
export async function overlayCriticalDump(
  db: DbConnection,
  database: string,
  dumpFile: string,
  dataTables: readonly TableRef[],
  options: { workDir: string; pgBinDir?: string; serverMajor?: number; signal?: AbortSignal },
): Promise<OverlayResult> {
  const tool = (name: 'pg_restore' | 'psql') => resolvePgTool(name, { binDir: options.pgBinDir, serverMajor: options.serverMajor });
  const run = async (path: string, args: string[], env = process.env) =>
    runTool(path, args, { env, signal: options.signal, permanentErrors: PERMANENT_PG_ERRORS, installHint: PG_INSTALL_HINT });
  await mkdir(options.workDir, { recursive: true, mode: 0o700 });

  const foreignKeys = await inspectTarget(db, database, dataTables);
  const pgRestore = await tool('pg_restore');
  const listFile = join(options.workDir, 'overlay.list');
  await writeFile(listFile, overlayRestoreList(await run(pgRestore, ['--list', '--', dumpFile])), { mode: 0o600 });
  const dataFile = join(options.workDir, 'overlay-data.sql');
  await run(pgRestore, ['--data-only', '--no-owner', `--use-list=${listFile}`, `--file=${dataFile}`, '--', dumpFile]);

  const before = join(options.workDir, 'overlay-before.sql');
  const after = join(options.workDir, 'overlay-after.sql');
  await writeFile(before, beforeScript(dataTables), { mode: 0o600 });
  await writeFile(after, afterScript(foreignKeys), { mode: 0o600 });
  const output = await run(
    await tool('psql'),
    ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '--single-transaction', '-f', before, '-f', dataFile, '-f', after],
    pgChildEnv(db, database),
  );
  return parseOutput(output, foreignKeys, dataTables);
}

/** The foreign keys with an important table (or one of its ancestors) on either side; refuses a target lacking a table. */
async function inspectTarget(db: DbConnection, database: string, dataTables: readonly TableRef[]): Promise<ForeignKey[]> {
  const client = new pg.Client(pgClientConfig(db, database));
  await client.connect();
  try {
    const schemas = dataTables.map((t) => t.schema);
    const names = dataTables.map((t) => t.table);
    const missing = await client.query<{ schema: string; table: string }>(
      `SELECT s AS schema, t AS table FROM unnest($1::text[], $2::text[]) AS names(s, t)
        WHERE NOT EXISTS (SELECT FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = s AND c.relname = t AND c.relkind = 'r')`,
      [schemas, names],
    );
    if (missing.rows.length > 0) {
      throw new InputError(
        `the restored daily has no table ${missing.rows.map(qualifiedName).join(', ')} of the critical backup: the two backups are of different schemas, an overlay cannot combine them`,
      );
    }
    const result = await client.query<Omit<ForeignKey, 'no'>>(
      `WITH data AS (
         SELECT c.oid FROM unnest($1::text[], $2::text[]) AS names(s, t)
           JOIN pg_namespace n ON n.nspname = names.s JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = names.t),
       scope AS (SELECT oid FROM data UNION SELECT a.relid FROM data, LATERAL pg_partition_ancestors(data.oid) AS a)
       SELECT con.oid::text AS oid, con.conname AS name,
              cn.nspname AS "childSchema", child.relname AS "childTable", child.relkind::text AS "childKind",
              pn.nspname AS "parentSchema", parent.relname AS "parentTable",
              (SELECT array_agg(a.attname::text ORDER BY k.i) FROM unnest(con.conkey) WITH ORDINALITY AS k(n, i)
                 JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n) AS columns,
              (SELECT array_agg(a.attname::text ORDER BY k.i) FROM unnest(con.confkey) WITH ORDINALITY AS k(n, i)
                 JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n) AS "refColumns",
              (SELECT array_agg(a.attname::text ORDER BY k.i) FROM pg_index x CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(n, i)
                 JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.n
                WHERE x.indrelid = con.conrelid AND x.indisprimary) AS "keyColumns"
         FROM pg_constraint con
         JOIN pg_class child ON child.oid = con.conrelid JOIN pg_namespace cn ON cn.oid = child.relnamespace
         JOIN pg_class parent ON parent.oid = con.confrelid JOIN pg_namespace pn ON pn.oid = parent.relnamespace
        WHERE con.contype = 'f' AND con.conparentid = 0
          AND (con.conrelid IN (SELECT oid FROM scope) OR con.confrelid IN (SELECT oid FROM scope))
        ORDER BY cn.nspname, child.relname, con.conname`,
      [schemas, names],
    );
    return result.rows.map((row, i) => ({ ...row, no: i + 1 }));
  } finally {
    await client.end();
  }
}

const table = (schema: string, name: string) => `${escapeIdentifier(schema)}.${escapeIdentifier(name)}`;

function beforeScript(dataTables: readonly TableRef[]): string {
  return [
    '-- erp4-backup overlay: the important tables are replaced by the critical backup\'s rows.',
    'SET LOCAL session_replication_role = replica;',
    ...dataTables.map((t) => `DELETE FROM ${table(t.schema, t.table)};`),
    '',
  ].join('\n');
}

function afterScript(foreignKeys: readonly ForeignKey[]): string {
  const lines = [
    "SELECT pg_catalog.set_config('search_path', '', true);",
    'CREATE TEMPORARY TABLE erp4_overlay_orphans (constraint_no int NOT NULL, row_key text NOT NULL, refs text NOT NULL) ON COMMIT DROP;',
  ];
  for (const fk of foreignKeys) {
    const cols = fk.columns.map((c) => `c.${escapeIdentifier(c)}`);
    const matches = fk.columns.map((c, i) => `p.${escapeIdentifier(fk.refColumns[i]!)} = c.${escapeIdentifier(c)}`);
    const rowKey = fk.keyColumns
      ? `pg_catalog.format('(%s)=(%s)', ${escapeLiteral(fk.keyColumns.join(', '))}, pg_catalog.concat_ws(', ', ${fk.keyColumns.map((k) => `c.${escapeIdentifier(k)}::text`).join(', ')}))`
      : `'ctid ' || c.ctid::text`;
    const refs = `pg_catalog.format('(%s)=(%s)', ${escapeLiteral(fk.columns.join(', '))}, pg_catalog.concat_ws(', ', ${cols.map((c) => `${c}::text`).join(', ')}))`;
    // MATCH SIMPLE (PostgreSQL's default): a row with a NULL in the key references nothing.
    lines.push(
      `INSERT INTO pg_temp.erp4_overlay_orphans SELECT ${fk.no}, ${rowKey}, ${refs} FROM ${table(fk.childSchema, fk.childTable)} AS c` +
        ` WHERE ${cols.map((c) => `${c} IS NOT NULL`).join(' AND ')}` +
        ` AND NOT EXISTS (SELECT FROM ${table(fk.parentSchema, fk.parentTable)} AS p WHERE ${matches.join(' AND ')});`,
    );
    const child = table(fk.childSchema, fk.childTable);
    const body =
      fk.childKind === 'p'
        ? `RAISE EXCEPTION 'overlay refused: % row(s) of partitioned table % point outside the restored rows through foreign key %; PostgreSQL 15 cannot keep a NOT VALID foreign key on a partitioned table', orphans, ${escapeLiteral(qualifiedName({ schema: fk.childSchema, table: fk.childTable }))}, ${escapeLiteral(fk.name)};`
        : `EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I', ${escapeLiteral(child)}, ${escapeLiteral(fk.name)});\n` +
          `    EXECUTE pg_catalog.format('ALTER TABLE %s ADD CONSTRAINT %I %s NOT VALID', ${escapeLiteral(child)}, ${escapeLiteral(fk.name)}, definition);`;
    const block = [
      'DECLARE',
      `  definition text := pg_catalog.pg_get_constraintdef(${escapeLiteral(fk.oid)}::pg_catalog.oid);`,
      `  orphans bigint := (SELECT count(*) FROM pg_temp.erp4_overlay_orphans WHERE constraint_no = ${fk.no});`,
      'BEGIN',
      '  IF orphans > 0 THEN',
      `    ${body}`,
      '  END IF;',
      'END',
    ].join('\n');
    lines.push(`DO ${dollarQuote(block)};`);
  }
  lines.push(
    `SELECT ${escapeLiteral(ORPHAN_COUNT)} || count(*) FROM pg_temp.erp4_overlay_orphans;`,
    `SELECT DISTINCT ${escapeLiteral(NOT_VALID_LINE)} || constraint_no FROM pg_temp.erp4_overlay_orphans;`,
    `SELECT ${escapeLiteral(ORPHAN_LINE)} || pg_catalog.json_build_array(constraint_no, row_key, refs)::text` +
      ` FROM pg_temp.erp4_overlay_orphans ORDER BY constraint_no, row_key LIMIT ${MAX_LISTED_ORPHANS};`,
    '',
  );
  return lines.join('\n');
}

/** A dollar-quoted string whose tag does not occur in `body` (names are data, never code). */
function dollarQuote(body: string): string {
  let tag = 'erp4_overlay';
  while (body.includes(`$${tag}$`)) tag += '_';
  return `$${tag}$\n${body}\n$${tag}$`;
}

function parseOutput(output: string, foreignKeys: readonly ForeignKey[], dataTables: readonly TableRef[]): OverlayResult {
  const byNo = new Map(foreignKeys.map((fk) => [fk.no, fk]));
  const constraintName = (fk: ForeignKey) => `${qualifiedName({ schema: fk.childSchema, table: fk.childTable })}.${fk.name}`;
  let orphanCount: number | undefined;
  const orphans: OverlayOrphan[] = [];
  const notValid = new Set<number>();
  for (const line of output.split('\n')) {
    if (line.startsWith(NOT_VALID_LINE)) notValid.add(Number(line.slice(NOT_VALID_LINE.length)));
    if (line.startsWith(ORPHAN_COUNT)) orphanCount = Number(line.slice(ORPHAN_COUNT.length));
    if (line.startsWith(ORPHAN_LINE)) {
      const [no, row, references] = JSON.parse(line.slice(ORPHAN_LINE.length)) as [number, string, string];
      orphans.push({ constraint: constraintName(byNo.get(no)!), row, references });
    }
  }
  if (orphanCount === undefined) throw new Error('psql did not report the overlay\'s orphan count: its output was cut short');
  return {
    dataTables: dataTables.map(qualifiedName),
    notValidConstraints: foreignKeys.filter((fk) => notValid.has(fk.no)).map(constraintName),
    orphanCount,
    orphans,
  };
}

/**
 * The user checks of a restore (DRILL_CHECKS_FILE, S26), in the shape of erp4's
 * `scripts/checks/poc-integrity.sql`: plain SQL, one named query per block.
 *
 *   -- name: invoice_totals_match_lines
 *   -- Money totals agree: the invoices' amounts are the sums of their lines.
 *   SELECT (SELECT sum(amount) FROM invoice_lines) AS expected,
 *          (SELECT sum(amount) FROM invoices)      AS actual;
 *
 * A block starts at a `-- name: <name>` line (lower-case letters, digits, `_`, unique) and runs
 * to the next one. Its query must return exactly one row with the columns `expected` and
 * `actual`; the check passes when the two are equal as text (NULL equals only NULL). The queries
 * run on the restored database in a READ ONLY transaction. Before the first block, only comments
 * and blank lines are allowed.
 */
export interface NamedQuery {
  name: string;
  sql: string;
}

const NAME_LINE = /^--\s*name:\s*(.*?)\s*$/;
const VALID_NAME = /^[a-z0-9_]{1,63}$/;

/** Parses the file's text; throws an Error whose message names the line and what is wrong. */
export function parseChecksFile(text: string): NamedQuery[] {
  const queries: NamedQuery[] = [];
  let current: { name: string; line: number; body: string[] } | undefined;
  const finish = () => {
    if (!current) return;
    const sql = current.body.join('\n').trim().replace(/;\s*$/, '').trim();
    const statements = sql.split('\n').filter((line) => !/^\s*(--.*)?$/.test(line));
    if (statements.length === 0) throw new Error(`line ${current.line}: check ${current.name} has no query`);
    queries.push({ name: current.name, sql });
  };
  text.split(/\r?\n/).forEach((line, index) => {
    const lineNumber = index + 1;
    const nameMatch = NAME_LINE.exec(line.trim());
    if (nameMatch) {
      finish();
      const name = nameMatch[1] ?? '';
      if (!VALID_NAME.test(name)) throw new Error(`line ${lineNumber}: check name ${JSON.stringify(name)} must be 1-63 lower-case letters, digits or _`);
      if (queries.some((q) => q.name === name)) throw new Error(`line ${lineNumber}: check name ${name} is used twice`);
      current = { name, line: lineNumber, body: [] };
      return;
    }
    if (current) {
      current.body.push(line);
    } else if (!/^\s*(--.*)?$/.test(line)) {
      throw new Error(`line ${lineNumber}: SQL before the first "-- name: <name>" line`);
    }
  });
  finish();
  if (queries.length === 0) throw new Error('no checks: expected blocks starting with "-- name: <name>"');
  return queries;
}

/**
 * Table names as operators write them (CRITICAL_TABLES) and as manifests record them.
 *
 * Input follows PostgreSQL's own rules: `"..."` is taken exactly (`""` is a quote inside it),
 * an unquoted name may use non-ASCII letters (`会計.取引先`). Upper-case ASCII letters unquoted
 * are refused instead of folded, so `Invoices` never silently means `invoices`; `"Invoices"` says
 * what is meant. A name is at most 63 bytes (NAMEDATALEN - 1): PostgreSQL would truncate it.
 *
 * Recorded names are `schema.table`, each part written raw unless it holds a `.` or a `"`, then
 * double-quoted: old manifests (plain lower-case names) read unchanged, and any name round-trips.
 */
export interface TableName {
  schema: string;
  table: string;
}

const MAX_IDENTIFIER_BYTES = 63;

/** `ident` or `ident.ident`, comma separated (commas inside quotes are part of a name). */
export function parseTableList(text: string): { tables: TableName[]; problems: string[] } {
  const tables: TableName[] = [];
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const item of splitOutsideQuotes(text, ',')) {
    const trimmed = item.trim();
    const parsed = parseTableName(trimmed);
    if (typeof parsed === 'string') {
      problems.push(`${JSON.stringify(trimmed)} ${parsed}`);
    } else if (seen.has(formatTableName(parsed))) {
      problems.push(`${JSON.stringify(trimmed)} is listed twice; expected each once`);
    } else {
      seen.add(formatTableName(parsed));
      tables.push(parsed);
    }
  }
  return { tables, problems };
}

/** One `table`, `schema.table`, `"Schema"."Table"`; the schema defaults to `public`. Returns what is wrong as text. */
export function parseTableName(text: string): TableName | string {
  const parts: string[] = [];
  let rest = text;
  for (;;) {
    const part = readIdentifier(rest);
    if (typeof part === 'string') return part;
    parts.push(part.name);
    rest = part.rest;
    if (rest === '') break;
    if (!rest.startsWith('.')) return `is not valid: unexpected ${JSON.stringify(rest[0])}`;
    rest = rest.slice(1);
  }
  if (parts.length > 2) return 'is not valid: expected table or schema.table';
  return parts.length === 1 ? { schema: 'public', table: parts[0]! } : { schema: parts[0]!, table: parts[1]! };
}

function readIdentifier(text: string): { name: string; rest: string } | string {
  if (text.startsWith('"')) {
    let name = '';
    let i = 1;
    for (;;) {
      const quote = text.indexOf('"', i);
      if (quote < 0) return 'is not valid: a quoted name is not closed';
      name += text.slice(i, quote);
      if (text[quote + 1] === '"') {
        name += '"';
        i = quote + 2;
      } else {
        i = quote + 1;
        break;
      }
    }
    return checkedName(name, text.slice(i));
  }
  const match = /^[^.\s"]+/u.exec(text);
  if (!match) return text === '' ? 'is not valid: a name is empty' : `is not valid: unexpected ${JSON.stringify(text[0])}`;
  const name = match[0];
  // PostgreSQL's unquoted identifiers: a letter (any non-ASCII character counts) or _, then letters, digits, _ or $.
  if (!/^[a-z_\u0080-\u{10FFFF}][a-z0-9_$\u0080-\u{10FFFF}]*$/u.test(name)) {
    return /[A-Z]/.test(name)
      ? `is not valid: unquoted names are lower-case (PostgreSQL folds them); write "${name}" for a mixed-case name`
      : 'is not valid: an unquoted name is letters, digits, _ or $, not starting with a digit';
  }
  return checkedName(name, text.slice(name.length));
}

function checkedName(name: string, rest: string): { name: string; rest: string } | string {
  if (name === '') return 'is not valid: a name is empty';
  if (name.includes('\0')) return 'is not valid: a name holds a NUL character';
  if (Buffer.byteLength(name, 'utf8') > MAX_IDENTIFIER_BYTES) return `is not valid: a name is longer than ${MAX_IDENTIFIER_BYTES} bytes`;
  return { name, rest };
}

function splitOutsideQuotes(text: string, separator: string): string[] {
  const items: string[] = [];
  let quoted = false;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '"') quoted = !quoted;
    else if (!quoted && text[i] === separator) {
      items.push(text.slice(start, i));
      start = i + 1;
    }
  }
  items.push(text.slice(start));
  return items;
}

/** The recorded form: `schema.table`, a part quoted only when it holds `.` or `"`. */
export function formatTableName(name: TableName): string {
  return `${recordedPart(name.schema)}.${recordedPart(name.table)}`;
}

function recordedPart(part: string): string {
  return /[."]/.test(part) ? `"${part.replace(/"/g, '""')}"` : part;
}

/** Reads a recorded `schema.table` back (the inverse of formatTableName). */
export function parseRecordedTableName(text: string): TableName {
  const schema = readRecordedPart(text);
  if (text[schema.end] !== '.') throw new Error(`${JSON.stringify(text)} is not a recorded schema.table name`);
  const table = readRecordedPart(text, schema.end + 1);
  if (table.end !== text.length) throw new Error(`${JSON.stringify(text)} is not a recorded schema.table name`);
  return { schema: schema.name, table: table.name };
}

function readRecordedPart(text: string, from = 0): { name: string; end: number } {
  if (text[from] !== '"') {
    const dot = text.indexOf('.', from);
    const end = dot < 0 || from > 0 ? text.length : dot;
    return { name: text.slice(from, end), end };
  }
  let name = '';
  let i = from + 1;
  for (;;) {
    const quote = text.indexOf('"', i);
    if (quote < 0) throw new Error(`${JSON.stringify(text)}: a quoted name is not closed`);
    name += text.slice(i, quote);
    if (text[quote + 1] === '"') {
      name += '"';
      i = quote + 2;
    } else {
      return { name, end: quote + 1 };
    }
  }
}

import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';

/**
 * The benchmark's ERP-like data: a database of about `databaseBytes` on disk (customers,
 * invoices, invoice lines with numeric(18,2) money and Japanese text, wide documents with
 * jsonb and bytea, indexes and foreign keys) and a tree of PDF-like files of about
 * `assetBytes`. The rows are made by the server itself (generate_series), in batches, until
 * pg_database_size reaches the target: a GB takes about a minute, not an hour of INSERTs.
 */
export interface DatasetSize {
  databaseBytes: number;
  assetBytes: number;
}

export interface GeneratedDatabase {
  /** pg_database_size after the load, indexes and constraints. */
  bytesOnDisk: number;
  rows: Record<string, number>;
}

const SCHEMA = `
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE TABLE customers (
  id           bigint PRIMARY KEY,
  code         text           NOT NULL UNIQUE,
  name         text           NOT NULL,
  name_kana    text           NOT NULL,
  address      text           NOT NULL,
  phone        text           NOT NULL,
  email        text           NOT NULL,
  credit_limit numeric(18, 2) NOT NULL,
  created_at   timestamptz    NOT NULL
);
CREATE INDEX customers_name_idx ON customers (name);
CREATE TABLE invoices (
  id          bigint PRIMARY KEY,
  invoice_no  text           NOT NULL UNIQUE,
  customer_id bigint         NOT NULL,
  issued_at   timestamptz    NOT NULL,
  due_date    date           NOT NULL,
  status      text           NOT NULL,
  subtotal    numeric(18, 2) NOT NULL,
  tax         numeric(18, 2) NOT NULL,
  total       numeric(18, 2) NOT NULL,
  memo        text
);
CREATE INDEX invoices_customer_idx ON invoices (customer_id);
CREATE INDEX invoices_issued_at_idx ON invoices (issued_at);
CREATE TABLE invoice_lines (
  invoice_id  bigint         NOT NULL,
  line_no     integer        NOT NULL,
  item_code   text           NOT NULL,
  description text           NOT NULL,
  quantity    numeric(18, 3) NOT NULL,
  unit_price  numeric(18, 2) NOT NULL,
  amount      numeric(18, 2) NOT NULL,
  PRIMARY KEY (invoice_id, line_no)
);
CREATE TABLE invoice_documents (
  id           bigint PRIMARY KEY,
  invoice_id   bigint NOT NULL,
  file_name    text   NOT NULL,
  content_type text   NOT NULL,
  attributes   jsonb  NOT NULL,
  body         bytea  NOT NULL
);
CREATE INDEX invoice_documents_invoice_idx ON invoice_documents (invoice_id);
`;

// Foreign keys are added after the load: checking them row by row would double its time.
const CONSTRAINTS = `
ALTER TABLE invoices ADD FOREIGN KEY (customer_id) REFERENCES customers (id);
ALTER TABLE invoice_lines ADD FOREIGN KEY (invoice_id) REFERENCES invoices (id);
ALTER TABLE invoice_documents ADD FOREIGN KEY (invoice_id) REFERENCES invoices (id);
DROP EXTENSION pgcrypto;
ANALYZE;
`;

/** One customer per this many invoices; every tenth invoice has a document. */
const INVOICES_PER_CUSTOMER = 20;
const LINES_PER_INVOICE = 5;
const DOCUMENT_EVERY = 10;

const JP = {
  company: `ARRAY['株式会社','有限会社','合同会社','一般社団法人']`,
  stem: `ARRAY['山田','佐藤','鈴木','高橋','田中','伊藤','渡辺','中村','小林','加藤','吉田','山本']`,
  trade: `ARRAY['商事','物産','工業','製作所','電機','建設','運輸','食品','薬品','印刷']`,
  kana: `ARRAY['ヤマダ','サトウ','スズキ','タカハシ','タナカ','イトウ','ワタナベ','ナカムラ','コバヤシ','カトウ']`,
  city: `ARRAY['東京都千代田区丸の内','大阪府大阪市北区梅田','愛知県名古屋市中村区名駅','福岡県福岡市博多区博多駅前','北海道札幌市中央区北五条西','宮城県仙台市青葉区中央']`,
  item: `ARRAY['ボルト','ナット','ワッシャー','ベアリング','ギアボックス','制御盤','配線ケーブル','空調ユニット','ポンプ','センサー','保守点検','技術支援']`,
  spec: `ARRAY['標準仕様','耐熱仕様','防錆処理済み','特注品','小ロット','大口割引適用','納期短縮対応','検査成績書付き','JIS規格品']`,
  status: `ARRAY['draft','issued','paid','overdue','cancelled']`,
  memo: `ARRAY['月末締め翌月末払い','振込手数料は貴社負担でお願いいたします','分納対応','前回請求分との差額を含む','']`,
};

function customerBatch(from: number, to: number): string {
  return `
INSERT INTO customers
SELECT g,
       'C' || lpad(g::text, 8, '0'),
       (${JP.company})[1 + g % 4] || (${JP.stem})[1 + g % 12] || (${JP.trade})[1 + (g / 12) % 10] || ' ' || (g % 97) || '号店',
       (${JP.kana})[1 + g % 10] || 'ショウジ',
       (${JP.city})[1 + g % 6] || (g % 9 + 1) || '丁目' || (g % 30 + 1) || '番' || (g % 20 + 1) || '号 ' || left(md5(g::text), 6) || 'ビル',
       '0' || (3 + g % 7) || '-' || lpad((g::bigint * 7919 % 10000)::text, 4, '0') || '-' || lpad((g % 10000)::text, 4, '0'),
       'billing+' || left(md5(g::text), 10) || '@example.co.jp',
       round(((g::bigint * 7919) % 100000000)::numeric / 100, 2),
       timestamptz '2015-01-01 00:00+09' + (g % 3650) * interval '1 day'
FROM generate_series(${from}, ${to - 1}) AS g;`;
}

function invoiceBatch(from: number, to: number, customers: number): string {
  return `
INSERT INTO invoices
SELECT g,
       'INV-' || lpad(g::text, 10, '0'),
       1 + (g::bigint * 7919) % ${customers},
       timestamptz '2020-01-01 00:00+09' + g * interval '97 seconds',
       date '2020-01-31' + (g / 900),
       (${JP.status})[1 + g % 5],
       s, round(s * 0.10, 2), s + round(s * 0.10, 2),
       (${JP.memo})[1 + g % 5] || ' ' || left(md5(g::text), 12)
FROM generate_series(${from}, ${to - 1}) AS g,
     LATERAL (SELECT round(((g::bigint * 104729) % 50000000)::numeric / 100 + 1000, 2) AS s) AS money;
INSERT INTO invoice_lines
SELECT g / ${LINES_PER_INVOICE}, 1 + g % ${LINES_PER_INVOICE},
       'ITEM-' || upper(left(md5((g % 50000)::text), 8)),
       (${JP.item})[1 + g % 12] || ' ' || (${JP.spec})[1 + (g / 12) % 9] || ' 型番' || (g % 4999) || ' ロット' || left(md5(g::text), 6),
       q, p, round(q * p, 2)
FROM generate_series(${from * LINES_PER_INVOICE}, ${to * LINES_PER_INVOICE - 1}) AS g,
     LATERAL (SELECT ((g::bigint * 31) % 1000 + 1)::numeric / 10 AS q, round(((g::bigint * 7907) % 2000000)::numeric / 100 + 10, 2) AS p) AS v;
INSERT INTO invoice_documents
SELECT g / ${DOCUMENT_EVERY}, g, '請求書_' || g || '.pdf', 'application/pdf',
       jsonb_build_object('pages', 1 + g % 7, 'signed', g % 3 = 0, 'department', (${JP.stem})[1 + g % 12] || '課',
                          'tags', jsonb_build_array((${JP.item})[1 + g % 12], (${JP.spec})[1 + g % 9])),
       -- half random bytes (like a compressed attachment), half a repeated pattern (like an uncompressed form)
       gen_random_bytes(1024) || gen_random_bytes(1024) || decode(repeat(md5(g::text), 64), 'hex')
FROM generate_series(${Math.ceil(from / DOCUMENT_EVERY) * DOCUMENT_EVERY}, ${to - 1}, ${DOCUMENT_EVERY}) AS g;`;
}

/**
 * Creates the schema in the (empty) database `client` is connected to and loads batches of
 * invoices until the database holds about `targetBytes`; then adds the foreign keys.
 */
export async function generateDatabase(client: pg.Client, targetBytes: number, log: (line: string) => void = () => undefined): Promise<GeneratedDatabase> {
  await client.query(SCHEMA);
  const size = async () => Number((await client.query<{ size: string }>('SELECT pg_database_size(current_database()) AS size')).rows[0]!.size);
  const emptySize = await size();
  // A first small batch measures bytes per invoice (with its share of lines, documents,
  // customers and index entries); later batches aim at what is left.
  let invoices = 0;
  let customers = 0;
  let batch = 500;
  for (;;) {
    const to = invoices + batch;
    const neededCustomers = Math.ceil(to / INVOICES_PER_CUSTOMER);
    if (neededCustomers > customers) {
      await client.query(customerBatch(customers + 1, neededCustomers + 1));
      customers = neededCustomers;
    }
    await client.query(invoiceBatch(invoices + 1, to + 1, customers));
    invoices = to;
    const now = await size();
    const perInvoice = Math.max(1, (now - emptySize) / invoices);
    const left = targetBytes - now;
    log(`  ${invoices} invoices, ${(now / 1e6).toFixed(0)} MB of ${(targetBytes / 1e6).toFixed(0)} MB`);
    if (left <= perInvoice * 50) break;
    // Batches of at most ~100 MB keep each statement's memory and WAL bounded.
    batch = Math.max(100, Math.min(Math.floor(left / perInvoice), Math.floor(100e6 / perInvoice)));
  }
  await client.query(CONSTRAINTS);
  const counts = await client.query<{ table: string; rows: string }>(`
    SELECT 'customers' AS table, count(*) AS rows FROM customers UNION ALL
    SELECT 'invoices', count(*) FROM invoices UNION ALL
    SELECT 'invoice_lines', count(*) FROM invoice_lines UNION ALL
    SELECT 'invoice_documents', count(*) FROM invoice_documents`);
  return { bytesOnDisk: await size(), rows: Object.fromEntries(counts.rows.map((r) => [r.table, Number(r.rows)])) };
}

/** Deterministic sizes (xorshift), so two runs at one scale write the same number of files. */
function* fileSizes(totalBytes: number): Generator<number> {
  let state = 0x9e3779b9;
  let written = 0;
  while (written < totalBytes) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    // 20 KiB .. 250 KiB, skewed small like scanned invoices and generated PDFs.
    const unit = (state >>> 0) / 0xffffffff;
    const size = Math.min(totalBytes - written, Math.round(20_480 + unit * unit * 235_520));
    written += size;
    yield Math.max(size, 1);
  }
}

/**
 * A PDF-like file: a PDF header and trailer around a "compressed" stream of random bytes
 * (real PDFs are mostly deflated content, which compresses no further).
 */
function pdfLike(size: number, title: string): Buffer {
  const head = Buffer.from(`%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Title (${title}) /Filter /FlateDecode /Length ${size} >>\nstream\n`, 'latin1');
  const tail = Buffer.from('\nendstream\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n', 'latin1');
  const body = randomBytes(Math.max(0, size - head.length - tail.length));
  return Buffer.concat([head, body, tail]);
}

/** Writes about `totalBytes` of PDF-like files under `dir/YYYY/MM/`; returns the file count. */
export async function generateAssets(dir: string, totalBytes: number): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  const pending: Promise<void>[] = [];
  for (const size of fileSizes(totalBytes)) {
    files += 1;
    const month = new Date(Date.UTC(2020, files % 60, 1));
    const folder = join(dir, String(month.getUTCFullYear()), String(month.getUTCMonth() + 1).padStart(2, '0'));
    // Every 50th file has a Japanese name, as erp4's uploads do.
    const name = files % 50 === 0 ? `請求書_${files}.pdf` : `INV-${String(files).padStart(8, '0')}.pdf`;
    const content = pdfLike(size, `INV-${files}`);
    bytes += content.length;
    pending.push(mkdir(folder, { recursive: true }).then(() => writeFile(join(folder, name), content)));
    if (pending.length >= 32) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  return { files, bytes };
}

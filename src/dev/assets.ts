import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * A minimal but well-formed one-page PDF (header, catalog, page, content stream, xref table
 * with exact byte offsets, trailer) showing `text` (ASCII).
 */
export function minimalPdf(text: string): Buffer {
  const escaped = text.replace(/[\\()]/g, (c) => `\\${c}`);
  const stream = `BT /F1 18 Tf 72 720 Td (${escaped}) Tj ET`;
  const objects = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>',
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
    `<< /Length ${Buffer.byteLength(stream, 'latin1')} >>\nstream\n${stream}\nendstream`,
  ];
  let body = '%PDF-1.4\n%\xe2\xe3\xcf\xd3\n';
  const offsets: number[] = [];
  objects.forEach((object, index) => {
    offsets.push(Buffer.byteLength(body, 'latin1'));
    body += `${index + 1} 0 obj\n${object}\nendobj\n`;
  });
  const xrefOffset = Buffer.byteLength(body, 'latin1');
  body += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
  for (const offset of offsets) body += `${String(offset).padStart(10, '0')} 00000 n \n`;
  body += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xrefOffset}\n%%EOF\n`;
  return Buffer.from(body, 'latin1');
}

/** Relative paths (year/month/name.pdf) of the sample asset tree, two with Japanese names. */
export function sampleAssetPaths(count = 50): string[] {
  const paths: string[] = [];
  for (let n = 1; n <= count; n++) {
    // Spread over 2024-11 .. 2025-04, a few files per month.
    const month = new Date(Date.UTC(2024, 10 + (n % 6), 1));
    const dir = `${month.getUTCFullYear()}/${String(month.getUTCMonth() + 1).padStart(2, '0')}`;
    paths.push(`${dir}/INV-${String(n).padStart(6, '0')}.pdf`);
  }
  paths.push('2025/04/請求書_株式会社サンプル商事.pdf', '2025/03/納品書 第1支店.pdf');
  return paths;
}

/** Writes the sample PDF tree into `dir` (created if needed); returns the relative paths. */
export async function createSampleAssets(dir: string, count = 50): Promise<string[]> {
  const paths = sampleAssetPaths(count);
  for (const relative of paths) {
    const path = join(dir, relative);
    await mkdir(join(path, '..'), { recursive: true });
    await writeFile(path, minimalPdf(`erp4 sample asset ${relative.replace(/[^\x20-\x7e]/g, '?')}`));
  }
  return paths;
}

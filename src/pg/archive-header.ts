/**
 * The header of a pg_dump archive (PostgreSQL's pg_backup_archiver.c, ReadHead): what a dump
 * made elsewhere says about itself. `erp4-backup import` reads it to refuse a file that is not a
 * custom-format archive and to learn the database name, server and pg_dump versions and the time
 * the dump was taken, which nobody else recorded for the old scripts' dumps.
 *
 * Pure: parses bytes, no I/O.
 */

export interface ArchiveHeader {
  /** Archive format version, e.g. `1.14` (PostgreSQL 15). */
  version: string;
  /** The wall-clock time pg_dump started, in the time zone of the host that ran it (struct tm). */
  createdAt: { year: number; month: number; day: number; hour: number; minute: number; second: number };
  database: string;
  /** The dumped server's version; empty for archive versions before 1.10. */
  serverVersion: string;
  /** pg_dump's version; empty for archive versions before 1.10. */
  pgDumpVersion: string;
}

/** How many bytes of a file parseArchiveHeader needs at most (names are at most 63 bytes). */
export const ARCHIVE_HEADER_BYTES = 4096;

const MAGIC = 'PGDMP';
const FORMAT_NAMES: Record<number, string> = { 1: 'custom', 3: 'tar', 4: 'null', 5: 'directory' };

export class NotAnArchiveError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotAnArchiveError';
  }
}

/** Parses the start of a file as a pg_dump custom-format (-Fc) archive header; throws NotAnArchiveError saying what the file is instead. */
export function parseArchiveHeader(bytes: Uint8Array): ArchiveHeader {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buffer.subarray(0, MAGIC.length).toString('latin1') !== MAGIC) throw new NotAnArchiveError(describeNonArchive(buffer));
  let at = MAGIC.length;
  const byte = (): number => {
    if (at >= buffer.length) throw new NotAnArchiveError('is a truncated pg_dump archive (its header ends early)');
    return buffer[at++]!;
  };
  const major = byte();
  const minor = byte();
  const revision = major > 1 || (major === 1 && minor > 0) ? byte() : 0;
  const atLeast = (wantMinor: number) => major > 1 || (major === 1 && minor >= wantMinor);
  if (major !== 1 || !atLeast(4)) throw new NotAnArchiveError(`is a pg_dump archive of format version ${major}.${minor}, older than this tool reads (1.4)`);
  const intSize = byte();
  if (intSize < 1 || intSize > 8) throw new NotAnArchiveError(`is a damaged pg_dump archive (integer size ${intSize})`);
  if (atLeast(7)) byte(); // offset size: only the table of contents uses it
  const format = byte();
  if (format !== 1) {
    throw new NotAnArchiveError(`is a pg_dump archive in ${FORMAT_NAMES[format] ?? `unknown (${format})`} format, not the custom format (pg_dump -Fc) this imports`);
  }
  const int = (): number => {
    const negative = byte() !== 0;
    let value = 0;
    for (let i = 0; i < intSize; i += 1) value += byte() * 2 ** (8 * i);
    return negative ? -value : value;
  };
  const text = (): string => {
    const length = int();
    if (length < 0) return '';
    if (at + length > buffer.length) throw new NotAnArchiveError('is a truncated pg_dump archive (its header ends early)');
    const value = buffer.subarray(at, at + length).toString('utf8');
    at += length;
    return value;
  };
  // Compression: one byte (the algorithm) from 1.15, an integer (the level) before.
  if (atLeast(15)) byte();
  else int();
  const [second, minute, hour, day, month, year] = [int(), int(), int(), int(), int(), int()];
  int(); // tm_isdst: the wall-clock fields above are what counts
  const database = text();
  const serverVersion = atLeast(10) ? text() : '';
  const pgDumpVersion = atLeast(10) ? text() : '';
  return {
    version: `${major}.${minor}${revision ? `.${revision}` : ''}`,
    createdAt: { year: year! + 1900, month: month! + 1, day: day!, hour: hour!, minute: minute!, second: second! },
    database,
    serverVersion,
    pgDumpVersion,
  };
}

/** What a file that lacks the PGDMP signature looks like, so the refusal says what to do. */
function describeNonArchive(buffer: Buffer): string {
  const start = buffer.subarray(0, 64).toString('latin1');
  if (buffer.length === 0) return 'is empty, not a pg_dump archive';
  if (start.startsWith('-----BEGIN PGP MESSAGE') || isBinaryOpenPgp(buffer[0]!)) {
    return 'is OpenPGP-encrypted, not a pg_dump archive: decrypt it first (gpg --decrypt --output <file>.dump <file>) and import the result';
  }
  if (start.startsWith('--') || /^(SET|CREATE|BEGIN)\b/.test(start)) return 'is a plain SQL script, not a pg_dump custom-format archive (pg_dump -Fc)';
  if (buffer.length >= 262 && buffer.subarray(257, 262).toString('latin1') === 'ustar') return 'is a tar archive, not a pg_dump custom-format archive (pg_dump -Fc)';
  if (buffer[0] === 0x1f && buffer[1] === 0x8b) return 'is gzip-compressed, not a pg_dump custom-format archive (pg_dump -Fc): decompress it first';
  return 'is not a pg_dump custom-format archive (pg_dump -Fc): it does not start with the PGDMP signature';
}

/** An OpenPGP packet tag byte of the packets an encrypted message starts with (PKESK 1, SKESK 3, SEIPD 18). */
function isBinaryOpenPgp(first: number): boolean {
  if ((first & 0x80) === 0) return false;
  const tag = first & 0x40 ? first & 0x3f : (first >> 2) & 0x0f;
  return tag === 1 || tag === 3 || tag === 18;
}

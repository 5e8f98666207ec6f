import { describe, expect, it } from 'vitest';
import { wallTimeToUtc } from '../../src/import-dump.js';
import { NotAnArchiveError, parseArchiveHeader } from '../../src/pg/archive-header.js';

/** A pg_dump archive header as PostgreSQL's WriteHead writes it: 4-byte integers, sign byte first. */
function header(options: { version?: [number, number, number]; format?: number; tm?: number[]; strings?: string[] } = {}): Buffer {
  const [major, minor, revision] = options.version ?? [1, 14, 0];
  const int = (value: number) => {
    const bytes = Buffer.alloc(5);
    bytes[0] = value < 0 ? 1 : 0;
    bytes.writeUInt32LE(Math.abs(value), 1);
    return bytes;
  };
  const text = (value: string) => Buffer.concat([int(Buffer.byteLength(value)), Buffer.from(value, 'utf8')]);
  const compression = minor >= 15 ? Buffer.from([0]) : int(-1);
  // struct tm: sec, min, hour, mday, mon (0-11), year (since 1900), isdst
  const tm = options.tm ?? [48, 39, 3, 30, 10, 126, 0];
  return Buffer.concat([
    Buffer.from('PGDMP', 'latin1'),
    Buffer.from([major, minor, revision, 4, 8, options.format ?? 1]),
    compression,
    ...tm.map(int),
    ...(options.strings ?? ['erp4 本番', '15.18 (Debian 15.18-0+deb12u1)', '15.18 (Debian 15.18-0+deb12u1)']).map(text),
    Buffer.alloc(64),
  ]);
}

describe('parseArchiveHeader', () => {
  it('reads the version, creation time, database and versions of a custom-format archive', () => {
    expect(parseArchiveHeader(header())).toEqual({
      version: '1.14',
      createdAt: { year: 2026, month: 11, day: 30, hour: 3, minute: 39, second: 48 },
      database: 'erp4 本番',
      serverVersion: '15.18 (Debian 15.18-0+deb12u1)',
      pgDumpVersion: '15.18 (Debian 15.18-0+deb12u1)',
    });
  });

  it('reads the one-byte compression field of archive version 1.15 (PostgreSQL 16)', () => {
    expect(parseArchiveHeader(header({ version: [1, 15, 0], strings: ['erp4', '16.4', '16.4'] }))).toMatchObject({ version: '1.15', database: 'erp4', pgDumpVersion: '16.4' });
  });

  it.each([
    ['a plain SQL script', Buffer.from('--\n-- PostgreSQL database dump\n--\n'), /plain SQL script/],
    ['an OpenPGP message (binary)', Buffer.from([0x85, 0x01, 0x0c, 0x03]), /OpenPGP-encrypted.*decrypt it first/],
    ['an OpenPGP message (armoured)', Buffer.from('-----BEGIN PGP MESSAGE-----\n'), /OpenPGP-encrypted/],
    ['a gzip file', Buffer.from([0x1f, 0x8b, 0x08, 0x00]), /gzip-compressed/],
    ['an empty file', Buffer.alloc(0), /is empty/],
    ['a PDF', Buffer.from('%PDF-1.4'), /does not start with the PGDMP signature/],
    ['a tar-format pg_dump archive header', header({ format: 3 }), /in tar format, not the custom format/],
    ['a directory-format toc', header({ format: 5 }), /in directory format/],
    ['a truncated header', header().subarray(0, 30), /truncated/],
  ])('refuses %s, saying what it is', (_what, bytes, message) => {
    expect(() => parseArchiveHeader(bytes)).toThrow(NotAnArchiveError);
    expect(() => parseArchiveHeader(bytes)).toThrow(message);
  });
});

describe('wallTimeToUtc', () => {
  const wall = { year: 2026, month: 11, day: 30, hour: 3, minute: 39, second: 48 };

  it('reads a wall-clock time in the given zone', () => {
    expect(wallTimeToUtc(wall, 'Asia/Tokyo').toISOString()).toBe('2026-11-29T18:39:48.000Z');
    expect(wallTimeToUtc(wall, 'UTC').toISOString()).toBe('2026-11-30T03:39:48.000Z');
  });

  it('follows daylight saving time', () => {
    expect(wallTimeToUtc({ ...wall, month: 7 }, 'Europe/Berlin').toISOString()).toBe('2026-07-30T01:39:48.000Z');
    expect(wallTimeToUtc(wall, 'Europe/Berlin').toISOString()).toBe('2026-11-30T02:39:48.000Z');
  });
});

import { chmod, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { resolvePgTool } from '../../src/pg/tools.js';

// The Docker image carries the client tools of PostgreSQL 15, 16 and 17 in Debian's layout; the
// worker must run the one of the server's major (or the next newer one), never an older one.
describe('resolvePgTool picks the client tools per server major', () => {
  let root: string;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'pg-layout-'));
    for (const major of ['15', '16', '17']) {
      await mkdir(join(root, major, 'bin'), { recursive: true });
      await writeFile(join(root, major, 'bin', 'pg_dump'), '#!/bin/sh\n');
      await chmod(join(root, major, 'bin', 'pg_dump'), 0o755);
    }
    await mkdir(join(root, '18', 'bin'), { recursive: true }); // a major without client tools installed
    await mkdir(join(root, 'common'));
  });

  it.each([
    [15, '15'],
    [16, '16'],
    [17, '17'],
  ])('server %i -> /usr/lib/postgresql/%s/bin', async (serverMajor, expected) => {
    expect(await resolvePgTool('pg_dump', { serverMajor, debianRoot: root })).toBe(join(root, expected, 'bin', 'pg_dump'));
  });

  it('takes the next newer major when the server major has no tools', async () => {
    expect(await resolvePgTool('pg_dump', { serverMajor: 14, debianRoot: root })).toBe(join(root, '15', 'bin', 'pg_dump'));
  });

  it('falls back to PATH (checked for its version later) when only older majors exist', async () => {
    expect(await resolvePgTool('pg_dump', { serverMajor: 18, debianRoot: root })).toBe('pg_dump');
  });

  it('uses PG_BIN_DIR whatever is installed', async () => {
    expect(await resolvePgTool('pg_dump', { serverMajor: 16, binDir: '/opt/pg/bin', debianRoot: root })).toBe('/opt/pg/bin/pg_dump');
  });
});

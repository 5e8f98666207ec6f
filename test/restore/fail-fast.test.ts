import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPermanent } from '../../activities/failures.js';
import { ToolError } from '../../src/child-process.js';
import { runCommand } from '../../src/dev/processes.js';
import { pgChildEnv, pgClientConfig, type DbConnection } from '../../src/pg/connection.js';
import { createEmptyDatabase, dropDatabase, restoreDump } from '../../src/pg/restore.js';
import { applyGlobalsScript } from '../../src/restore/apply-globals.js';
import { services } from '../helpers/services.js';

// Issue 13 item 3 against the real server and the real tools: what a retry cannot fix fails at
// once (non-retryable, its first error lines named); what a retry can fix is left retryable; a
// globals step that partly ran completes on its retry.
describe('restore failures: fail fast, retry what can finish', () => {
  const s = services();
  const db: DbConnection = { host: s.postgres.host, port: s.postgres.port, user: s.postgres.user, password: s.postgres.password, database: 'postgres' };
  const tag = `${process.pid}`;
  const source = `failfast_src_${tag}`;
  const target = `failfast_dst_${tag}`;
  const limitedRole = `failfast_limited_${tag}`;
  let dir: string;
  let tableOnlyDump: string;

  const admin = async <T>(sql: string, database = 'postgres'): Promise<void> => {
    const client = new pg.Client(pgClientConfig(db, database));
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  const restoreError = async (dbc: DbConnection, dump: string): Promise<ToolError> => {
    const error = await restoreDump(dbc, target, dump, { pgBinDir: s.postgres.binDir, jobs: 1 }).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(ToolError);
    return error as ToolError;
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'failfast-'));
    await admin(`CREATE DATABASE ${source}`);
    await admin(
      `CREATE TYPE order_status AS ENUM ('open', 'paid');
       CREATE TABLE orders (id int PRIMARY KEY, status order_status NOT NULL);
       INSERT INTO orders SELECT g, 'open' FROM generate_series(1, 100) g;`,
      source,
    );
    // A dump of one table without the type it uses: pg_restore meets `type ... does not exist`.
    tableOnlyDump = join(dir, 'orders-only.dump');
    await runCommand(join(s.postgres.binDir, 'pg_dump'), ['--format=custom', '--table=public.orders', `--file=${tableOnlyDump}`], {
      env: pgChildEnv(db, source),
    });
    await createEmptyDatabase(db, target);
    await admin(`CREATE ROLE ${limitedRole} LOGIN PASSWORD 'limited' CONNECTION LIMIT 0`);
  });
  afterAll(async () => {
    await dropDatabase(db, source);
    await dropDatabase(db, target);
    await admin(`DROP ROLE IF EXISTS ${limitedRole}`);
    await rm(dir, { recursive: true, force: true });
  });

  it('an SQL error in pg_restore (a type the dump lacks) is permanent and named by its first lines', async () => {
    const error = await restoreError(db, tableOnlyDump);
    expect(error.permanent).toBe(true);
    expect(isPermanent(error)).toBe(true);
    expect(error.message).toMatch(/^pg_restore failed \(not retried: the same input fails the same way\): pg_restore: error: could not execute query: ERROR: {2}type "public\.order_status" does not exist/);
    expect(error.message.split('\n').length).toBeLessThanOrEqual(6);
  });

  it('a corrupt archive (a dump cut in half) is permanent', async () => {
    const cut = join(dir, 'cut.dump');
    await writeFile(cut, await readFile(tableOnlyDump));
    await truncate(cut, Math.floor((await readFile(cut)).length / 2));
    const error = await restoreError(db, cut);
    expect(error.permanent).toBe(true);
    expect(error.message).toMatch(/not retried/);
    expect(error.message).toMatch(/pg_restore: error: /);
  });

  it('a refused connection and "too many connections" stay retryable', async () => {
    const closedPort = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as { port: number };
        probe.close(() => resolve(port));
      });
    });
    const refused = await restoreError({ ...db, host: '127.0.0.1', port: closedPort }, tableOnlyDump);
    expect(refused.message).toMatch(/Connection refused/);
    expect(refused.permanent).toBe(false);
    expect(isPermanent(refused)).toBe(false);

    const crowded = await restoreError({ ...db, user: limitedRole, password: 'limited' }, tableOnlyDump);
    expect(crowded.message).toMatch(/too many connections for role/);
    expect(crowded.permanent).toBe(false);
  });

  it('applying the roles of a globals script again (a retry after a crash) completes instead of failing on "role already exists"', async () => {
    const [reader, writer] = [`failfast_reader_${tag}`, `failfast_writer_${tag}`];
    // The shape pg_dumpall --globals-only writes: CREATE and ALTER on one line each, then memberships.
    const globals = [
      `CREATE ROLE ${reader};`,
      `ALTER ROLE ${reader} WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB NOLOGIN NOREPLICATION NOBYPASSRLS;`,
      `CREATE ROLE ${writer};`,
      `ALTER ROLE ${writer} WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS;`,
      `GRANT ${reader} TO ${writer} GRANTED BY ${s.postgres.user};`,
      '',
    ].join('\n');
    const plan = { create: [reader, writer], change: [], skipped: [] };
    const apply = (script: string) =>
      applyGlobalsScript(db, { globals: script, plan, scriptPath: join(dir, 'globals.apply.sql'), pgBinDir: s.postgres.binDir });
    try {
      // The first attempt died after creating one role: the retry creates the other and alters both.
      await apply(globals.split('\n').slice(0, 2).join('\n'));
      await apply(globals);
      // And once more, as a retry after a crash between psql's end and the activity's report.
      await apply(globals);
      const client = new pg.Client(pgClientConfig(db));
      await client.connect();
      try {
        const roles = await client.query<{ rolname: string; rolcanlogin: boolean }>('SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname = ANY($1) ORDER BY 1', [[reader, writer]]);
        expect(roles.rows).toEqual([
          { rolname: reader, rolcanlogin: false },
          { rolname: writer, rolcanlogin: true },
        ]);
        const member = await client.query('SELECT 1 FROM pg_auth_members WHERE roleid = $1::regrole AND member = $2::regrole', [reader, writer]);
        expect(member.rowCount).toBe(1);
      } finally {
        await client.end();
      }
      // A script that cannot succeed (a setting with an invalid value) fails for good.
      const broken = await applyGlobalsScript(db, {
        globals: `ALTER ROLE ${reader} SET work_mem TO 'lots';\n`,
        plan: { create: [], change: [reader], skipped: [] },
        scriptPath: join(dir, 'broken.sql'),
        pgBinDir: s.postgres.binDir,
      }).then(() => undefined, (e: unknown) => e);
      expect(broken).toBeInstanceOf(ToolError);
      expect((broken as ToolError).permanent).toBe(true);
      expect((broken as ToolError).message).toMatch(/^psql failed \(not retried: the same input fails the same way\): psql:.*ERROR: {2}invalid value for parameter "work_mem"/);
    } finally {
      await admin(`DROP ROLE IF EXISTS ${writer}; DROP ROLE IF EXISTS ${reader};`);
    }
  });
});

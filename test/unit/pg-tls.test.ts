import net from 'node:net';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { isPermanent } from '../../activities/failures.js';
import { pgChildEnv, pgClientConfig, type DbConnection } from '../../src/pg/connection.js';
import { PgTlsError, pgSslEnv } from '../../src/pg/tls.js';
import { scriptForMissingRoles } from '../../src/restore/drill-roles.js';

const db: DbConnection = { host: 'db.internal', port: 5432, user: 'erp4_backup', database: 'erp4' };

describe('PostgreSQL TLS settings for node-pg and the pg tools', () => {
  it('hands libpq its sslmode and files; allow runs as disable; unset is libpq\'s prefer', () => {
    expect(pgSslEnv(undefined)).toEqual({ PGSSLMODE: 'prefer' });
    expect(pgSslEnv({ mode: 'allow' })).toEqual({ PGSSLMODE: 'disable' });
    expect(pgSslEnv({ mode: 'verify-full', rootCertFile: '/tls/ca.crt', certFile: '/tls/c.crt', keyFile: '/tls/c.key' })).toEqual({
      PGSSLMODE: 'verify-full',
      PGSSLROOTCERT: '/tls/ca.crt',
      PGSSLCERT: '/tls/c.crt',
      PGSSLKEY: '/tls/c.key',
    });
    expect(pgChildEnv({ ...db, tls: { mode: 'require' } })).toMatchObject({ PGHOST: 'db.internal', PGSSLMODE: 'require' });
  });

  it('gives node-pg its own TLS socket only where TLS may be used: never over a Unix socket, never for disable/allow', () => {
    expect(pgClientConfig({ ...db, tls: { mode: 'require' } })).toMatchObject({ ssl: false, stream: expect.any(Function) });
    expect(pgClientConfig(db)).toMatchObject({ ssl: false, stream: expect.any(Function) });
    for (const mode of ['disable', 'allow'] as const) expect(pgClientConfig({ ...db, tls: { mode } })).not.toHaveProperty('stream');
    expect(pgClientConfig({ ...db, host: '/var/run/postgresql', tls: { mode: 'verify-full', rootCertFile: '/tls/ca.crt' } })).not.toHaveProperty('stream');
  });

  it('treats a TLS failure as permanent: retrying cannot fix a wrong CA or host name', () => {
    expect(isPermanent(new PgTlsError('the certificate of PostgreSQL at DB_HOST x is not trusted by DB_SSLROOTCERT'))).toBe(true);
  });
});

describe('apply-roles on a drill server', () => {
  const globals = [
    'CREATE ROLE erp4_readonly;',
    'ALTER ROLE erp4_readonly WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB NOLOGIN NOREPLICATION NOBYPASSRLS;',
    'CREATE ROLE erp4_app;',
    "ALTER ROLE erp4_app WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 20 PASSWORD 'SCRAM-SHA-256$4096:x';",
    'CREATE ROLE "Ledger ""Owner""";',
    'ALTER ROLE "Ledger ""Owner""" WITH NOLOGIN;',
    'GRANT erp4_readonly TO erp4_app GRANTED BY postgres;',
    'GRANT erp4_readonly TO "Ledger ""Owner""" GRANTED BY postgres;',
  ].join('\n');

  it('creates only the missing roles, with their attributes and the memberships granted to them; existing roles are left alone', () => {
    const roles = ['erp4_readonly', 'erp4_app', 'Ledger "Owner"'];
    const script = scriptForMissingRoles(globals, roles, ['erp4_readonly', 'Ledger "Owner"']);
    expect(script.split('\n')).toEqual([
      'CREATE ROLE erp4_readonly;',
      'ALTER ROLE erp4_readonly WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB NOLOGIN NOREPLICATION NOBYPASSRLS;',
      'CREATE ROLE "Ledger ""Owner""";',
      'ALTER ROLE "Ledger ""Owner""" WITH NOLOGIN;',
      'GRANT erp4_readonly TO "Ledger ""Owner""" GRANTED BY postgres;',
    ]);
  });
});

describe("node-pg's TLS-negotiating socket against misbehaving servers", () => {
  const withServer = async (onConnection: (socket: net.Socket) => void, run: (port: number) => Promise<void>) => {
    const server = net.createServer(onConnection);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      await run((server.address() as net.AddressInfo).port);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  };
  const connect = (port: number) => new pg.Client(pgClientConfig({ ...db, host: '127.0.0.1', port, tls: { mode: 'prefer' } })).connect();

  it('reports a server that hangs up before answering at once, not after the connection timeout', async () => {
    await withServer(
      (socket) => socket.destroy(),
      async (port) => {
        const started = Date.now();
        await expect(connect(port)).rejects.toThrow(/terminated unexpectedly/i);
        expect(Date.now() - started).toBeLessThan(5_000);
      },
    );
  });

  it('refuses bytes sent after the one-byte answer to the TLS request', async () => {
    await withServer(
      (socket) => socket.once('data', () => socket.write('NZ')),
      async (port) => {
        await expect(connect(port)).rejects.toThrow(/DB_HOST 127\.0\.0\.1 DB_PORT \d+ sent unexpected data in answer to the TLS request/);
      },
    );
  });
});

import { chmod, chown, copyFile, mkdtemp, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTool, ToolError } from '../../src/child-process.js';
import { loadConfig } from '../../src/config.js';
import { startPostgres, type PostgresCluster } from '../../src/dev/postgres.js';
import { connectDatabase, explainPgToolFailure, PERMANENT_PG_ERRORS, pgChildEnv, pgClientConfig, type DbConnection } from '../../src/pg/connection.js';
import type { PgTls } from '../../src/pg/tls.js';
import { createBackupRuntime } from '../../src/runtime.js';
import { harnessDb } from '../helpers/drill.js';
import { services } from '../helpers/services.js';
import { issueCertificate, makeCa, type KeyPair } from '../helpers/test-ca.js';

// DB_SSLMODE & co. against a real PostgreSQL with ssl=on and a throwaway CA, for node-pg (the
// fingerprint, restores' checks) and pg_dump (every pg tool gets the same environment) alike.
// The role `tls_only` is refused without TLS (pg_hba hostnossl ... reject), so a connection that
// works proves TLS was used; `tls_cert_user` logs in by client certificate only (pg_hba cert).
describe('PostgreSQL TLS for node-pg and pg_dump alike', () => {
  const s = services();
  let dir: string;
  let cluster: PostgresCluster;
  let ca: KeyPair;
  let otherCa: KeyPair;
  let serverCert: KeyPair;
  let clientCert: KeyPair;
  let passwordClientCert: KeyPair;
  const password = 'tls-only-pw';

  const tlsDb = (host: string, tls: PgTls, user = 'tls_only'): DbConnection => ({ host, port: cluster.port, user, password, database: 'tlsdb', tls });

  /** node-pg through the product's connection settings: whether the session is encrypted. */
  const nodePgSsl = async (db: DbConnection): Promise<boolean> => {
    const client = new pg.Client(pgClientConfig(db));
    await connectDatabase(client, db);
    try {
      return (await client.query<{ ssl: boolean }>('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')).rows[0]!.ssl;
    } finally {
      await client.end();
    }
  };
  /** pg_dump with the product's child environment, its failure explained as the product does. */
  const pgDump = async (db: DbConnection): Promise<string> => {
    try {
      return await runTool(join(s.postgres.binDir, 'pg_dump'), ['--schema-only', '--no-password'], { env: pgChildEnv(db), permanentErrors: PERMANENT_PG_ERRORS });
    } catch (error) {
      throw explainPgToolFailure(error, db.settingPrefix);
    }
  };
  const permanentToolError = (pattern: RegExp) => expect.objectContaining({ name: 'ToolError', permanent: true, message: expect.stringMatching(pattern) }) as unknown as ToolError;

  /** Swaps the server's certificate and key (the server re-reads them on reload). */
  const serveCertificate = async (pair: KeyPair) => {
    // Owned by the server's OS user, as startPostgres leaves them (a copy may come out root's, and
    // a key the server cannot read keeps the old certificate).
    const owner = await stat(cluster.dataDir);
    for (const [from, to] of [[pair.certFile, 'ssl_cert_file.pem'], [pair.keyFile, 'ssl_key_file.pem']] as const) {
      await copyFile(from, join(cluster.dataDir, to));
      await chown(join(cluster.dataDir, to), owner.uid, owner.gid);
      await chmod(join(cluster.dataDir, to), 0o600);
    }
    const admin = new pg.Client({ host: cluster.host, port: cluster.port, user: cluster.user, password: cluster.password, database: 'postgres', ssl: { rejectUnauthorized: false } });
    await admin.connect();
    try {
      await admin.query('SELECT pg_reload_conf()');
    } finally {
      await admin.end();
    }
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(s.workDir, 'pg-tls-'));
    await chmod(dir, 0o755);
    ca = await makeCa(dir, 'test-ca');
    otherCa = await makeCa(dir, 'other-ca');
    serverCert = await issueCertificate(dir, 'server', { ca, commonName: 'localhost', dnsNames: ['localhost'] });
    const selfSigned = await issueCertificate(dir, 'self-signed', { commonName: 'localhost', dnsNames: ['localhost'] });
    clientCert = await issueCertificate(dir, 'client', { ca, commonName: 'tls_cert_user' });
    passwordClientCert = await issueCertificate(dir, 'client-pw', { ca, commonName: 'tls_cert_pw' });
    for (const pair of [clientCert, passwordClientCert]) await chmod(pair.keyFile, 0o600);
    cluster = await startPostgres({
      dir: join(dir, 'cluster'),
      binDir: s.postgres.binDir,
      logPath: join(s.workDir, 'logs', `postgres-tls-${process.pid}.log`),
      ssl: { certFile: selfSigned.certFile, keyFile: selfSigned.keyFile, caFile: ca.certFile },
      hbaLines: [
        'hostssl all tls_cert_user 127.0.0.1/32 cert',
        'hostssl all tls_cert_pw 127.0.0.1/32 scram-sha-256 clientcert=verify-full',
        'hostnossl all tls_only 127.0.0.1/32 reject',
      ],
    });
    const admin = new pg.Client({ host: cluster.host, port: cluster.port, user: cluster.user, password: cluster.password, database: 'postgres', ssl: { rejectUnauthorized: false } });
    await admin.connect();
    try {
      await admin.query(`CREATE ROLE tls_only LOGIN PASSWORD '${password}'`);
      await admin.query('CREATE ROLE tls_cert_user LOGIN');
      await admin.query(`CREATE ROLE tls_cert_pw LOGIN PASSWORD '${password}'`);
      await admin.query('CREATE DATABASE tlsdb OWNER tls_only');
    } finally {
      await admin.end();
    }
    const owner = new pg.Client({ ...pgClientConfig(tlsDb('127.0.0.1', { mode: 'require' })) });
    await owner.connect();
    try {
      await owner.query('CREATE TABLE invoices_tls (id int PRIMARY KEY); GRANT SELECT ON invoices_tls TO tls_cert_user, tls_cert_pw');
    } finally {
      await owner.end();
    }
  });

  afterAll(async () => {
    await cluster?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  describe('a server with a self-signed certificate', () => {
    it('require: both connect over TLS without verifying anything', async () => {
      const db = tlsDb('127.0.0.1', { mode: 'require' });
      expect(await nodePgSsl(db)).toBe(true);
      expect(await pgDump(db)).toContain('CREATE TABLE public.invoices_tls');
    });

    it('prefer: both use the TLS the server offers', async () => {
      const db = tlsDb('127.0.0.1', { mode: 'prefer' });
      expect(await nodePgSsl(db)).toBe(true);
      expect(await pgDump(db)).toContain('CREATE TABLE public.invoices_tls');
    });

    it('disable, and allow (which runs as disable): both are refused by a server that demands TLS', async () => {
      for (const mode of ['disable', 'allow'] as const) {
        const db = tlsDb('127.0.0.1', { mode });
        await expect(nodePgSsl(db)).rejects.toThrow(/rejects connection .*no encryption.*DB_SSLMODE: set prefer or stronger/);
        await expect(pgDump(db)).rejects.toEqual(permanentToolError(/no encryption.*DB_SSLMODE: set prefer or stronger/s));
      }
    });

    it('verify-ca with a CA that did not sign it: both fail naming DB_SSLROOTCERT, not retried', async () => {
      const db = tlsDb('127.0.0.1', { mode: 'verify-ca', rootCertFile: ca.certFile });
      await expect(nodePgSsl(db)).rejects.toMatchObject({ name: 'PgTlsError', message: expect.stringMatching(/not trusted by DB_SSLROOTCERT/) });
      await expect(pgDump(db)).rejects.toEqual(permanentToolError(/certificate verify failed.*check DB_SSLROOTCERT/s));
    });
  });

  describe('a server with a certificate for "localhost" signed by the test CA', () => {
    beforeAll(async () => {
      await serveCertificate(serverCert);
      // The reload is asynchronous: wait until new sessions present the new certificate.
      const verified = tlsDb('localhost', { mode: 'verify-full', rootCertFile: ca.certFile });
      for (let attempt = 0; !(await nodePgSsl(verified).catch(() => false)); attempt += 1) {
        if (attempt === 100) throw new Error('the server did not take up the CA-signed certificate');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    });

    it('verify-full works with the CA and the name in the certificate, configured as an operator would (DB_* -> runtime)', async () => {
      const config = loadConfig({
        DB_NAME: 'tlsdb',
        DB_HOST: 'localhost',
        DB_PORT: String(cluster.port),
        DB_USER: 'tls_only',
        DB_PASSWORD: password,
        DB_SSLMODE: 'verify-full',
        DB_SSLROOTCERT: ca.certFile,
        BACKUP_DIR: join(dir, 'backups'),
      });
      const runtime = await createBackupRuntime(config);
      expect(runtime.db.tls).toEqual({ mode: 'verify-full', rootCertFile: ca.certFile });
      expect(await nodePgSsl(runtime.db)).toBe(true);
      expect(await pgDump(runtime.db)).toContain('CREATE TABLE public.invoices_tls');
    });

    it('verify-full with a host name the certificate does not hold: both fail naming DB_HOST', async () => {
      const db = tlsDb('127.0.0.1', { mode: 'verify-full', rootCertFile: ca.certFile });
      await expect(nodePgSsl(db)).rejects.toMatchObject({ name: 'PgTlsError', message: expect.stringMatching(/does not name 127\.0\.0\.1.*set DB_HOST to a name the certificate holds/s) });
      await expect(pgDump(db)).rejects.toEqual(permanentToolError(/does not match host name "127\.0\.0\.1".*check DB_HOST/s));
    });

    it('verify-ca checks the chain but not the name: both connect to 127.0.0.1', async () => {
      const db = tlsDb('127.0.0.1', { mode: 'verify-ca', rootCertFile: ca.certFile });
      expect(await nodePgSsl(db)).toBe(true);
      expect(await pgDump(db)).toContain('CREATE TABLE public.invoices_tls');
    });

    it('prefer and require with DB_SSLROOTCERT verify the chain, as libpq does: another CA fails for both, the right one works', async () => {
      for (const mode of ['prefer', 'require'] as const) {
        const db = tlsDb('127.0.0.1', { mode, rootCertFile: otherCa.certFile });
        await expect(nodePgSsl(db)).rejects.toMatchObject({ name: 'PgTlsError', message: expect.stringMatching(/not trusted by DB_SSLROOTCERT/) });
        await expect(pgDump(db)).rejects.toEqual(permanentToolError(/certificate verify failed.*check DB_SSLROOTCERT/s));
        const trusted = tlsDb('127.0.0.1', { mode, rootCertFile: ca.certFile });
        expect(await nodePgSsl(trusted)).toBe(true);
        expect(await pgDump(trusted)).toContain('CREATE TABLE public.invoices_tls');
      }
    });

    it('verify-full with a wrong CA: both fail naming DB_SSLROOTCERT', async () => {
      const db = tlsDb('localhost', { mode: 'verify-full', rootCertFile: otherCa.certFile });
      await expect(nodePgSsl(db)).rejects.toMatchObject({ name: 'PgTlsError', message: expect.stringMatching(/not trusted by DB_SSLROOTCERT \(.*other-ca\.crt\)/) });
      await expect(pgDump(db)).rejects.toEqual(permanentToolError(/certificate verify failed.*check DB_SSLROOTCERT/s));
    });

    it.each([
      ['pg_hba cert', 'tls_cert_user', () => clientCert],
      ['pg_hba clientcert=verify-full with a password', 'tls_cert_pw', () => passwordClientCert],
    ])('a client certificate logs in where the server demands one (%s); without it both fail naming DB_SSLCERT', async (_hba, user, pair) => {
      const withCert = tlsDb('localhost', { mode: 'verify-full', rootCertFile: ca.certFile, certFile: pair().certFile, keyFile: pair().keyFile }, user);
      expect(await nodePgSsl(withCert)).toBe(true);
      expect(await pgDump(withCert)).toContain('CREATE TABLE public.invoices_tls');

      const without = tlsDb('localhost', { mode: 'verify-full', rootCertFile: ca.certFile }, user);
      await expect(nodePgSsl(without)).rejects.toMatchObject({ name: 'DatabaseAccessError', message: expect.stringMatching(/certificate.*check DB_SSLCERT and DB_SSLKEY/s) });
      await expect(pgDump(without)).rejects.toEqual(permanentToolError(/certificate.*check DB_SSLCERT and DB_SSLKEY/s));
    });
  });

  it('prefer falls back to plaintext, for both, on a server without TLS (the harness server)', async () => {
    const db = { ...harnessDb(s), tls: { mode: 'prefer' } as PgTls };
    expect(await nodePgSsl(db)).toBe(false);
    expect(await pgDump(db)).toContain('CREATE TABLE');
    await expect(nodePgSsl({ ...db, tls: { mode: 'require' } })).rejects.toMatchObject({ name: 'PgTlsError', message: expect.stringMatching(/does not accept TLS, but DB_SSLMODE is require/) });
    await expect(pgDump({ ...db, tls: { mode: 'require' } })).rejects.toEqual(permanentToolError(/server does not support SSL.*DB_SSLMODE/s));
  });
});

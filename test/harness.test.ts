import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { Connection } from '@temporalio/client';
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import SftpClient from 'ssh2-sftp-client';
import { describe, expect, it } from 'vitest';
import { runGpg } from './helpers/gpg.js';
import { runCommand } from '../src/dev/processes.js';
import { testS3Client } from './helpers/s3-server.js';
import { services } from './helpers/services.js';
import { BACKUP_SEARCH_ATTRIBUTES } from '../src/temporal/search-attributes.js';

// Proves that every service the global setup started is the real thing and usable the way
// the product's tests use it.
const svc = services();

// ssh2-sftp-client logs every end/close event unless given its own listeners.
function quietSftpClient(): SftpClient {
  return new SftpClient('harness', { end: () => undefined, close: () => undefined });
}

describe('test harness services', () => {
  it('PostgreSQL serves the seeded sample ERP database', async () => {
    expect(svc.postgres.serverVersion).toMatch(/^15\.\d+$/);
    const client = new pg.Client({
      host: svc.postgres.host,
      port: svc.postgres.port,
      user: svc.postgres.user,
      password: svc.postgres.password,
      database: svc.postgres.sampleDb,
    });
    await client.connect();
    try {
      const counts = await client.query<{ customers: string; invoices: string; lines: string; jobs: string }>(
        `SELECT (SELECT count(*) FROM customers) AS customers, (SELECT count(*) FROM invoices) AS invoices,
                (SELECT count(*) FROM invoice_lines) AS lines, (SELECT count(*) FROM batch_jobs) AS jobs`,
      );
      expect(counts.rows[0]).toEqual({ customers: '200', invoices: '1000', lines: '3000', jobs: '4' });

      const customer = await client.query<{ name: string }>(`SELECT name FROM customers WHERE code = 'C00001'`);
      expect(customer.rows[0]?.name).toBe('株式会社サンプル商事 第1支店');

      // Money is numeric(18,2): invoice amounts are exactly the sum of their lines.
      const totals = await client.query<{ invoices: string; lines: string; view: string }>(
        `SELECT (SELECT sum(amount) FROM invoices) AS invoices, (SELECT sum(amount) FROM invoice_lines) AS lines,
                (SELECT sum(total_amount) FROM invoice_totals) AS view`,
      );
      const row = totals.rows[0];
      expect(row?.invoices).toMatch(/^\d+\.\d{2}$/);
      expect(Number(row?.invoices)).toBeGreaterThan(0);
      expect(row?.lines).toBe(row?.invoices);
      expect(row?.view).toBe(row?.invoices);

      const migrations = await client.query<{ migration_name: string }>(
        'SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL ORDER BY migration_name DESC LIMIT 1',
      );
      expect(migrations.rows[0]?.migration_name).toBe('20250210010000_invoice_pdf_path');

      const sequence = await client.query<{ last_value: string }>('SELECT last_value FROM invoice_number_seq');
      expect(Number(sequence.rows[0]?.last_value)).toBe(100_000 + 1000);

      const roles = await client.query<{ rolname: string }>(
        `SELECT rolname FROM pg_roles WHERE rolname IN ('erp4_app', 'erp4_readonly') ORDER BY rolname`,
      );
      expect(roles.rows.map((r) => r.rolname)).toEqual(['erp4_app', 'erp4_readonly']);
    } finally {
      await client.end();
    }
  });

  it('PostgreSQL binDir holds the client programs of the server major version', async () => {
    for (const program of ['pg_dump', 'pg_restore', 'pg_dumpall', 'psql']) {
      const info = await stat(join(svc.postgres.binDir, program));
      expect(info.isFile(), program).toBe(true);
    }
    const { stdout } = await runCommand(
      join(svc.postgres.binDir, 'pg_dumpall'),
      ['--globals-only', '-h', svc.postgres.host, '-p', String(svc.postgres.port), '-U', svc.postgres.user],
      { env: { ...process.env, PGPASSWORD: svc.postgres.password } },
    );
    expect(stdout).toContain('CREATE ROLE erp4_app;');
    expect(stdout).toContain('GRANT erp4_readonly TO erp4_app');
    const version = await runCommand(join(svc.postgres.binDir, 'pg_dump'), ['--version']);
    expect(version.stdout).toContain(`PostgreSQL) ${svc.postgres.serverVersion.split('.')[0]}.`);
  });

  it('the asset dir holds nested PDF files, some with Japanese names', async () => {
    const files = (await readdir(svc.assetDir, { recursive: true })).filter((name) => name.endsWith('.pdf'));
    expect(files.length).toBeGreaterThanOrEqual(50);
    expect(files.every((name) => /^\d{4}\/\d{2}\//.test(name))).toBe(true);
    expect(files.some((name) => /[\u3040-\u30ff\u4e00-\u9fff]/.test(name))).toBe(true);
    const first = await readFile(join(svc.assetDir, files[0] ?? ''), 'latin1');
    expect(first.startsWith('%PDF-1.4')).toBe(true);
    expect(first.trimEnd().endsWith('%%EOF')).toBe(true);
  });

  it('the Temporal dev server answers with the backup search attributes registered', async () => {
    const connection = await Connection.connect({ address: svc.temporal.address });
    try {
      const namespace = await connection.workflowService.describeNamespace({ namespace: svc.temporal.namespace });
      expect(namespace.namespaceInfo?.name).toBe('default');
      const { customAttributes } = await connection.operatorService.listSearchAttributes({
        namespace: svc.temporal.namespace,
      });
      for (const name of BACKUP_SEARCH_ATTRIBUTES) expect(customAttributes).toHaveProperty(name);
    } finally {
      await connection.close();
    }
  });

  it('the S3 server stores and returns objects in the test bucket', async () => {
    const client = testS3Client(svc.s3);
    try {
      const key = `harness/${Date.now()}/hello.txt`;
      await client.send(new PutObjectCommand({ Bucket: svc.s3.bucket, Key: key, Body: 'こんにちは S3', Metadata: { env: 'test' } }));
      const object = await client.send(new GetObjectCommand({ Bucket: svc.s3.bucket, Key: key }));
      expect(await object.Body?.transformToString('utf8')).toBe('こんにちは S3');
      expect(object.Metadata).toEqual({ env: 'test' });
    } finally {
      client.destroy();
    }
  });

  it('sshd serves SFTP with the advertised host key to the authorized client key', async () => {
    const sftp = quietSftpClient();
    const expectedKey = Buffer.from(svc.sftp.hostPublicKey.split(' ')[1] ?? '', 'base64');
    const offered: Buffer[] = [];
    await sftp.connect({
      host: svc.sftp.host,
      port: svc.sftp.port,
      username: svc.sftp.user,
      privateKey: await readFile(svc.sftp.privateKeyPath),
      hostVerifier: (key: Buffer) => {
        offered.push(key);
        return key.equals(expectedKey);
      },
    });
    try {
      await sftp.put(Buffer.from('sftp works'), `${svc.sftp.rootDir}/harness.txt`);
      const names = (await sftp.list(svc.sftp.rootDir)).map((entry) => entry.name);
      expect(names).toContain('harness.txt');
    } finally {
      await sftp.end();
    }
    const fingerprint = `SHA256:${createHash('sha256').update(offered[0] ?? Buffer.alloc(0)).digest('base64').replace(/=+$/, '')}`;
    expect(fingerprint).toBe(svc.sftp.hostKeyFingerprint);
  });

  it('sshd refuses a key that is not authorized', async () => {
    const sftp = quietSftpClient();
    // The server's own host key is a valid ed25519 key, but not in authorized_keys.
    const hostPrivateKeyPath = join(svc.sftp.privateKeyPath, '..', 'ssh_host_ed25519_key');
    await expect(
      sftp.connect({
        host: svc.sftp.host,
        port: svc.sftp.port,
        username: svc.sftp.user,
        privateKey: await readFile(hostPrivateKeyPath),
        hostVerifier: () => true,
        retries: 0,
      }),
    ).rejects.toThrow(/authentication/i);
  });

  it('a client whose host key check fails does not get a session', async () => {
    const sftp = quietSftpClient();
    await expect(
      sftp.connect({
        host: svc.sftp.host,
        port: svc.sftp.port,
        username: svc.sftp.user,
        privateKey: await readFile(svc.sftp.privateKeyPath),
        hostVerifier: () => false,
        retries: 0,
      }),
    ).rejects.toThrow();
  });

  it('the GnuPG keyring holds the test key with an encryption subkey', async () => {
    const { stdout } = await runGpg(svc.gnupg.home, ['--with-colons', '--list-keys', svc.gnupg.recipient]);
    const lines = stdout.toString('utf8').split('\n');
    expect(lines.some((line) => line.startsWith('uid:') && line.includes(svc.gnupg.recipient))).toBe(true);
    expect(lines.some((line) => line.startsWith('sub:') && line.split(':')[11]?.includes('e'))).toBe(true);
    expect(await readFile(svc.gnupg.publicKeyPath, 'utf8')).toContain('BEGIN PGP PUBLIC KEY BLOCK');
    expect(await readFile(svc.gnupg.privateKeyPath, 'utf8')).toContain('BEGIN PGP PRIVATE KEY BLOCK');
  });
});

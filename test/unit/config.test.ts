import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import {
  CONFIG_VARIABLES,
  ConfigError,
  loadConfig,
  redactedConfig,
  resolveInsideBackupDir,
  sshHostKeyFingerprint,
} from '../../src/config.js';
import { SECRET_FILE_VARIABLES } from '../../src/secret-files.js';
import { createTestCa } from '../helpers/temporal-ca.js';

// Fixtures are made while the file is collected, so the tables below can name real paths.
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'erp4-config-test-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function writeFixture(name: string, content: string, mode = 0o600): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, content, { mode });
  return file;
}

const backupDir = path.join(dir, 'backups');
const assetDir = path.join(dir, 'assets');
const pgBinDir = path.join(dir, 'pgbin');
for (const d of [backupDir, assetDir, pgBinDir]) fs.mkdirSync(d);
writeFixture('pgbin/pg_dump', '#!/bin/sh\n', 0o755);
fs.symlinkSync('/etc', path.join(backupDir, 'escape'));

// The config only checks the armour header of these; real keys are exercised by the crypto tests.
const publicKeyFile = writeFixture('public.asc', '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxjMEZ...\n-----END PGP PUBLIC KEY BLOCK-----\n');
const privateKeyFile = writeFixture('private.asc', '-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nxVgEZ...\n-----END PGP PRIVATE KEY BLOCK-----\n');
const passphraseFile = writeFixture('passphrase', 'correct horse\n');
const fingerprintQueriesFile = writeFixture('fingerprint.json', '[{"table": "invoices", "sums": ["amount"]}, {"table": "accounting.payments"}]\n');
const badFingerprintFile = writeFixture('bad-fingerprint.json', '[{"table": "Invoices; DROP TABLE x"}]\n');
const drillChecksFile = writeFixture('checks.sql', '-- name: invoices_total\nSELECT 1 AS expected, 1 AS actual;\n');
const badChecksFile = writeFixture('bad-checks.sql', 'SELECT 1;\n');

/** A real key pair from ssh-keygen: the fingerprints below are ssh-keygen's, not ours. */
function sshKey(name: string): { privateKeyFile: string; publicLine: string; fingerprint: string } {
  const privateKeyFile = path.join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', privateKeyFile]);
  const publicLine = fs.readFileSync(`${privateKeyFile}.pub`, 'utf8').trim();
  const fingerprint = execFileSync('ssh-keygen', ['-l', '-f', `${privateKeyFile}.pub`], { encoding: 'utf8' }).split(' ')[1] as string;
  return { privateKeyFile, publicLine, fingerprint };
}
const clientKey = sshKey('client_ed25519');
const hostKey = sshKey('host_ed25519');
// RESTORE_ALLOWED_SIGNERS_FILE: approvers' keys in OpenSSH allowed_signers form.
const allowedSignersFile = writeFixture('allowed_signers', `# approvers\nalice ${clientKey.publicLine}\nbob namespaces="erp4-backup-approve" ${hostKey.publicLine}\n`);
const strangerSignersFile = writeFixture('stranger_signers', `alice ${clientKey.publicLine}\nmallory ${hostKey.publicLine}\n`);
const notAKeySignersFile = writeFixture('not_a_key_signers', 'alice ssh-ed25519 bm90IGEga2V5\n');

/** PostgreSQL TLS files made by openssl: a CA, a client certificate signed by it and its key. */
function openssl(...args: string[]): void {
  execFileSync('openssl', args, { stdio: 'ignore' });
}
const pgCa = path.join(dir, 'pg-ca.crt');
openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', path.join(dir, 'pg-ca.key'), '-out', pgCa, '-days', '2', '-subj', '/CN=pg-ca');
const pgClientKey = path.join(dir, 'pg-client.key');
const pgClientCert = path.join(dir, 'pg-client.crt');
openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', pgClientKey, '-out', path.join(dir, 'pg-client.csr'), '-subj', '/CN=erp4_backup');
openssl('x509', '-req', '-in', path.join(dir, 'pg-client.csr'), '-CA', pgCa, '-CAkey', path.join(dir, 'pg-ca.key'), '-CAcreateserial', '-out', pgClientCert, '-days', '2');
fs.chmodSync(pgClientKey, 0o600);
const pgOtherKey = path.join(dir, 'pg-ca.key');
fs.chmodSync(pgOtherKey, 0o600);
const pgWorldReadableKey = writeFixture('pg-client-0644.key', fs.readFileSync(pgClientKey, 'utf8'), 0o644);
fs.chmodSync(pgWorldReadableKey, 0o644);
const pgEncryptedKey = path.join(dir, 'pg-client-encrypted.key');
openssl('pkey', '-in', pgClientKey, '-aes256', '-passout', 'pass:secret', '-out', pgEncryptedKey);
fs.chmodSync(pgEncryptedKey, 0o600);
const pgBrokenCert = writeFixture('pg-broken.crt', '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n');
const drillServer = { DRILL_DB_HOST: 'drill-db.internal' };

// The Temporal connection's certificates (src/temporal/connection.ts checks them at load).
const testCa = createTestCa(path.join(dir, 'tls'), 'config-test-ca');
const temporalClient = testCa.issue('temporal-client', { client: true });
const otherClient = testCa.issue('other-client', { client: true });
const temporalProfiles = writeFixture(
  'temporal.toml',
  `[profile.default]\naddress = "localhost:7233"\n\n[profile.staging]\naddress = "staging.example.com:7233"\n[profile.staging.tls]\nclient_cert_path = "${path.join(dir, 'none.pem')}"\nclient_key_path = "${temporalClient.keyPath}"\n`,
);
const brokenToml = writeFixture('broken.toml', '[profile.default\naddress = 1\n');

const SECRETS = {
  DB_PASSWORD: 'db-pass-Zq81',
  GPG_PASSPHRASE: 'gpg-pass-Wm42',
  S3_WRITER_SECRET_ACCESS_KEY: 'writer-secret-Kx93',
  S3_READER_SECRET_ACCESS_KEY: 'reader-secret-Jv27',
  S3_PRUNER_SECRET_ACCESS_KEY: 'pruner-secret-Hd64',
};
const WEBHOOK_TOKEN = 'T000-hook-token-Yp55';

/** The smallest valid environment: everything else takes its default. */
const base = { DB_NAME: 'erp4', BACKUP_DIR: backupDir };
const s3 = { S3_BUCKET: 'erp4-backup', SSE_S3: 'AES256' };
const s3Copy = { ...s3, S3_COPY_BUCKET: 'erp4-backup-osaka', S3_COPY_SSE_S3: 'AES256' };
const remote = { REMOTE_HOST: 'backup.example.com', REMOTE_DIR: '/srv/backup', REMOTE_SSH_KEY: clientKey.privateKeyFile, REMOTE_HOST_KEY: hostKey.publicLine };
const gpgDecrypt = { GPG_PRIVATE_KEY_FILE: privateKeyFile };
// GPG_PRIVATE_KEY_FILE as a directory (key rotation): *.asc files, optional <name>.passphrase beside them.
const PRIVATE_KEY_BLOCK = '-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nxVgEZ...\n-----END PGP PRIVATE KEY BLOCK-----\n';
const rotationKeyDir = path.join(dir, 'gpg-keys');
const emptyKeyDir = path.join(dir, 'gpg-keys-empty');
const publicOnlyKeyDir = path.join(dir, 'gpg-keys-public');
for (const d of [rotationKeyDir, emptyKeyDir, publicOnlyKeyDir]) fs.mkdirSync(d);
writeFixture('gpg-keys/2025-old.asc', PRIVATE_KEY_BLOCK);
writeFixture('gpg-keys/2025-old.passphrase', 'old passphrase\n');
writeFixture('gpg-keys/2026-new.asc', PRIVATE_KEY_BLOCK);
writeFixture('gpg-keys/README', 'not a key: only *.asc files are read\n');
writeFixture('gpg-keys-empty/notes.txt', 'no keys here\n');
writeFixture('gpg-keys-public/new.asc', '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxjMEZ...\n-----END PGP PUBLIC KEY BLOCK-----\n');

function configError(env: NodeJS.ProcessEnv): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('loadConfig accepted the configuration');
}

interface Row {
  env: Record<string, string>;
  /** The variable the error is about, then any other variables its message must name. */
  names: string[];
  fragment: string;
}

const S19_ATTACKS = ['../etc/passwd', '/etc/passwd', 'a;rm -rf /', '$(id)', '`id`'];

const rows: Row[] = [
  { env: { BACKUP_ENV: 'Prod' }, names: ['BACKUP_ENV'], fragment: '"Prod" is not valid' },
  { env: { BACKUP_ENV: '../x' }, names: ['BACKUP_ENV'], fragment: 'lower-case letters' },
  { env: { DB_HOST: '-oProxyCommand=x' }, names: ['DB_HOST'], fragment: 'expected a host name, an IP address' },
  { env: { DB_PORT: '0' }, names: ['DB_PORT'], fragment: 'expected a TCP port 1-65535' },
  { env: { DB_PORT: '65536' }, names: ['DB_PORT'], fragment: '65536 is not valid' },
  { env: { DB_PORT: '54x' }, names: ['DB_PORT'], fragment: '"54x" is not valid' },
  { env: { DB_USER: 'u'.repeat(64) }, names: ['DB_USER'], fragment: 'is 64 bytes long' },
  { env: { DB_NAME: '' }, names: ['DB_NAME'], fragment: 'not set; expected the name of the database' },
  { env: { DB_NAME: 'ü'.repeat(32) }, names: ['DB_NAME'], fragment: 'is 64 bytes long' },
  { env: { PG_BIN_DIR: assetDir }, names: ['PG_BIN_DIR'], fragment: 'holds no executable pg_dump' },
  { env: { PG_BIN_DIR: path.join(dir, 'missing') }, names: ['PG_BIN_DIR'], fragment: 'does not exist' },
  { env: { DB_SSLMODE: 'on' }, names: ['DB_SSLMODE'], fragment: "expected one of libpq's sslmode values: disable, allow, prefer, require, verify-ca, verify-full" },
  { env: { DB_SSLMODE: 'verify-full' }, names: ['DB_SSLROOTCERT', 'DB_SSLMODE'], fragment: 'not set, but DB_SSLMODE is verify-full' },
  { env: { DB_SSLROOTCERT: path.join(dir, 'none.crt') }, names: ['DB_SSLROOTCERT'], fragment: 'none.crt does not exist' },
  { env: { DB_SSLROOTCERT: publicKeyFile }, names: ['DB_SSLROOTCERT'], fragment: 'holds no PEM certificate' },
  { env: { DB_SSLCERT: pgBrokenCert, DB_SSLKEY: pgClientKey }, names: ['DB_SSLCERT'], fragment: 'holds a certificate that does not parse' },
  { env: { DB_SSLKEY: pgClientKey }, names: ['DB_SSLCERT', 'DB_SSLKEY'], fragment: 'not set, but DB_SSLKEY is' },
  { env: { DB_SSLCERT: pgClientCert }, names: ['DB_SSLKEY', 'DB_SSLCERT'], fragment: 'not set, but DB_SSLCERT is' },
  { env: { DB_SSLCERT: pgClientCert, DB_SSLKEY: pgWorldReadableKey }, names: ['DB_SSLKEY'], fragment: 'has group or world access (mode 0644)' },
  { env: { DB_SSLCERT: pgClientCert, DB_SSLKEY: pgEncryptedKey }, names: ['DB_SSLKEY'], fragment: 'holds no unencrypted PEM private key' },
  { env: { DB_SSLCERT: pgClientCert, DB_SSLKEY: pgOtherKey }, names: ['DB_SSLKEY', 'DB_SSLCERT'], fragment: 'is not the private key of the certificate' },

  { env: { ...s3, S3_BUCKET: 'My_Bucket' }, names: ['S3_BUCKET'], fragment: 'expected an S3 bucket name' },
  { env: { ...s3, S3_BUCKET: '192.168.1.10' }, names: ['S3_BUCKET'], fragment: 'is not valid' },
  { env: { ...s3, S3_PREFIX: '/erp4' }, names: ['S3_PREFIX'], fragment: 'no leading or trailing' },
  { env: { ...s3, S3_PREFIX: 'erp4/' }, names: ['S3_PREFIX'], fragment: '"erp4/" is not valid' },
  { env: { ...s3, S3_PREFIX: 'erp4/../other' }, names: ['S3_PREFIX'], fragment: "no '..'" },
  { env: { ...s3, S3_REGION: 'Tokyo 1' }, names: ['S3_REGION'], fragment: 'expected a region name' },
  { env: { ...s3, S3_ENDPOINT_URL: 'ftp://minio:9000' }, names: ['S3_ENDPOINT_URL'], fragment: 'expected an http:// or https:// URL' },
  { env: { ...s3, S3_PART_SIZE_MB: '4' }, names: ['S3_PART_SIZE_MB'], fragment: 'expected a part size in MiB, 5-5120' },
  { env: { S3_BUCKET: 'erp4-backup', SSE_KMS_KEY_ID: 'my key' }, names: ['SSE_KMS_KEY_ID'], fragment: 'expected a KMS key id' },
  { env: { S3_BUCKET: 'erp4-backup', SSE_S3: 'aes256' }, names: ['SSE_S3'], fragment: 'expected AES256' },
  { env: { S3_BUCKET: 'erp4-backup' }, names: ['SSE_KMS_KEY_ID', 'SSE_S3', 'S3_BUCKET'], fragment: 'without server-side encryption (S11)' },
  { env: { ...s3, SSE_KMS_KEY_ID: 'alias/erp4-backup' }, names: ['SSE_S3', 'SSE_KMS_KEY_ID'], fragment: 'expected exactly one' },
  { env: { S3_ENDPOINT_URL: 'http://minio:9000' }, names: ['S3_ENDPOINT_URL', 'S3_BUCKET'], fragment: 'set, but S3_BUCKET is not' },
  { env: { SSE_S3: 'AES256' }, names: ['SSE_S3', 'S3_BUCKET'], fragment: 'set, but S3_BUCKET is not' },
  {
    env: { ...s3, S3_WRITER_ACCESS_KEY_ID: 'AKIA WRITER', S3_WRITER_SECRET_ACCESS_KEY: 'x' },
    names: ['S3_WRITER_ACCESS_KEY_ID'],
    fragment: 'expected an access key id',
  },
  {
    env: { ...s3, S3_WRITER_ACCESS_KEY_ID: 'AKIAWRITER', S3_WRITER_SECRET_ACCESS_KEY: 'has white space' },
    names: ['S3_WRITER_SECRET_ACCESS_KEY'],
    fragment: 'contains white space',
  },
  {
    env: { ...s3, S3_WRITER_ACCESS_KEY_ID: 'AKIAWRITER' },
    names: ['S3_WRITER_SECRET_ACCESS_KEY', 'S3_WRITER_ACCESS_KEY_ID'],
    fragment: 'both of the pair or neither',
  },
  {
    env: { ...s3, S3_READER_ACCESS_KEY_ID: 'AKIA:READER', S3_READER_SECRET_ACCESS_KEY: 'x' },
    names: ['S3_READER_ACCESS_KEY_ID'],
    fragment: 'expected an access key id',
  },
  {
    env: { ...s3, S3_READER_ACCESS_KEY_ID: 'AKIAREADER', S3_READER_SECRET_ACCESS_KEY: 'tab\tinside' },
    names: ['S3_READER_SECRET_ACCESS_KEY'],
    fragment: 'contains white space',
  },
  {
    env: { ...s3, S3_READER_SECRET_ACCESS_KEY: 'reader-secret' },
    names: ['S3_READER_ACCESS_KEY_ID', 'S3_READER_SECRET_ACCESS_KEY'],
    fragment: 'both of the pair or neither',
  },
  {
    env: { ...s3, S3_PRUNER_ACCESS_KEY_ID: 'AKIA PRUNER', S3_PRUNER_SECRET_ACCESS_KEY: 'x' },
    names: ['S3_PRUNER_ACCESS_KEY_ID'],
    fragment: 'expected an access key id',
  },
  {
    env: { ...s3, S3_PRUNER_ACCESS_KEY_ID: 'AKIAPRUNER' },
    names: ['S3_PRUNER_SECRET_ACCESS_KEY', 'S3_PRUNER_ACCESS_KEY_ID'],
    fragment: 'both of the pair or neither',
  },

  { env: { ...s3Copy, S3_COPY_BUCKET: 'Osaka_Bucket' }, names: ['S3_COPY_BUCKET'], fragment: 'expected an S3 bucket name' },
  { env: { ...s3Copy, S3_COPY_BUCKET: 'erp4-backup' }, names: ['S3_COPY_BUCKET', 'S3_BUCKET', 'S3_PREFIX'], fragment: 'names the same bucket and prefix' },
  { env: { S3_COPY_BUCKET: 'erp4-backup-osaka', S3_COPY_SSE_S3: 'AES256' }, names: ['S3_COPY_BUCKET', 'S3_BUCKET'], fragment: 'set, but S3_BUCKET is not' },
  { env: { ...s3Copy, S3_COPY_PREFIX: 'erp4//osaka' }, names: ['S3_COPY_PREFIX'], fragment: 'is not valid' },
  { env: { ...s3, S3_COPY_PREFIX: 'erp4' }, names: ['S3_COPY_PREFIX', 'S3_COPY_BUCKET'], fragment: 'set, but S3_COPY_BUCKET is not' },
  { env: { ...s3Copy, S3_COPY_REGION: 'Osaka' }, names: ['S3_COPY_REGION'], fragment: 'expected a region name' },
  { env: { ...s3Copy, S3_COPY_ENDPOINT_URL: 'minio:9000' }, names: ['S3_COPY_ENDPOINT_URL'], fragment: 'expected an http:// or https:// URL' },
  {
    env: { ...s3, S3_COPY_BUCKET: 'erp4-backup-osaka' },
    names: ['S3_COPY_SSE_KMS_KEY_ID', 'S3_COPY_SSE_S3', 'S3_COPY_BUCKET'],
    fragment: 'without server-side encryption (S11)',
  },
  { env: { ...s3, S3_COPY_BUCKET: 'erp4-backup-osaka', S3_COPY_SSE_KMS_KEY_ID: 'my key' }, names: ['S3_COPY_SSE_KMS_KEY_ID'], fragment: 'expected a KMS key id' },
  { env: { ...s3Copy, S3_COPY_SSE_S3: 'aes256' }, names: ['S3_COPY_SSE_S3'], fragment: 'expected AES256' },
  { env: { ...s3Copy, S3_COPY_SSE_KMS_KEY_ID: 'alias/erp4-copy' }, names: ['S3_COPY_SSE_S3', 'S3_COPY_SSE_KMS_KEY_ID'], fragment: 'expected exactly one' },
  {
    env: { ...s3Copy, S3_COPY_ACCESS_KEY_ID: 'AKIA COPY', S3_COPY_SECRET_ACCESS_KEY: 'x' },
    names: ['S3_COPY_ACCESS_KEY_ID'],
    fragment: 'expected an access key id',
  },
  {
    env: { ...s3Copy, S3_COPY_ACCESS_KEY_ID: 'AKIACOPY', S3_COPY_SECRET_ACCESS_KEY: 'white space' },
    names: ['S3_COPY_SECRET_ACCESS_KEY'],
    fragment: 'contains white space',
  },
  {
    env: { ...s3Copy, S3_COPY_SECRET_ACCESS_KEY: 'copy-secret' },
    names: ['S3_COPY_ACCESS_KEY_ID', 'S3_COPY_SECRET_ACCESS_KEY'],
    fragment: 'both of the pair or neither',
  },
  { env: { ...s3, S3_OBJECT_LOCK_MODE: 'legal-hold' }, names: ['S3_OBJECT_LOCK_MODE'], fragment: 'expected governance or compliance' },
  { env: { S3_OBJECT_LOCK_MODE: 'compliance' }, names: ['S3_OBJECT_LOCK_MODE', 'S3_BUCKET'], fragment: 'set, but S3_BUCKET is not' },
  { env: { ...s3Copy, S3_COPY_OBJECT_LOCK_MODE: 'GOVERNANCE' }, names: ['S3_COPY_OBJECT_LOCK_MODE'], fragment: 'expected governance or compliance' },
  { env: { ...s3, S3_COPY_OBJECT_LOCK_MODE: 'compliance' }, names: ['S3_COPY_OBJECT_LOCK_MODE', 'S3_COPY_BUCKET'], fragment: 'set, but S3_COPY_BUCKET is not' },
  { env: { LOCAL_RETENTION: '7' }, names: ['LOCAL_RETENTION'], fragment: '"7" is not valid' },
  { env: { LOCAL_RETENTION: '0d' }, names: ['LOCAL_RETENTION'], fragment: 'expected gfs (S8' },
  { env: { ...s3, S3_RETENTION: 'GFS' }, names: ['S3_RETENTION'], fragment: '"GFS" is not valid' },
  { env: { S3_RETENTION: 'gfs' }, names: ['S3_RETENTION', 'S3_BUCKET'], fragment: 'set, but S3_BUCKET is not' },
  { env: { PRUNE_ABANDONED_AFTER: '24' }, names: ['PRUNE_ABANDONED_AFTER'], fragment: 'expected a positive duration' },

  { env: { GPG_RECIPIENT: '--homedir=/x', GPG_PUBLIC_KEY_FILE: publicKeyFile }, names: ['GPG_RECIPIENT'], fragment: 'expected a user id' },
  { env: { GPG_RECIPIENT: 'backup@example.com' }, names: ['GPG_PUBLIC_KEY_FILE', 'GPG_RECIPIENT'], fragment: 'not set, but GPG_RECIPIENT is' },
  {
    env: { GPG_RECIPIENT: 'backup@example.com', GPG_PUBLIC_KEY_FILE: path.join(dir, 'nope.asc') },
    names: ['GPG_PUBLIC_KEY_FILE'],
    fragment: 'nope.asc does not exist',
  },
  {
    env: { GPG_RECIPIENT: 'backup@example.com', GPG_PUBLIC_KEY_FILE: privateKeyFile },
    names: ['GPG_PUBLIC_KEY_FILE'],
    fragment: 'does not contain an ASCII-armoured public key',
  },
  { env: { GPG_PUBLIC_KEY_FILE: publicKeyFile }, names: ['GPG_PUBLIC_KEY_FILE', 'GPG_RECIPIENT'], fragment: 'set, but GPG_RECIPIENT is not' },
  { env: { GPG_PRIVATE_KEY_FILE: publicKeyFile }, names: ['GPG_PRIVATE_KEY_FILE'], fragment: 'does not contain an ASCII-armoured private key' },
  { env: { GPG_PRIVATE_KEY_FILE: emptyKeyDir }, names: ['GPG_PRIVATE_KEY_FILE'], fragment: 'holds no usable private key (no *.asc file)' },
  { env: { GPG_PRIVATE_KEY_FILE: publicOnlyKeyDir }, names: ['GPG_PRIVATE_KEY_FILE'], fragment: 'new.asc in the directory does not contain an ASCII-armoured private key' },
  { env: { ...gpgDecrypt, GPG_PASSPHRASE_FILE: dir }, names: ['GPG_PASSPHRASE_FILE'], fragment: 'is not a file' },
  { env: { GPG_PASSPHRASE_FILE: passphraseFile }, names: ['GPG_PASSPHRASE_FILE', 'GPG_PRIVATE_KEY_FILE'], fragment: 'set, but' },
  {
    env: { ...gpgDecrypt, GPG_PASSPHRASE_FILE: passphraseFile, GPG_PASSPHRASE: SECRETS.GPG_PASSPHRASE },
    names: ['GPG_PASSPHRASE', 'GPG_PASSPHRASE_FILE'],
    fragment: 'set together with',
  },

  { env: { ...remote, REMOTE_HOST: 'bad host!' }, names: ['REMOTE_HOST'], fragment: 'expected a host name or an IP address' },
  { env: { ...remote, REMOTE_HOST: '-oProxyCommand=x' }, names: ['REMOTE_HOST'], fragment: 'is not valid' },
  { env: { ...remote, REMOTE_PORT: '70000' }, names: ['REMOTE_PORT'], fragment: 'expected a TCP port' },
  { env: { ...remote, REMOTE_USER: '-oProxyCommand=x' }, names: ['REMOTE_USER'], fragment: 'expected a login name' },
  { env: { REMOTE_HOST: remote.REMOTE_HOST, REMOTE_SSH_KEY: remote.REMOTE_SSH_KEY, REMOTE_HOST_KEY: remote.REMOTE_HOST_KEY }, names: ['REMOTE_DIR', 'REMOTE_HOST'], fragment: '(S18)' },
  { env: { ...remote, REMOTE_DIR: 'backup' }, names: ['REMOTE_DIR'], fragment: 'is not absolute' },
  { env: { ...remote, REMOTE_DIR: '/srv/../etc' }, names: ['REMOTE_DIR'], fragment: "contains a '..' segment" },
  { env: { ...remote, REMOTE_DIR: '/srv/$(id)' }, names: ['REMOTE_DIR'], fragment: 'shell metacharacter' },
  { env: { ...remote, REMOTE_DIR: '//' }, names: ['REMOTE_DIR'], fragment: 'is the root directory' },
  { env: { REMOTE_DIR: '/srv/backup' }, names: ['REMOTE_DIR', 'REMOTE_HOST'], fragment: 'set, but REMOTE_HOST is not' },
  { env: { REMOTE_KEEP_DAYS: '7' }, names: ['REMOTE_KEEP_DAYS', 'REMOTE_HOST'], fragment: 'set, but REMOTE_HOST is not' },
  { env: { ...remote, REMOTE_SSH_KEY: '' }, names: ['REMOTE_SSH_KEY', 'REMOTE_HOST'], fragment: 'not set, but REMOTE_HOST is' },
  { env: { ...remote, REMOTE_SSH_KEY: `${clientKey.privateKeyFile}.pub` }, names: ['REMOTE_SSH_KEY'], fragment: 'does not contain a private key' },
  { env: { ...remote, REMOTE_HOST_KEY: '' }, names: ['REMOTE_HOST_KEY', 'REMOTE_HOST'], fragment: 'never accepted' },
  { env: { ...remote, REMOTE_HOST_KEY: 'yes' }, names: ['REMOTE_HOST_KEY'], fragment: 'neither a SHA256: fingerprint' },
  { env: { ...remote, REMOTE_HOST_KEY: 'ssh-ed25519 AAAA!notbase64' }, names: ['REMOTE_HOST_KEY'], fragment: 'holds no valid ssh-ed25519 key' },
  {
    env: { ...remote, REMOTE_HOST_KEY: hostKey.publicLine.replace('ssh-ed25519', 'ssh-rsa') },
    names: ['REMOTE_HOST_KEY'],
    fragment: 'holds no valid ssh-rsa key',
  },
  { env: { ...remote, REMOTE_HOST_KEY: `@revoked backup.example.com ${hostKey.publicLine}` }, names: ['REMOTE_HOST_KEY'], fragment: 'marker "@revoked"' },
  { env: { ...remote, REMOTE_HOST_KEY: 'SHA256:tooshort' }, names: ['REMOTE_HOST_KEY'], fragment: 'neither a SHA256: fingerprint' },
  { env: { ...remote, REMOTE_KEEP_DAYS: '0' }, names: ['REMOTE_KEEP_DAYS'], fragment: 'at least 1' },
  { env: { ...remote, REMOTE_KEEP_DAYS: '7d' }, names: ['REMOTE_KEEP_DAYS'], fragment: '"7d" is not valid' },

  { env: { PDF_PROVIDER: 'LOCAL' }, names: ['PDF_PROVIDER'], fragment: 'expected local, s3 or none' },
  { env: { PDF_PROVIDER: 'local' }, names: ['ASSET_DIR', 'PDF_PROVIDER'], fragment: 'not set, but PDF_PROVIDER is local' },
  { env: { PDF_PROVIDER: 'local', ASSET_DIR: 'assets' }, names: ['ASSET_DIR'], fragment: 'is not absolute' },
  { env: { PDF_PROVIDER: 'local', ASSET_DIR: path.join(dir, 'missing') }, names: ['ASSET_DIR'], fragment: 'does not exist' },
  { env: { PDF_PROVIDER: 'local', ASSET_DIR: publicKeyFile }, names: ['ASSET_DIR'], fragment: 'is not a directory' },
  { env: { PDF_PROVIDER: 's3', ASSET_DIR: assetDir }, names: ['ASSET_DIR', 'PDF_PROVIDER'], fragment: 'set, but PDF_PROVIDER is not local' },

  { env: { BACKUP_DIR: '/' }, names: ['BACKUP_DIR'], fragment: 'is the file-system root' },
  { env: { BACKUP_DIR: '/var/backups/$(id)' }, names: ['BACKUP_DIR'], fragment: 'contains "$"' },
  ...S19_ATTACKS.map((value) => ({ env: { BACKUP_PREFIX: value }, names: ['BACKUP_PREFIX'], fragment: 'expected 1-64 letters' })),
  { env: { BACKUP_PREFIX: 'a..b' }, names: ['BACKUP_PREFIX'], fragment: '"a..b" is not valid' },
  { env: { BACKUP_PREFIX: '-rf' }, names: ['BACKUP_PREFIX'], fragment: 'starting with a letter or digit' },
  { env: { BACKUP_PREFIX: 'p'.repeat(65) }, names: ['BACKUP_PREFIX'], fragment: 'is not valid' },
  ...(['BACKUP_FILE', 'BACKUP_GLOBALS_FILE', 'BACKUP_ASSETS_FILE'] as const).flatMap((variable) => [
    { env: { [variable]: '../etc/passwd' }, names: [variable], fragment: "contains a '..' segment" },
    { env: { [variable]: '/etc/passwd' }, names: [variable, 'BACKUP_DIR'], fragment: 'is outside BACKUP_DIR' },
    { env: { [variable]: 'a;rm -rf /' }, names: [variable], fragment: 'contains ";", a shell metacharacter' },
    { env: { [variable]: '$(id)' }, names: [variable], fragment: 'contains "$", a shell metacharacter' },
    { env: { [variable]: 'x`id`.dump' }, names: [variable], fragment: 'contains "`", a shell metacharacter' },
    { env: { [variable]: 'a.dump\nb' }, names: [variable], fragment: 'control character' },
    { env: { [variable]: 'escape/passwd' }, names: [variable, 'BACKUP_DIR'], fragment: 'symbolic link to /etc/passwd' },
  ]),

  { env: { TEMPORAL_ADDRESS: 'localhost' }, names: ['TEMPORAL_ADDRESS'], fragment: 'expected host:port' },
  { env: { TEMPORAL_ADDRESS: 'localhost:99999' }, names: ['TEMPORAL_ADDRESS'], fragment: 'is not valid' },
  { env: { TEMPORAL_NAMESPACE: 'my namespace' }, names: ['TEMPORAL_NAMESPACE'], fragment: 'expected a Temporal namespace name' },
  { env: { TEMPORAL_TASK_QUEUE: ' erp4' }, names: ['TEMPORAL_TASK_QUEUE'], fragment: 'expected a task queue name' },
  { env: { TEMPORAL_API_KEY: 'key with spaces' }, names: ['TEMPORAL_API_KEY'], fragment: 'contains white space' },
  { env: { TEMPORAL_TLS: 'yes' }, names: ['TEMPORAL_TLS'], fragment: 'expected true or false' },
  {
    env: { TEMPORAL_TLS_CLIENT_CERT_PATH: path.join(dir, 'none.pem'), TEMPORAL_TLS_CLIENT_KEY_PATH: temporalClient.keyPath },
    names: ['TEMPORAL_TLS_CLIENT_CERT_PATH'],
    fragment: `${path.join(dir, 'none.pem')} does not exist`,
  },
  {
    env: { TEMPORAL_TLS_CLIENT_CERT_PATH: temporalClient.keyPath, TEMPORAL_TLS_CLIENT_KEY_PATH: temporalClient.keyPath },
    names: ['TEMPORAL_TLS_CLIENT_CERT_PATH'],
    fragment: 'is not a PEM certificate',
  },
  { env: { TEMPORAL_TLS_CLIENT_KEY_PATH: temporalClient.keyPath }, names: ['TEMPORAL_TLS_CLIENT_CERT_PATH', 'TEMPORAL_TLS_CLIENT_KEY_PATH'], fragment: 'both or neither' },
  { env: { TEMPORAL_TLS_CLIENT_CERT_PATH: temporalClient.certPath }, names: ['TEMPORAL_TLS_CLIENT_KEY_PATH', 'TEMPORAL_TLS_CLIENT_CERT_PATH'], fragment: 'both or neither' },
  {
    env: { TEMPORAL_TLS_CLIENT_CERT_PATH: temporalClient.certPath, TEMPORAL_TLS_CLIENT_KEY_PATH: otherClient.keyPath },
    names: ['TEMPORAL_TLS_CLIENT_KEY_PATH'],
    fragment: 'is not the private key of the certificate in TEMPORAL_TLS_CLIENT_CERT_PATH',
  },
  {
    env: { TEMPORAL_TLS_CLIENT_CERT_DATA: 'not a certificate', TEMPORAL_TLS_CLIENT_KEY_PATH: temporalClient.keyPath },
    names: ['TEMPORAL_TLS_CLIENT_CERT_DATA'],
    fragment: 'the value is not a PEM certificate',
  },
  {
    env: { TEMPORAL_TLS_CLIENT_CERT_PATH: temporalClient.certPath, TEMPORAL_TLS_CLIENT_KEY_DATA: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n' },
    names: ['TEMPORAL_TLS_CLIENT_KEY_DATA'],
    fragment: 'the value is not a usable PEM private key',
  },
  { env: { TEMPORAL_TLS_SERVER_CA_CERT_PATH: path.join(dir, 'none-ca.pem') }, names: ['TEMPORAL_TLS_SERVER_CA_CERT_PATH'], fragment: 'does not exist' },
  { env: { TEMPORAL_TLS_SERVER_CA_CERT_DATA: 'garbage' }, names: ['TEMPORAL_TLS_SERVER_CA_CERT_DATA'], fragment: 'is not a PEM certificate' },
  { env: { TEMPORAL_TLS_SERVER_NAME: 'temporal server' }, names: ['TEMPORAL_TLS_SERVER_NAME'], fragment: "expected a host name in the server's certificate" },
  { env: { TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: 'true' }, names: ['TEMPORAL_TLS_DISABLE_HOST_VERIFICATION', 'TEMPORAL_TLS_SERVER_NAME'], fragment: 'cannot do' },
  { env: { TEMPORAL_PROFILE: 'prod', TEMPORAL_CONFIG_FILE: temporalProfiles }, names: ['TEMPORAL_PROFILE'], fragment: `"prod" is not in ${temporalProfiles}; expected one of its profiles (default, staging)` },
  { env: { TEMPORAL_PROFILE: 'prod' }, names: ['TEMPORAL_PROFILE'], fragment: 'is not in' },
  { env: { TEMPORAL_CONFIG_FILE: path.join(dir, 'none.toml') }, names: ['TEMPORAL_CONFIG_FILE'], fragment: 'does not exist' },
  { env: { TEMPORAL_CONFIG_FILE: brokenToml }, names: ['TEMPORAL_CONFIG_FILE'], fragment: `${brokenToml} is not valid TOML (line 1, column` },
  {
    env: { TEMPORAL_CONFIG_FILE: temporalProfiles, TEMPORAL_PROFILE: 'staging' },
    names: ['TEMPORAL_CONFIG_FILE', 'tls.client_cert_path', 'profile "staging"'],
    fragment: `${path.join(dir, 'none.pem')} does not exist`,
  },
  { env: { WORKER_SHUTDOWN_GRACE: 'soon' }, names: ['WORKER_SHUTDOWN_GRACE'], fragment: 'expected a positive duration' },

  { env: { CRITICAL_TABLES: 'invoices,Payments' }, names: ['CRITICAL_TABLES'], fragment: '"Payments" is not valid' },
  { env: { CRITICAL_TABLES: 'a.b.c' }, names: ['CRITICAL_TABLES'], fragment: 'expected table or schema.table' },
  { env: { CRITICAL_TABLES: 'invoices; drop table x' }, names: ['CRITICAL_TABLES'], fragment: 'is not valid' },
  { env: { CRITICAL_TABLES: 'invoices,public.invoices' }, names: ['CRITICAL_TABLES'], fragment: 'listed twice' },
  { env: { CRITICAL_TABLES: '"会計"."取引先",会計.取引先' }, names: ['CRITICAL_TABLES'], fragment: 'listed twice' },
  { env: { CRITICAL_TABLES: '"unclosed' }, names: ['CRITICAL_TABLES'], fragment: 'a quoted name is not closed' },
  { env: { CRITICAL_TABLES: '"";x' }, names: ['CRITICAL_TABLES'], fragment: 'a name is empty' },
  { env: { CRITICAL_TABLES: `"${'表'.repeat(22)}"` }, names: ['CRITICAL_TABLES'], fragment: 'longer than 63 bytes' },
  { env: { SCHEMA_VERSION_QUERY: '   ' }, names: ['SCHEMA_VERSION_QUERY'], fragment: 'expected an SQL query' },
  { env: { FINGERPRINT_QUERIES_FILE: path.join(dir, 'none.json') }, names: ['FINGERPRINT_QUERIES_FILE'], fragment: 'does not exist' },
  { env: { FINGERPRINT_QUERIES_FILE: badFingerprintFile }, names: ['FINGERPRINT_QUERIES_FILE'], fragment: 'schema.table' },
  { env: { NOTIFY_WEBHOOK_URL: 'ftp://hooks.example.com/x' }, names: ['NOTIFY_WEBHOOK_URL'], fragment: 'is not an http:// or https:// URL' },
  { env: { TIME_ZONE: 'Mars/Olympus' }, names: ['TIME_ZONE'], fragment: '"Mars/Olympus" is not a known time zone' },
  { env: { TIME_ZONE: '+09:00' }, names: ['TIME_ZONE'], fragment: 'expected an IANA time zone' },
  { env: { RESTORE_APPROVERS: 'alice' }, names: ['RESTORE_APPROVERS'], fragment: 'expected name:role pairs' },
  { env: { RESTORE_APPROVERS: 'alice:admin,alice:management' }, names: ['RESTORE_APPROVERS'], fragment: '"alice:management" is listed twice' },
  { env: { RESTORE_APPROVAL_TIMEOUT: '24' }, names: ['RESTORE_APPROVAL_TIMEOUT'], fragment: 'expected a positive duration' },
  { env: { RESTORE_APPROVAL_TIMEOUT: '1w' }, names: ['RESTORE_APPROVAL_TIMEOUT'], fragment: '"1w" is not valid' },
  { env: { RESTORE_APPROVAL_TIMEOUT: '0h' }, names: ['RESTORE_APPROVAL_TIMEOUT'], fragment: 'not a positive duration' },
  { env: { DB_LOCK_TIMEOUT: '300' }, names: ['DB_LOCK_TIMEOUT'], fragment: 'expected a duration of at most 24h' },
  { env: { DB_LOCK_TIMEOUT: '1d1s' }, names: ['DB_LOCK_TIMEOUT'], fragment: '"1d1s" is longer than 24h' },
  { env: { DB_LOCK_TIMEOUT: '0s' }, names: ['DB_LOCK_TIMEOUT'], fragment: 'not a positive duration' },
  { env: { RESTORE_TARGET_DB: 'r'.repeat(64) }, names: ['RESTORE_TARGET_DB'], fragment: 'is 64 bytes long' },
  { env: { RESTORE_JOBS: '0' }, names: ['RESTORE_JOBS'], fragment: 'a whole number of pg_restore jobs, 1-64' },
  { env: { RESTORE_JOBS: '65' }, names: ['RESTORE_JOBS'], fragment: 'a whole number of pg_restore jobs, 1-64' },
  { env: { RESTORE_JOBS: 'cores' }, names: ['RESTORE_JOBS'], fragment: 'a whole number of pg_restore jobs, 1-64' },
  { env: { RESTORE_ASSET_DIR: 'restored/assets' }, names: ['RESTORE_ASSET_DIR'], fragment: 'is not absolute' },
  { env: { RESTORE_ASSET_DIR: '/srv/$(id)' }, names: ['RESTORE_ASSET_DIR'], fragment: 'shell metacharacter' },
  { env: { RESTORE_SMOKE_URLS: 'https://erp4.example.com/health,ftp://x' }, names: ['RESTORE_SMOKE_URLS'], fragment: '"ftp://x" is not valid' },
  { env: { DRILL_PREAPPROVED: 'yes' }, names: ['DRILL_PREAPPROVED'], fragment: 'expected true or false' },
  { env: { DRILL_ACCEPT_UNSIGNED_APPROVALS: 'sometimes' }, names: ['DRILL_ACCEPT_UNSIGNED_APPROVALS'], fragment: 'expected true or false' },
  { env: { RESTORE_ALLOWED_SIGNERS_FILE: path.join(dir, 'none_signers') }, names: ['RESTORE_ALLOWED_SIGNERS_FILE'], fragment: 'does not exist' },
  {
    env: { RESTORE_APPROVERS: 'alice:admin,bob:management', RESTORE_ALLOWED_SIGNERS_FILE: strangerSignersFile },
    names: ['RESTORE_ALLOWED_SIGNERS_FILE', 'RESTORE_APPROVERS'],
    fragment: 'line 2: "mallory" is not in RESTORE_APPROVERS (alice, bob)',
  },
  {
    env: { RESTORE_APPROVERS: 'alice:admin', RESTORE_ALLOWED_SIGNERS_FILE: notAKeySignersFile },
    names: ['RESTORE_ALLOWED_SIGNERS_FILE'],
    fragment: 'line 1: the ssh-ed25519 key is missing or is not a base64 ssh-ed25519 public key',
  },
  { env: { DRILL_DECRYPT_BEFORE_APPROVAL: 'later' }, names: ['DRILL_DECRYPT_BEFORE_APPROVAL'], fragment: 'expected true or false' },
  { env: { WORKER_HOST_ID: 'backup 1' }, names: ['WORKER_HOST_ID'], fragment: "expected 1-100 letters, digits, '.', '_' or '-'" },
  { env: { WORKER_HOST_ID: '-backup' }, names: ['WORKER_HOST_ID'], fragment: 'starting with a letter or digit' },
  { env: { WORKER_HOST_ID: 'h'.repeat(101) }, names: ['WORKER_HOST_ID'], fragment: 'is not valid' },
  { env: { DRILL_LATEST_DATA_QUERY: ' ' }, names: ['DRILL_LATEST_DATA_QUERY'], fragment: 'expected an SQL query returning the time' },
  { env: { DRILL_CHECKS_FILE: path.join(dir, 'none.sql') }, names: ['DRILL_CHECKS_FILE'], fragment: 'does not exist' },
  { env: { DRILL_CHECKS_FILE: badChecksFile }, names: ['DRILL_CHECKS_FILE'], fragment: 'line 1: SQL before the first "-- name: <name>" line' },
  { env: { DRILL_SMOKE_URLS: 'health' }, names: ['DRILL_SMOKE_URLS'], fragment: 'expected http(s) URLs' },
  { env: { DRILL_BATCH_RESUME_QUERY: '  ' }, names: ['DRILL_BATCH_RESUME_QUERY'], fragment: 'columns job and resumable' },
  { env: { DRILL_DB_HOST: 'drill db' }, names: ['DRILL_DB_HOST'], fragment: 'expected the host name or IP address of the PostgreSQL drills restore into' },
  { env: { DRILL_DB_HOST: 'localhost' }, names: ['DRILL_DB_HOST', 'DB_HOST', 'DB_PORT'], fragment: 'names the production server' },
  { env: { ...drillServer, DRILL_DB_PORT: '0' }, names: ['DRILL_DB_PORT'], fragment: 'expected a TCP port 1-65535' },
  { env: { DRILL_DB_PORT: '5433' }, names: ['DRILL_DB_PORT', 'DRILL_DB_HOST'], fragment: 'set, but DRILL_DB_HOST is not' },
  { env: { ...drillServer, DRILL_DB_USER: 'd'.repeat(64) }, names: ['DRILL_DB_USER'], fragment: 'is 64 bytes long' },
  { env: { DRILL_DB_PASSWORD: 'drill-pw' }, names: ['DRILL_DB_PASSWORD', 'DRILL_DB_HOST'], fragment: 'set, but DRILL_DB_HOST is not' },
  { env: { ...drillServer, DRILL_DB_SSLMODE: 'true' }, names: ['DRILL_DB_SSLMODE'], fragment: "expected one of libpq's sslmode values" },
  { env: { ...drillServer, DRILL_DB_SSLMODE: 'verify-ca' }, names: ['DRILL_DB_SSLROOTCERT', 'DRILL_DB_SSLMODE'], fragment: 'not set, but DRILL_DB_SSLMODE is verify-ca' },
  { env: { ...drillServer, DRILL_DB_SSLROOTCERT: pgClientKey }, names: ['DRILL_DB_SSLROOTCERT'], fragment: 'holds no PEM certificate' },
  { env: { ...drillServer, DRILL_DB_SSLCERT: pgClientCert }, names: ['DRILL_DB_SSLKEY', 'DRILL_DB_SSLCERT'], fragment: 'not set, but DRILL_DB_SSLCERT is' },
  { env: { ...drillServer, DRILL_DB_SSLKEY: pgClientKey }, names: ['DRILL_DB_SSLCERT', 'DRILL_DB_SSLKEY'], fragment: 'not set, but DRILL_DB_SSLKEY is' },
  { env: { ...drillServer, DRILL_RESTORE_OWNERS: 'none' }, names: ['DRILL_RESTORE_OWNERS'], fragment: 'expected apply-roles' },
  { env: { DRILL_RESTORE_OWNERS: 'skip' }, names: ['DRILL_RESTORE_OWNERS', 'DRILL_DB_HOST'], fragment: 'set, but DRILL_DB_HOST is not' },
  { env: { SCHEDULE_DAILY: '25:00' }, names: ['SCHEDULE_DAILY'], fragment: '"25:00" is not a time HH:MM; expected a time HH:MM in TIME_ZONE' },
  { env: { SCHEDULE_DAILY: '2am' }, names: ['SCHEDULE_DAILY'], fragment: 'is not a time HH:MM' },
  { env: { SCHEDULE_CRITICAL: '5:00' }, names: ['SCHEDULE_CRITICAL'], fragment: '"5:00" is not a time HH:MM' },
  { env: { SCHEDULE_WEEKLY_FULL: 'sunday' }, names: ['SCHEDULE_WEEKLY_FULL'], fragment: 'is not a day of the week and a time' },
  { env: { SCHEDULE_WEEKLY_FULL: 'su 03:00' }, names: ['SCHEDULE_WEEKLY_FULL'], fragment: 'expected a day of the week and a time' },
  { env: { SCHEDULE_WEEKLY_FULL: 'sun 3pm' }, names: ['SCHEDULE_WEEKLY_FULL'], fragment: '"3pm" is not a time HH:MM' },
  { env: { SCHEDULE_RESTORE_DRILL: '31 10:00' }, names: ['SCHEDULE_RESTORE_DRILL'], fragment: 'day 31 is not in 1-28' },
  { env: { SCHEDULE_RESTORE_DRILL: '10:00' }, names: ['SCHEDULE_RESTORE_DRILL'], fragment: 'is not a day of the month and a time' },
  { env: { SCHEDULE_PRUNE: '06:60' }, names: ['SCHEDULE_PRUNE'], fragment: 'expected a time HH:MM' },
  { env: { RPO_DAILY: '0h' }, names: ['RPO_DAILY'], fragment: 'not a positive duration' },
  { env: { RPO_CRITICAL: '6' }, names: ['RPO_CRITICAL'], fragment: 'expected a positive duration' },
  { env: { DRILL_MAX_AGE: '5w' }, names: ['DRILL_MAX_AGE'], fragment: '"5w" is not valid' },
  { env: { OFFSITE_MAX_LAG: 'soon' }, names: ['OFFSITE_MAX_LAG'], fragment: 'expected a positive duration' },
  { env: { METRICS_BIND_ADDRESS: '9464' }, names: ['METRICS_BIND_ADDRESS'], fragment: 'expected host:port to serve Prometheus metrics' },
  { env: { LOG_LEVEL: 'verbose' }, names: ['LOG_LEVEL'], fragment: 'expected TRACE, DEBUG, INFO, WARN, ERROR' },
  { env: { LOG_FORMAT: 'xml' }, names: ['LOG_FORMAT'], fragment: 'expected text or json' },
  ...SECRET_FILE_VARIABLES.map((variable) => ({ env: { [variable]: path.join(dir, 'no-such-secret') }, names: [variable], fragment: 'no-such-secret cannot be read (ENOENT)' })),
];

describe('loadConfig: one bad setting, one error naming it', () => {
  const title = (row: Row) => {
    const value = row.env[row.names[0]!];
    return `${row.names[0]}${value ? `=${JSON.stringify(value)}` : ' unset'}: ${row.fragment}`;
  };
  it.each(rows.map((row) => [title(row), row] as const))(
    '%s',
    (_title, row) => {
      const error = configError({ ...base, ...row.env });
      expect(error.issues).toHaveLength(1);
      const issue = error.issues[0]!;
      expect(issue.variable).toBe(row.names[0]);
      for (const other of row.names.slice(1)) expect(issue.message).toContain(other);
      expect(issue.message).toContain(row.fragment);
      expect(issue.message).toMatch(/; expected ./);
      expect(error.message).toContain(`\n  ${issue.variable}: ${issue.message}`);
    },
  );

  it('has a row for every variable that can hold a bad value (DB_PASSWORD takes any value)', () => {
    const covered = new Set(rows.map((row) => row.names[0]));
    expect(CONFIG_VARIABLES.filter((variable) => !covered.has(variable))).toEqual(['DB_PASSWORD']);
  });
});

describe('loadConfig: every problem at once', () => {
  it('reports field errors and rules between variables together, in one ConfigError', () => {
    const error = configError({
      DB_PORT: 'x',
      REMOTE_HOST: 'backup.example.com',
      S3_BUCKET: 'erp4-backup',
      TIME_ZONE: 'Nowhere/Land',
      BACKUP_FILE: '../../etc/shadow',
      CRITICAL_TABLES: 'Bad,Worse',
    });
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('ConfigError');
    expect(error.issues.map((issue) => issue.variable).sort()).toEqual(
      [
        'BACKUP_FILE',
        'CRITICAL_TABLES',
        'CRITICAL_TABLES',
        'DB_NAME',
        'DB_PORT',
        'REMOTE_DIR',
        'REMOTE_HOST_KEY',
        'REMOTE_SSH_KEY',
        'SSE_KMS_KEY_ID',
        'TIME_ZONE',
      ].sort(),
    );
    expect(error.message).toMatch(/^Invalid configuration \(10 problems\):\n/);
    for (const issue of error.issues) expect(error.message).toContain(`${issue.variable}: ${issue.message}`);
  });
});

describe('loadConfig: valid settings', () => {
  it('applies the defaults to the smallest environment, and reads an empty value as unset', () => {
    const config = loadConfig({ DB_NAME: 'erp4', DB_HOST: '', S3_BUCKET: '' });
    // RESTORE_JOBS unset: pg_restore follows the cores (src/pg/restore.ts).
    expect(config.restore.jobs).toBeUndefined();
    expect(redactedConfig(config)).toEqual({
      env: 'poc',
      timeZone: 'Asia/Tokyo',
      db: { host: 'localhost', port: 5432, user: 'postgres', database: 'erp4', tls: { mode: 'prefer' } },
      assets: { provider: 'none' },
      local: { backupDir: path.resolve('backups'), prefix: 'erp4' },
      temporal: {
        address: '127.0.0.1:7233',
        namespace: 'default',
        taskQueue: 'erp4-backup',
        connection: { address: '127.0.0.1:7233', namespace: 'default', tls: false, origins: { address: 'the default 127.0.0.1:7233' } },
      },
      host: { id: expect.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]*-[0-9a-f]{8}$/) },
      worker: { shutdownGraceMs: 10 * 60 * 1000 },
      backup: { criticalTables: [], lockTimeoutMs: 5 * 60 * 1000 },
      restore: { approvers: [], approvalTimeoutMs: 24 * 3600 * 1000, targetDatabase: 'erp4', smokeUrls: [] },
      drill: { preApproved: false, acceptUnsignedApprovals: false, decryptBeforeApproval: true, smokeUrls: [] },
      notify: {},
      schedules: {
        daily: { hour: 2, minute: 0 },
        critical: { hour: 5, minute: 0 },
        weeklyFull: { dayOfWeek: 'SUNDAY', hour: 3, minute: 0 },
        restoreDrill: { dayOfMonth: 1, hour: 10, minute: 0 },
        prune: { hour: 6, minute: 0 },
      },
      freshness: { rpoDailyMs: 24 * 3600 * 1000, rpoCriticalMs: 6 * 3600 * 1000, drillMaxAgeMs: 35 * 24 * 3600 * 1000, offsiteMaxLagMs: 2 * 3600 * 1000 },
      metrics: {},
      log: { level: 'INFO', format: 'text' },
      prune: { localRetention: { kind: 'days', days: 7 }, s3Retention: { kind: 'gfs' }, abandonedAfterMs: 24 * 3600 * 1000 },
    });
    expect(config.s3Copy).toBeUndefined();
    expect(config.s3).toBeUndefined();
    expect(config.gpg).toBeUndefined();
    expect(config.remote).toBeUndefined();
  });

  it('gives each BACKUP_DIR on one machine its own host id by default (several workers there are several hosts), stable across restarts', () => {
    const other = path.join(dir, 'backups-2');
    const first = loadConfig({ ...base, BACKUP_DIR: backupDir }).host.id;
    const second = loadConfig({ ...base, BACKUP_DIR: other }).host.id;
    expect(first).not.toBe(second);
    expect(first.startsWith(`${os.hostname().replace(/[^A-Za-z0-9._-]/g, '-')}-`)).toBe(true);
    expect(loadConfig({ ...base, BACKUP_DIR: backupDir }).host.id).toBe(first);
    // The same directory written differently is the same host.
    expect(loadConfig({ ...base, BACKUP_DIR: `${backupDir}/` }).host.id).toBe(first);
    expect(loadConfig({ ...base, BACKUP_DIR: other, WORKER_HOST_ID: 'db-backup-1' }).host.id).toBe('db-backup-1');
  });

  it('takes a database name with quotes and spaces verbatim', () => {
    const name = `erp4 "prod" o'neil; -d x=y`;
    expect(loadConfig({ ...base, DB_NAME: name }).db.database).toBe(name);
  });

  it('parses a full configuration into the typed shape', () => {
    fs.writeFileSync(path.join(backupDir, 'erp4-20261126T170000Z-daily.dump'), '');
    const config = loadConfig({
      ...SECRETS,
      BACKUP_ENV: 'prod',
      DB_HOST: 'db.internal',
      DB_PORT: '6543',
      DB_USER: 'backup',
      DB_NAME: 'erp4',
      PG_BIN_DIR: pgBinDir,
      S3_BUCKET: 'erp4-backup',
      S3_PREFIX: 'erp4/tokyo',
      S3_REGION: 'ap-northeast-3',
      S3_ENDPOINT_URL: 'http://127.0.0.1:9000',
      S3_PART_SIZE_MB: '16',
      SSE_KMS_KEY_ID: 'alias/erp4-backup',
      S3_WRITER_ACCESS_KEY_ID: 'AKIAWRITER',
      S3_READER_ACCESS_KEY_ID: 'AKIAREADER',
      S3_PRUNER_ACCESS_KEY_ID: 'AKIAPRUNER',
      S3_COPY_BUCKET: 'erp4-backup-osaka',
      S3_COPY_PREFIX: 'erp4/copy',
      S3_COPY_REGION: 'ap-northeast-3',
      S3_COPY_ENDPOINT_URL: 'https://s3.ap-northeast-3.amazonaws.com',
      S3_COPY_SSE_KMS_KEY_ID: 'alias/erp4-backup-copy',
      S3_COPY_ACCESS_KEY_ID: 'AKIACOPY',
      S3_COPY_SECRET_ACCESS_KEY: 'copy-secret-Tq18',
      S3_OBJECT_LOCK_MODE: 'governance',
      S3_COPY_OBJECT_LOCK_MODE: 'compliance',
      LOCAL_RETENTION: '3d',
      S3_RETENTION: 'gfs',
      PRUNE_ABANDONED_AFTER: '2d',
      GPG_RECIPIENT: 'backup@example.com',
      GPG_PUBLIC_KEY_FILE: publicKeyFile,
      GPG_PRIVATE_KEY_FILE: privateKeyFile,
      REMOTE_HOST: '192.0.2.10',
      REMOTE_PORT: '2222',
      REMOTE_USER: 'erp4',
      REMOTE_DIR: '/srv/backup/erp4/',
      REMOTE_SSH_KEY: clientKey.privateKeyFile,
      REMOTE_HOST_KEY: `[192.0.2.10]:2222 ${hostKey.publicLine}`,
      REMOTE_KEEP_DAYS: '30',
      PDF_PROVIDER: 'local',
      ASSET_DIR: assetDir,
      BACKUP_DIR: backupDir,
      BACKUP_PREFIX: 'erp4',
      BACKUP_FILE: 'erp4-20261126T170000Z-daily.dump',
      BACKUP_GLOBALS_FILE: path.join(backupDir, 'globals', 'erp4.sql'),
      BACKUP_ASSETS_FILE: 'assets/erp4.tar',
      TEMPORAL_ADDRESS: 'temporal:7233',
      TEMPORAL_NAMESPACE: 'erp4',
      TEMPORAL_TASK_QUEUE: 'erp4-backup-prod',
      TEMPORAL_TLS_CLIENT_CERT_PATH: temporalClient.certPath,
      TEMPORAL_TLS_CLIENT_KEY_PATH: temporalClient.keyPath,
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: testCa.certPath,
      TEMPORAL_TLS_SERVER_NAME: 'temporal.example.com',
      WORKER_SHUTDOWN_GRACE: '15m',
      WORKER_HOST_ID: 'backup-host-2.dc1',
      CRITICAL_TABLES: 'invoices, accounting.payments',
      SCHEMA_VERSION_QUERY: 'select max(version) from schema_migrations',
      FINGERPRINT_QUERIES_FILE: fingerprintQueriesFile,
      DB_LOCK_TIMEOUT: '90s',
      NOTIFY_WEBHOOK_URL: `https://hooks.example.com/services/${WEBHOOK_TOKEN}`,
      TIME_ZONE: 'asia/tokyo',
      RESTORE_APPROVERS: 'alice:admin, bob:management',
      RESTORE_APPROVAL_TIMEOUT: '1d12h',
      RESTORE_TARGET_DB: 'erp4_restored',
      RESTORE_JOBS: '3',
      RESTORE_SMOKE_URLS: 'https://erp4.example.com/health, https://erp4.example.com/api/invoices?limit=1',
      RESTORE_ALLOWED_SIGNERS_FILE: allowedSignersFile,
      DRILL_ACCEPT_UNSIGNED_APPROVALS: '1',
      DRILL_PREAPPROVED: 'true',
      DRILL_DECRYPT_BEFORE_APPROVAL: 'false',
      DRILL_LATEST_DATA_QUERY: 'SELECT max(issued_at) FROM invoices',
      DRILL_CHECKS_FILE: drillChecksFile,
      DRILL_SMOKE_URLS: 'http://drill-app:3000/health',
      DRILL_BATCH_RESUME_QUERY: 'SELECT name AS job, true AS resumable FROM batch_jobs',
      SCHEDULE_DAILY: '01:30',
      SCHEDULE_CRITICAL: '04:15',
      SCHEDULE_WEEKLY_FULL: 'Saturday 23:00',
      SCHEDULE_RESTORE_DRILL: '28 09:30',
      SCHEDULE_PRUNE: '07:00',
      RPO_DAILY: '26h',
      RPO_CRITICAL: '6h30m',
      DRILL_MAX_AGE: '40d',
      OFFSITE_MAX_LAG: '30m',
      METRICS_BIND_ADDRESS: '0.0.0.0:9464',
      LOG_LEVEL: 'DEBUG',
      LOG_FORMAT: 'json',
    });
    expect(redactedConfig(config)).toEqual({
      env: 'prod',
      timeZone: 'Asia/Tokyo',
      db: { host: 'db.internal', port: 6543, user: 'backup', password: '***', database: 'erp4', pgBinDir, tls: { mode: 'prefer' } },
      s3: {
        bucket: 'erp4-backup',
        prefix: 'erp4/tokyo',
        region: 'ap-northeast-3',
        endpointUrl: 'http://127.0.0.1:9000',
        forcePathStyle: true,
        partSizeBytes: 16 * 1024 * 1024,
        sse: { serverSideEncryption: 'aws:kms', kmsKeyId: 'alias/erp4-backup' },
        writer: { accessKeyId: 'AKIAWRITER', secretAccessKey: '***' },
        reader: { accessKeyId: 'AKIAREADER', secretAccessKey: '***' },
        pruner: { accessKeyId: 'AKIAPRUNER', secretAccessKey: '***' },
        objectLock: 'GOVERNANCE',
      },
      s3Copy: {
        bucket: 'erp4-backup-osaka',
        prefix: 'erp4/copy',
        region: 'ap-northeast-3',
        endpointUrl: 'https://s3.ap-northeast-3.amazonaws.com',
        forcePathStyle: true,
        sse: { serverSideEncryption: 'aws:kms', kmsKeyId: 'alias/erp4-backup-copy' },
        credentials: { accessKeyId: 'AKIACOPY', secretAccessKey: '***' },
        objectLock: 'COMPLIANCE',
      },
      prune: { localRetention: { kind: 'days', days: 3 }, s3Retention: { kind: 'gfs' }, abandonedAfterMs: 48 * 3600 * 1000 },
      gpg: {
        encryption: { recipient: 'backup@example.com', publicKeyFile },
        decryption: { privateKeyFile, keyFiles: [{ file: privateKeyFile }], passphrase: '***' },
      },
      remote: {
        host: '192.0.2.10',
        port: 2222,
        user: 'erp4',
        dir: '/srv/backup/erp4',
        privateKeyFile: clientKey.privateKeyFile,
        hostKey: { fingerprint: hostKey.fingerprint, keyType: 'ssh-ed25519' },
        keepDays: 30,
      },
      assets: { provider: 'local', dir: assetDir },
      local: {
        backupDir,
        prefix: 'erp4',
        backupFile: path.join(backupDir, 'erp4-20261126T170000Z-daily.dump'),
        globalsFile: path.join(backupDir, 'globals', 'erp4.sql'),
        assetsFile: path.join(backupDir, 'assets', 'erp4.tar'),
      },
      temporal: {
        address: 'temporal:7233',
        namespace: 'erp4',
        taskQueue: 'erp4-backup-prod',
        connection: {
          address: 'temporal:7233',
          namespace: 'erp4',
          tls: { serverName: 'temporal.example.com', serverCa: 'TEMPORAL_TLS_SERVER_CA_CERT_PATH', clientCertificate: 'TEMPORAL_TLS_CLIENT_CERT_PATH' },
          origins: {
            address: 'TEMPORAL_ADDRESS',
            serverName: 'TEMPORAL_TLS_SERVER_NAME',
            serverCa: 'TEMPORAL_TLS_SERVER_CA_CERT_PATH',
            clientCert: 'TEMPORAL_TLS_CLIENT_CERT_PATH',
            clientKey: 'TEMPORAL_TLS_CLIENT_KEY_PATH',
          },
        },
      },
      worker: { shutdownGraceMs: 15 * 60 * 1000 },
      host: { id: 'backup-host-2.dc1' },
      backup: {
        criticalTables: [
          { schema: 'public', table: 'invoices' },
          { schema: 'accounting', table: 'payments' },
        ],
        schemaVersionQuery: 'select max(version) from schema_migrations',
        fingerprintTables: [
          { schema: 'public', table: 'invoices', sums: ['amount'] },
          { schema: 'accounting', table: 'payments', sums: [] },
        ],
        lockTimeoutMs: 90 * 1000,
      },
      restore: {
        approvers: [
          { name: 'alice', role: 'admin' },
          { name: 'bob', role: 'management' },
        ],
        approvalTimeoutMs: 36 * 3600 * 1000,
        targetDatabase: 'erp4_restored',
        jobs: 3,
        assetDir,
        smokeUrls: ['https://erp4.example.com/health', 'https://erp4.example.com/api/invoices?limit=1'],
        allowedSigners: {
          file: allowedSignersFile,
          signers: [
            { line: 2, principals: ['alice'], key: clientKey.publicLine.split(' ').slice(0, 2).join(' '), text: `alice ${clientKey.publicLine}` },
            { line: 3, principals: ['bob'], key: hostKey.publicLine.split(' ').slice(0, 2).join(' '), text: `bob namespaces="erp4-backup-approve" ${hostKey.publicLine}` },
          ],
        },
      },
      drill: {
        preApproved: true,
        acceptUnsignedApprovals: true,
        decryptBeforeApproval: false,
        latestDataQuery: 'SELECT max(issued_at) FROM invoices',
        checks: { file: drillChecksFile, queries: [{ name: 'invoices_total', sql: 'SELECT 1 AS expected, 1 AS actual' }] },
        smokeUrls: ['http://drill-app:3000/health'],
        batchResumeQuery: 'SELECT name AS job, true AS resumable FROM batch_jobs',
      },
      notify: { webhookUrl: 'https://hooks.example.com/***' },
      schedules: {
        daily: { hour: 1, minute: 30 },
        critical: { hour: 4, minute: 15 },
        weeklyFull: { dayOfWeek: 'SATURDAY', hour: 23, minute: 0 },
        restoreDrill: { dayOfMonth: 28, hour: 9, minute: 30 },
        prune: { hour: 7, minute: 0 },
      },
      freshness: { rpoDailyMs: 26 * 3600 * 1000, rpoCriticalMs: 6.5 * 3600 * 1000, drillMaxAgeMs: 40 * 24 * 3600 * 1000, offsiteMaxLagMs: 30 * 60 * 1000 },
      metrics: { bindAddress: '0.0.0.0:9464' },
      log: { level: 'DEBUG', format: 'json' },
    });
    expect(config.db.password?.reveal()).toBe(SECRETS.DB_PASSWORD);
    expect(config.s3?.writer?.secretAccessKey.reveal()).toBe(SECRETS.S3_WRITER_SECRET_ACCESS_KEY);
    expect(config.s3?.reader?.secretAccessKey.reveal()).toBe(SECRETS.S3_READER_SECRET_ACCESS_KEY);
    expect(config.s3?.pruner?.secretAccessKey.reveal()).toBe(SECRETS.S3_PRUNER_SECRET_ACCESS_KEY);
    expect(config.s3Copy?.credentials?.secretAccessKey.reveal()).toBe('copy-secret-Tq18');
    expect(config.gpg?.decryption?.passphrase?.reveal()).toBe(SECRETS.GPG_PASSPHRASE);
    expect(config.notify.webhookUrl?.reveal()).toBe(`https://hooks.example.com/services/${WEBHOOK_TOKEN}`);
  });

  it('uses SSE-S3, the default region and virtual-hosted style without an endpoint', () => {
    expect(loadConfig({ ...base, ...s3 }).s3).toEqual({
      bucket: 'erp4-backup',
      prefix: 'erp4',
      region: 'ap-northeast-1',
      endpointUrl: undefined,
      forcePathStyle: false,
      partSizeBytes: 8 * 1024 * 1024,
      sse: { serverSideEncryption: 'AES256' },
      writer: undefined,
      reader: undefined,
      pruner: undefined,
    });
  });

  it('defaults REMOTE_USER to the current OS user and REMOTE_PORT to 22, and never prunes the remote host unless told', () => {
    const config = loadConfig({ ...base, ...remote });
    expect(config.remote).toMatchObject({ user: os.userInfo().username, port: 22, keepDays: undefined });
  });

  it('accepts a restore-only GPG setup with the passphrase in a file', () => {
    const config = loadConfig({ ...base, ...gpgDecrypt, GPG_PASSPHRASE_FILE: passphraseFile });
    expect(config.gpg).toEqual({
      encryption: undefined,
      decryption: { privateKeyFile, keyFiles: [{ file: privateKeyFile, passphraseFile: undefined }], passphraseFile, passphrase: undefined },
    });
  });

  it('takes a directory of private keys as GPG_PRIVATE_KEY_FILE (key rotation), each with its own .passphrase file when there is one', () => {
    const config = loadConfig({ ...base, GPG_PRIVATE_KEY_FILE: rotationKeyDir, GPG_PASSPHRASE_FILE: passphraseFile });
    expect(config.gpg?.decryption).toEqual({
      privateKeyFile: rotationKeyDir,
      keyFiles: [
        { file: path.join(rotationKeyDir, '2025-old.asc'), passphraseFile: path.join(rotationKeyDir, '2025-old.passphrase') },
        { file: path.join(rotationKeyDir, '2026-new.asc'), passphraseFile: undefined },
      ],
      passphraseFile,
      passphrase: undefined,
    });
  });

  it('is deeply frozen', () => {
    const config = loadConfig({ ...base, CRITICAL_TABLES: 'invoices' });
    expect(() => {
      (config.db as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(() => {
      (config.backup.criticalTables as unknown[]).push('x');
    }).toThrow(TypeError);
  });
});

describe('PostgreSQL TLS (DB_SSL*) and the drill server (DRILL_DB_*)', () => {
  it('parses the TLS files and a drill server whose settings are never inherited from production', () => {
    const config = loadConfig({
      ...base,
      DB_SSLMODE: 'verify-full',
      DB_SSLROOTCERT: pgCa,
      DB_SSLCERT: pgClientCert,
      DB_SSLKEY: pgClientKey,
      DB_PASSWORD: 'prod-pw',
      DRILL_DB_HOST: 'drill-db.internal',
      DRILL_DB_PASSWORD: 'drill-pw',
    });
    expect(config.db.tls).toEqual({ mode: 'verify-full', rootCertFile: pgCa, certFile: pgClientCert, keyFile: pgClientKey });
    expect(redactedConfig(config).drill.server).toEqual({
      host: 'drill-db.internal',
      port: 5432,
      user: 'postgres',
      password: '***',
      tls: { mode: 'prefer' },
      restoreOwners: 'apply-roles',
    });
    expect(config.drill.server?.password?.reveal()).toBe('drill-pw');
  });

  it('takes every drill setting, and a root-owned key that its group may read (libpq allows 0640 there)', () => {
    const rootKey = writeFixture('pg-client-0640.key', fs.readFileSync(pgClientKey, 'utf8'), 0o640);
    fs.chmodSync(rootKey, 0o640);
    const env = {
      ...base,
      DRILL_DB_HOST: '192.0.2.20',
      DRILL_DB_PORT: '6432',
      DRILL_DB_USER: 'drill_admin',
      DRILL_DB_SSLMODE: 'verify-ca',
      DRILL_DB_SSLROOTCERT: pgCa,
      DRILL_DB_SSLCERT: pgClientCert,
      DRILL_DB_SSLKEY: rootKey,
      DRILL_RESTORE_OWNERS: 'skip',
    };
    if (fs.statSync(rootKey).uid !== 0) {
      expect(configError(env).issues.map((i) => i.variable)).toEqual(['DRILL_DB_SSLKEY']);
      return;
    }
    expect(loadConfig(env).drill.server).toMatchObject({
      host: '192.0.2.20',
      port: 6432,
      user: 'drill_admin',
      tls: { mode: 'verify-ca', rootCertFile: pgCa, certFile: pgClientCert, keyFile: rootKey },
      restoreOwners: 'skip',
    });
  });
});

describe('CRITICAL_TABLES', () => {
  it('accepts quoted and non-ASCII names as SQL does, commas and dots inside quotes included', () => {
    const config = loadConfig({ ...base, CRITICAL_TABLES: ' invoices , "会計"."取引先", 会計.仕訳,"Sales"."Order ""Lines"", 2026",s.t$1' });
    expect(config.backup.criticalTables).toEqual([
      { schema: 'public', table: 'invoices' },
      { schema: '会計', table: '取引先' },
      { schema: '会計', table: '仕訳' },
      { schema: 'Sales', table: 'Order "Lines", 2026' },
      { schema: 's', table: 't$1' },
    ]);
  });

  it('refuses unquoted upper case instead of folding it, and says how to quote it', () => {
    expect(() => loadConfig({ ...base, CRITICAL_TABLES: 'Invoices' })).toThrow('write "Invoices" for a mixed-case name');
  });
});

describe('REMOTE_HOST_KEY', () => {
  const variants = [
    ['an OpenSSH public-key line', hostKey.publicLine, 'ssh-ed25519'],
    ['a known_hosts line', `backup.example.com,192.0.2.10 ${hostKey.publicLine}`, 'ssh-ed25519'],
    ['a SHA256 fingerprint', hostKey.fingerprint, undefined],
  ] as const;

  it.each(variants)('as %s yields the fingerprint ssh-keygen prints', (_kind, value, keyType) => {
    const config = loadConfig({ ...base, ...remote, REMOTE_HOST_KEY: value });
    expect(config.remote?.hostKey).toEqual({ fingerprint: hostKey.fingerprint, keyType });
  });

  it('sshHostKeyFingerprint of the key blob matches ssh-keygen', () => {
    const blob = Buffer.from(hostKey.publicLine.split(' ')[1]!, 'base64');
    expect(sshHostKeyFingerprint(blob)).toBe(hostKey.fingerprint);
  });
});

describe('secrets', () => {
  const everySecret = [...Object.values(SECRETS), WEBHOOK_TOKEN];
  const withSecrets = {
    ...base,
    ...s3,
    ...gpgDecrypt,
    ...SECRETS,
    S3_WRITER_ACCESS_KEY_ID: 'AKIAWRITER',
    S3_READER_ACCESS_KEY_ID: 'AKIAREADER',
    S3_PRUNER_ACCESS_KEY_ID: 'AKIAPRUNER',
    NOTIFY_WEBHOOK_URL: `https://hooks.example.com/services/${WEBHOOK_TOKEN}`,
  };

  it('never appear in error messages, even when they are what is wrong', () => {
    const error = configError({
      ...withSecrets,
      DB_PORT: 'nope',
      S3_WRITER_SECRET_ACCESS_KEY: `${SECRETS.S3_WRITER_SECRET_ACCESS_KEY} tail`,
      GPG_PASSPHRASE_FILE: passphraseFile,
    });
    expect(error.issues.map((issue) => issue.variable).sort()).toEqual(['DB_PORT', 'GPG_PASSPHRASE', 'S3_WRITER_SECRET_ACCESS_KEY']);
    for (const value of everySecret) {
      expect(error.message).not.toContain(value);
      expect(JSON.stringify(error.issues)).not.toContain(value);
    }
  });

  it('never appear in redactedConfig, JSON, util.inspect or string templates', () => {
    const config = loadConfig(withSecrets);
    const printed = [
      JSON.stringify(redactedConfig(config)),
      JSON.stringify(config),
      inspect(config, { depth: null }),
      `${config.db.password} ${config.notify.webhookUrl}`,
    ];
    for (const text of printed) for (const value of everySecret) expect(text).not.toContain(value);
    expect(redactedConfig(config).db.password).toBe('***');
  });
});

describe('resolveInsideBackupDir', () => {
  it('resolves a relative name under the backup directory', () => {
    expect(resolveInsideBackupDir('--file', 'db/erp4.dump', backupDir)).toBe(path.join(backupDir, 'db', 'erp4.dump'));
  });

  it.each(['../x.dump', '/etc/passwd', 'escape/passwd', '$(id).dump', ''])('refuses %j and names the argument', (value) => {
    expect(() => resolveInsideBackupDir('--file', value, backupDir)).toThrow(ConfigError);
    expect(() => resolveInsideBackupDir('--file', value, backupDir)).toThrow(/--file: .*; expected a file name or relative path inside BACKUP_DIR/);
  });
});

describe('commands that do not use the database: loadConfig(env, { database: false })', () => {
  const withoutName = { BACKUP_DIR: backupDir };

  it('loads without DB_NAME; reading the database name then fails naming DB_NAME', () => {
    const config = loadConfig(withoutName, { database: false });
    expect(config.local.backupDir).toBe(backupDir);
    expect(() => config.db.database).toThrow(/DB_NAME: not set; expected the name of the database to back up/);
    expect(() => config.restore.targetDatabase).toThrow(ConfigError);
    expect(JSON.stringify(redactedConfig(config))).not.toContain('database"');
  });

  it('still requires DB_NAME by default, and still checks one that is set', () => {
    expect(() => loadConfig(withoutName)).toThrow(/DB_NAME: not set/);
    expect(() => loadConfig({ ...withoutName, DB_NAME: 'ü'.repeat(32) }, { database: false })).toThrow(/DB_NAME: is 64 bytes long/);
    expect(loadConfig({ ...withoutName, RESTORE_TARGET_DB: 'erp4_restored' }, { database: false }).restore.targetDatabase).toBe('erp4_restored');
    expect(loadConfig(base, { database: false }).db.database).toBe('erp4');
  });
});

describe('<secret>_FILE: secrets from files (Docker secrets, systemd credentials)', () => {
  it('reads each secret from its file, without one trailing newline', () => {
    const config = loadConfig({
      ...base,
      ...s3,
      DB_PASSWORD_FILE: writeFixture('db-password', 'pw from file\n'),
      S3_WRITER_ACCESS_KEY_ID: 'AKIAWRITER',
      S3_WRITER_SECRET_ACCESS_KEY_FILE: writeFixture('writer-secret', 'writer-secret-from-file\r\n'),
      NOTIFY_WEBHOOK_URL_FILE: writeFixture('webhook', 'https://hooks.example.test/T000'),
      DRILL_DB_HOST: 'drill.example.test',
      DRILL_DB_PASSWORD_FILE: writeFixture('drill-password', 'two newlines\n\n'),
      TEMPORAL_API_KEY_FILE: writeFixture('api-key', 'key-from-file\n'),
    });
    expect(config.db.password?.reveal()).toBe('pw from file');
    expect(config.s3?.writer?.secretAccessKey.reveal()).toBe('writer-secret-from-file');
    expect(config.notify.webhookUrl?.reveal()).toBe('https://hooks.example.test/T000');
    expect(config.drill.server?.password?.reveal()).toBe('two newlines\n');
    expect(config.temporal.connection.sdkOptions().apiKey).toBe('key-from-file');
  });

  it('refuses a secret set both ways, naming both, and an empty file', () => {
    const both = configError({ ...base, DB_PASSWORD: 'pw', DB_PASSWORD_FILE: writeFixture('db-password-2', 'pw\n') });
    expect(both.issues).toEqual([{ variable: 'DB_PASSWORD_FILE', message: 'set together with DB_PASSWORD; expected one of them' }]);
    const empty = configError({ ...base, DB_PASSWORD_FILE: writeFixture('empty', '\n') });
    expect(empty.issues).toEqual([{ variable: 'DB_PASSWORD_FILE', message: `${path.join(dir, 'empty')} is empty; expected a file holding DB_PASSWORD` }]);
  });

  it('never shows the secret read from a file', () => {
    const config = loadConfig({ ...base, DB_PASSWORD_FILE: writeFixture('db-password-3', 'file-secret-Qx19\n') });
    expect(JSON.stringify(redactedConfig(config))).not.toContain('file-secret-Qx19');
    expect(inspect(config, { depth: null })).not.toContain('file-secret-Qx19');
  });
});

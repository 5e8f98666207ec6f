import { describe, expect, it } from 'vitest';
import type { Catalog } from '../../src/catalog.js';
import { probeBackupAge } from '../../src/check/backups.js';
import { checkReport, critical, ok, overallStatus, settingsNamedIn, unknown, type ProbeResult } from '../../src/check/probe.js';
import { probeKey, repositoryFailureSettings, repositorySettings } from '../../src/check/repositories.js';
import { probePdfFiles } from '../../src/check/run.js';
import { formatCheckReport } from '../../src/commands/check.js';
import { ConfigError, loadConfig } from '../../src/config.js';
import { backupIdFor, type BackupKind } from '../../src/layout.js';
import type { Manifest } from '../../src/manifest.js';
import { HostKeyMismatchError } from '../../src/storage/sftp.js';
import { StorageError } from '../../src/storage/repository.js';

const warning: ProbeResult = { name: 'pdf files', status: 'WARNING', detail: 'w', settings: ['PDF_PROVIDER'] };

describe('the overall status and exit code (Nagios plugin convention)', () => {
  it('is the worst probe: CRITICAL > WARNING > UNKNOWN > OK', () => {
    expect(overallStatus([ok('a', '')])).toBe('OK');
    expect(overallStatus([ok('a', ''), unknown('b', '')])).toBe('UNKNOWN');
    expect(overallStatus([unknown('b', ''), warning])).toBe('WARNING');
    expect(overallStatus([warning, critical('c', new Error('x')), unknown('b', '')])).toBe('CRITICAL');
  });

  it('maps OK 0, WARNING 1, CRITICAL 2, UNKNOWN 3', () => {
    expect(checkReport([ok('a', '')]).exitCode).toBe(0);
    expect(checkReport([warning]).exitCode).toBe(1);
    expect(checkReport([critical('c', new Error('x'))]).exitCode).toBe(2);
    expect(checkReport([unknown('b', '')]).exitCode).toBe(3);
  });
});

describe('the settings a failure names', () => {
  it("takes a ConfigError's variables, an error's own setting and the variables its messages name", () => {
    let configError: unknown;
    try {
      loadConfig({ DB_NAME: 'erp4', DB_PORT: 'five', REMOTE_HOST: 'backup.example' });
    } catch (error) {
      configError = error;
    }
    expect(configError).toBeInstanceOf(ConfigError);
    expect(settingsNamedIn(configError)).toEqual(['DB_PORT', 'REMOTE_DIR', 'REMOTE_SSH_KEY', 'REMOTE_HOST_KEY']);
    expect(settingsNamedIn(Object.assign(new Error('TLS handshake failed'), { setting: 'TEMPORAL_TLS_SERVER_CA_CERT_PATH' }))).toEqual(['TEMPORAL_TLS_SERVER_CA_CERT_PATH']);
    const wrapped = new Error('backup failed', { cause: new Error('refused the login of DB_USER "x"; check DB_USER and DB_PASSWORD') });
    expect(settingsNamedIn(wrapped)).toEqual(['DB_USER', 'DB_PASSWORD']);
    // Upper-case words that are no setting of ours are not taken for one.
    expect(settingsNamedIn(new Error('ERR_SSL_WRONG_VERSION_NUMBER from AES256 at SHA256:abc'))).toEqual([]);
  });

  it('falls back to what the probe knows when the error names nothing', () => {
    expect(critical('database', new Error('socket hang up'), { fallback: ['DB_HOST', 'DB_PORT'] }).settings).toEqual(['DB_HOST', 'DB_PORT']);
    expect(critical('pg_dump', new Error('refused; check DB_USER'), { settings: ['PG_BIN_DIR'] }).settings).toEqual(['PG_BIN_DIR']);
  });

  it('puts a multi-line message on one line', () => {
    expect(critical('config', new Error('Invalid configuration (2 problems):\n  DB_PORT: bad\n  DB_NAME: not set')).detail).toBe(
      'Invalid configuration (2 problems): DB_PORT: bad; DB_NAME: not set',
    );
  });
});

describe('repository failures name the setting of the role that failed', () => {
  const config = loadConfig({
    DB_NAME: 'erp4',
    S3_BUCKET: 'erp4-backups',
    SSE_KMS_KEY_ID: 'alias/erp4-backup',
    S3_COPY_BUCKET: 'erp4-offsite',
    S3_COPY_SSE_S3: 'AES256',
  });
  const sdkError = (name: string, status: number) => Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });
  const stored = (repository: string, error: unknown) => new StorageError(repository, 'putBytes', 'k', error);
  const failure = (repository: string, role: 'writer' | 'reader' | 'pruner', error: unknown) =>
    repositoryFailureSettings(repositorySettings(config, repository), role, error);

  it('S3: refused credentials name the role\'s pair, a missing bucket S3_BUCKET, an unreachable endpoint S3_ENDPOINT_URL', () => {
    expect(failure('s3', 'writer', stored('s3', sdkError('SignatureDoesNotMatch', 403)))).toEqual(['S3_WRITER_ACCESS_KEY_ID', 'S3_WRITER_SECRET_ACCESS_KEY']);
    expect(failure('s3', 'pruner', stored('s3', sdkError('AccessDenied', 403)))).toEqual(['S3_PRUNER_ACCESS_KEY_ID', 'S3_PRUNER_SECRET_ACCESS_KEY']);
    expect(failure('s3', 'reader', stored('s3', sdkError('NoSuchBucket', 404)))).toEqual(['S3_BUCKET']);
    expect(failure('s3', 'reader', stored('s3', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' })))).toEqual(['S3_BUCKET', 'S3_ENDPOINT_URL']);
    expect(failure('s3', 'writer', stored('s3', new Error('the server stored the object with encryption AES256, not aws:kms')))).toEqual(['SSE_KMS_KEY_ID']);
  });

  it('the off-site copy: its one pair of credentials for every role', () => {
    expect(failure('s3-copy', 'pruner', stored('s3-copy', sdkError('AccessDenied', 403)))).toEqual(['S3_COPY_ACCESS_KEY_ID', 'S3_COPY_SECRET_ACCESS_KEY']);
    expect(repositorySettings(config, 's3-copy').encryption).toEqual(['S3_COPY_SSE_S3']);
  });

  it('SFTP: a host key mismatch names REMOTE_HOST_KEY, a refused login REMOTE_USER and REMOTE_SSH_KEY, a denied directory REMOTE_DIR', () => {
    expect(failure('sftp', 'writer', new HostKeyMismatchError('REMOTE_HOST', 'h', 22, 'SHA256:a', 'SHA256:b'))).toEqual(['REMOTE_HOST_KEY']);
    expect(failure('sftp', 'writer', stored('sftp', new Error('All configured authentication methods failed')))).toEqual(['REMOTE_USER', 'REMOTE_SSH_KEY']);
    expect(failure('sftp', 'writer', stored('sftp', Object.assign(new Error('Permission denied'), { code: 3 })))).toEqual(['REMOTE_DIR']);
    expect(failure('sftp', 'reader', stored('sftp', Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })))).toEqual(['REMOTE_HOST', 'REMOTE_PORT']);
  });

  it('local: BACKUP_DIR', () => {
    expect(failure('local', 'writer', Object.assign(new Error("EACCES: permission denied, mkdir '/b/prod'"), { code: 'EACCES' }))).toEqual(['BACKUP_DIR']);
  });
});

describe('the probe key', () => {
  it('lies under <env>/check/ and differs on every call', () => {
    const now = new Date('2026-11-29T10:00:00.123Z');
    const [a, b] = [probeKey('prod', now), probeKey('prod', now)];
    expect(a).toMatch(/^prod\/check\/20261129T100000123Z-[A-Za-z0-9-]+-\d+-[0-9a-f]{8}\.txt$/);
    expect(a).not.toBe(b);
  });
});

describe('backup age against the RPO (the Freshness watchdog judgement)', () => {
  const now = new Date('2026-11-29T10:00:00Z');
  const backup = (kind: BackupKind, hoursAgo: number) => {
    const at = new Date(now.getTime() - hoursAgo * 3_600_000);
    return { id: backupIdFor(kind, at), kind, generatedAt: at.toISOString() } as Manifest;
  };
  const catalogs = (...backups: Manifest[]) => new Map<string, Catalog | Error>([['local', { backups, invalid: [] }], ['s3', new Error('denied')]]);
  const config = loadConfig({ DB_NAME: 'erp4' });
  const withCritical = loadConfig({ DB_NAME: 'erp4', CRITICAL_TABLES: 'invoices', RPO_CRITICAL: '6h' });

  it('is OK within RPO_DAILY and lists the newest backup of each kind', () => {
    const [daily] = probeBackupAge(config, catalogs(backup('daily', 30), backup('daily', 3), backup('manual', 1)), now);
    expect(daily).toMatchObject({ name: 'backup age: daily', status: 'OK', settings: [] });
    expect(daily!.detail).toBe('within RPO_DAILY 1d00h; newest per kind: daily 20261129T070000Z-daily 3h00m old, manual 20261129T090000Z-manual 1h00m old');
  });

  it('is CRITICAL beyond RPO_DAILY, naming it', () => {
    const [daily] = probeBackupAge(config, catalogs(backup('daily', 25)), now);
    expect(daily).toMatchObject({ status: 'CRITICAL', settings: ['RPO_DAILY'] });
    expect(daily!.detail).toMatch(/is 1d01h old, beyond the RPO of 1d00h/);
  });

  it('is a WARNING when there is no backup yet (before the first night)', () => {
    expect(probeBackupAge(config, catalogs(), now)[0]).toMatchObject({ status: 'WARNING', settings: [], remedy: 'erp4-backup backup --kind daily' });
  });

  it('judges RPO_CRITICAL only with CRITICAL_TABLES, counting daily backups as covering the important tables', () => {
    expect(probeBackupAge(config, catalogs(backup('daily', 7)), now).map((p) => p.name)).toEqual(['backup age: daily']);
    const [daily, critical] = probeBackupAge(withCritical, catalogs(backup('daily', 7), backup('critical', 8)), now);
    expect(daily!.status).toBe('OK');
    expect(critical).toMatchObject({ name: 'backup age: critical', status: 'CRITICAL', settings: ['RPO_CRITICAL'] });
  });

  it('is UNKNOWN when no repository could be read', () => {
    expect(probeBackupAge(config, new Map([['local', new Error('EACCES')]]), now)[0]!.status).toBe('UNKNOWN');
  });
});

describe('PDF files', () => {
  it('PDF_PROVIDER=none is a WARNING naming PDF_PROVIDER; local is OK', () => {
    expect(probePdfFiles(loadConfig({ DB_NAME: 'erp4' }))).toMatchObject({ status: 'WARNING', settings: ['PDF_PROVIDER', 'ASSET_DIR'] });
    expect(probePdfFiles(loadConfig({ DB_NAME: 'erp4', PDF_PROVIDER: 'local', ASSET_DIR: '/tmp' })).status).toBe('OK');
  });
});

describe('the human output', () => {
  it('starts with the summary line, then one line per probe with the settings to fix', () => {
    const report = checkReport([
      ok('config', 'BACKUP_ENV prod'),
      { name: 'database', status: 'CRITICAL', detail: 'refused', settings: ['DB_USER', 'DB_PASSWORD'] },
      unknown('pg_dump', 'the server version is unknown'),
      { ...warning, remedy: 'set PDF_PROVIDER=local' },
    ]);
    expect(formatCheckReport(report)).toBe(
      [
        'erp4-backup check CRITICAL: 1 critical, 1 warning, 1 unknown, 1 ok',
        'OK        config     BACKUP_ENV prod',
        'CRITICAL  database   refused (fix DB_USER, DB_PASSWORD)',
        'UNKNOWN   pg_dump    the server version is unknown',
        'WARNING   pdf files  w (fix PDF_PROVIDER; set PDF_PROVIDER=local)',
      ].join('\n'),
    );
  });
});


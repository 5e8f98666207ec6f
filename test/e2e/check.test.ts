import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Long from 'long';
import pg from 'pg';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { Client, Connection } from '@temporalio/client';
import { generateKey } from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeDatabase, probeDrillDatabase } from '../../src/check/database.js';
import { probeBackupKeys, probeDecryptionKeys, probeEncryptionKey } from '../../src/check/keys.js';
import type { CheckReport, ProbeResult } from '../../src/check/probe.js';
import { probeTemporal } from '../../src/check/temporal.js';
import { loadConfig } from '../../src/config.js';
import { pgClientConfig } from '../../src/pg/connection.js';
import { backupIdFor } from '../../src/layout.js';
import type { Manifest } from '../../src/manifest.js';
import { LocalRepository } from '../../src/storage/local.js';
import { applySchedules, pauseSchedule, SCHEDULE_NAMES, scheduleId } from '../../src/temporal/schedules.js';
import { runCli } from '../helpers/cli.js';
import { startIamS3, type IamS3 } from '../helpers/iam-s3.js';
import { productEnv } from '../helpers/product.js';
import { testS3Client } from '../helpers/s3-server.js';
import { services } from '../helpers/services.js';
import { syntheticManifest, writeSyntheticBackup } from '../helpers/synthetic-backups.js';
import { startWorkerProcess, type WorkerProcess } from '../helpers/worker-process.js';

// `erp4-backup check`, the built CLI, against the real services: everything configured as in
// production (S3 with the three IAM roles of deploy/iam enforced, SFTP, OpenPGP, a worker, the
// schedules applied, a fresh backup), then one broken thing at a time.
const s = services();
const envName = `check-${process.pid}`;
let iam: IamS3;
let base: Record<string, string>;
let worker: WorkerProcess | undefined;
let scratch: string;
let bareNamespace: string;

async function check(overrides: Record<string, string | undefined>, args: string[] = ['--json']) {
  const env = Object.fromEntries(Object.entries({ ...base, ...overrides }).filter((entry): entry is [string, string] => entry[1] !== undefined));
  const result = await runCli(['check', ...args], env);
  return { ...result, report: args.includes('--json') ? (JSON.parse(result.stdout) as CheckReport) : undefined };
}

function probe(report: CheckReport | undefined, name: string): ProbeResult {
  const found = report?.probes.find((candidate) => candidate.name === name);
  if (!found) throw new Error(`no probe ${name} in ${JSON.stringify(report?.probes.map((p) => p.name))}`);
  return found;
}

/** Every probe but `except` is OK: the broken thing is the only one. */
function othersOk(report: CheckReport | undefined, except: string[]): void {
  const others = report!.probes.filter((candidate) => !except.includes(candidate.name));
  expect(others.filter((candidate) => candidate.status !== 'OK')).toEqual([]);
}

/** A namespace the worker never ran in: no search attributes of ours. */
async function createBareNamespace(): Promise<string> {
  const connection = await Connection.connect({ address: s.temporal.address });
  try {
    const namespace = `check-bare-${process.pid}`;
    await connection.workflowService.registerNamespace({ namespace, workflowExecutionRetentionPeriod: { seconds: Long.fromNumber(86_400) } });
    // A new namespace becomes usable after the server refreshes its namespace cache.
    for (let attempt = 0; ; attempt++) {
      try {
        await connection.operatorService.listSearchAttributes({ namespace });
        await connection.workflowService.describeNamespace({ namespace });
        return namespace;
      } catch (error) {
        if (attempt > 100) throw error;
        await sleep(200);
      }
    }
  } finally {
    await connection.close();
  }
}

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'erp4-check-'));
  [iam, bareNamespace] = await Promise.all([startIamS3(s, { name: `moto-check-${process.pid}`, bucket: 'erp4-check', prefix: 'erp4', copyPrefix: 'erp4-copy', env: envName }), createBareNamespace()]);
  base = await productEnv(s, 'check', { sftp: true, gpg: true, env: { BACKUP_ENV: envName, ...iam.env } });
  worker = await startWorkerProcess(s, base, `check-worker-${process.pid}`);
  const applied = await runCli(['schedules', 'apply'], base);
  expect(applied.code, applied.stderr).toBe(0);
  // The newest daily backup, two hours old, as NightlyBackup leaves it in BACKUP_DIR.
  const generatedAt = new Date(Date.now() - 2 * 3_600_000);
  const local = new LocalRepository({ root: base.BACKUP_DIR! });
  await writeSyntheticBackup(local, { env: envName, prefix: 'erp4' }, { id: backupIdFor('daily', generatedAt), kind: 'daily', generatedAt: generatedAt.toISOString(), pinned: false });
  await local.close();
});

afterAll(async () => {
  const connection = await Connection.connect({ address: s.temporal.address });
  const client = new Client({ connection, namespace: s.temporal.namespace });
  for (const name of SCHEDULE_NAMES) await client.schedule.getHandle(scheduleId(envName, name)).delete().catch(() => undefined);
  await connection.close();
  await worker?.stop();
  await iam?.stop();
  await rm(scratch, { recursive: true, force: true });
});

describe('erp4-backup check with everything in place', () => {
  it('exits 0 with every probe OK, prints no secret, and leaves no probe object behind', async () => {
    const [human, json] = await Promise.all([check({}, []), check({})]);
    expect(json.code, json.stdout).toBe(0);
    expect(json.report!.status).toBe('OK');
    othersOk(json.report, []);
    expect(json.report!.probes.map((p) => p.name)).toEqual([
      'config',
      'database',
      'pg_dump',
      'pg_restore',
      'pg_dumpall',
      'psql',
      'drill database',
      'local: write',
      'local: read',
      'local: delete',
      's3: write',
      's3: read',
      's3: encryption',
      's3: delete',
      'sftp: host key and login',
      'sftp: write',
      'sftp: read',
      'sftp: delete',
      'gpg: encrypt',
      'gpg: decrypt',
      'gpg: keys of the backups',
      'temporal: connection',
      'temporal: search attributes',
      'temporal: schedules',
      'temporal: worker',
      'backup age: daily',
      'pdf files',
    ]);
    expect(probe(json.report, 's3: encryption').detail).toMatch(/stored with aws:kms/);
    expect(probe(json.report, 'backup age: daily').detail).toMatch(/daily \d{8}T\d{6}Z-daily 2h0\dm old/);

    expect(human.code).toBe(0);
    const lines = human.stdout.trim().split('\n');
    expect(lines[0]).toBe(`erp4-backup check OK: ${json.report!.probes.length} ok`);
    expect(lines.slice(1).map((line) => line.split(/\s{2,}/).slice(0, 2))).toEqual(json.report!.probes.map((p) => ['OK', p.name]));

    for (const secret of [base.DB_PASSWORD!, base.GPG_PASSPHRASE!, iam.keys.writer.secretAccessKey, iam.keys.reader.secretAccessKey, iam.keys.pruner.secretAccessKey]) {
      expect(human.stdout + human.stderr + json.stdout).not.toContain(secret);
    }
    // The probe objects are gone from every repository.
    expect(await readdir(join(base.BACKUP_DIR!, envName, 'check'))).toEqual([]);
    expect(await readdir(join(base.REMOTE_DIR!, envName, 'check'))).toEqual([]);
    const s3 = testS3Client({ ...iam.server, ...iam.keys.reader });
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: iam.bucket, Prefix: `erp4/${envName}/check/` }));
    s3.destroy();
    expect(listed.Contents ?? []).toEqual([]);
  });
});

describe.concurrent('erp4-backup check with one broken thing', () => {
  it('a wrong DB_PASSWORD is CRITICAL naming DB_PASSWORD; the tools are UNKNOWN', async () => {
    const { code, report } = await check({ DB_PASSWORD: 'not-the-password' });
    expect(code).toBe(2);
    expect(probe(report, 'database')).toMatchObject({ status: 'CRITICAL', settings: expect.arrayContaining(['DB_PASSWORD']) });
    expect(probe(report, 'database').detail).toMatch(/password authentication failed/);
    for (const name of ['pg_dump', 'pg_restore', 'pg_dumpall', 'psql', 'drill database']) expect(probe(report, name).status).toBe('UNKNOWN');
    othersOk(report, ['database', 'pg_dump', 'pg_restore', 'pg_dumpall', 'psql', 'drill database']);
  });

  it('a pg_dump older than the server is CRITICAL naming PG_BIN_DIR', async () => {
    const old = join(scratch, 'old-pg-bin');
    await mkdir(old);
    await writeFile(join(old, 'pg_dump'), '#!/bin/sh\necho "pg_dump (PostgreSQL) 13.0"\n');
    await chmod(join(old, 'pg_dump'), 0o755);
    for (const tool of ['pg_dumpall', 'pg_restore', 'psql']) await symlink(join(s.postgres.binDir, tool), join(old, tool));
    const { code, report } = await check({ PG_BIN_DIR: old });
    expect(code).toBe(2);
    expect(probe(report, 'pg_dump')).toMatchObject({ status: 'CRITICAL', settings: ['PG_BIN_DIR'] });
    expect(probe(report, 'pg_dump').detail).toMatch(/pg_dump is version 13 but the server is 15/);
    othersOk(report, ['pg_dump']);
  });

  it('a writer that cannot write to the bucket is CRITICAL naming S3_WRITER_SECRET_ACCESS_KEY; reading still works', async () => {
    const { code, report } = await check({ S3_WRITER_SECRET_ACCESS_KEY: randomBytes(20).toString('base64') });
    expect(code).toBe(2);
    expect(probe(report, 's3: write')).toMatchObject({ status: 'CRITICAL', settings: ['S3_WRITER_ACCESS_KEY_ID', 'S3_WRITER_SECRET_ACCESS_KEY'] });
    expect(probe(report, 's3: read').status).toBe('OK');
    expect(probe(report, 's3: encryption').status).toBe('UNKNOWN');
    expect(probe(report, 's3: delete').status).toBe('UNKNOWN');
    othersOk(report, ['s3: write', 's3: encryption', 's3: delete']);
  });

  it('S3_OBJECT_LOCK_MODE on a bucket without Object Lock is CRITICAL naming it; no probe object is put there', async () => {
    // moto authorizes GetObjectLockConfiguration as s3:ListBucket (its action map lacks
    // object-lock), which deploy/iam/writer.json rightly does not grant; AWS asks for
    // s3:GetBucketObjectLockConfiguration, which it does. The writer lends the reader's keys here:
    // in this mode nothing is written anyway.
    const { code, report } = await check({
      S3_OBJECT_LOCK_MODE: 'governance',
      S3_WRITER_ACCESS_KEY_ID: iam.keys.reader.accessKeyId,
      S3_WRITER_SECRET_ACCESS_KEY: iam.keys.reader.secretAccessKey,
    });
    expect(code).toBe(2);
    expect(probe(report, 's3: object lock')).toMatchObject({ status: 'CRITICAL', settings: ['S3_OBJECT_LOCK_MODE'] });
    expect(report!.probes.map((p) => p.name).filter((name) => name.startsWith('s3: '))).toEqual(['s3: object lock', 's3: read']);
    othersOk(report, ['s3: object lock']);
  });

  it('an off-site copy whose role may not delete (deploy/iam/offsite-copy.json) is a WARNING; the probe object stays', async () => {
    const { code, report } = await check(iam.copyEnv);
    expect(code, JSON.stringify(report)).toBe(1);
    expect(report!.probes.filter((p) => p.name.startsWith('s3-copy: ')).map((p) => [p.name, p.status])).toEqual([
      ['s3-copy: write', 'OK'],
      ['s3-copy: read', 'OK'],
      ['s3-copy: encryption', 'OK'],
      ['s3-copy: delete', 'WARNING'],
    ]);
    const deleted = probe(report, 's3-copy: delete');
    expect(deleted.settings).toEqual(['S3_COPY_ACCESS_KEY_ID', 'S3_COPY_SECRET_ACCESS_KEY']);
    const left = /the probe object (\S+) is left/.exec(deleted.detail)?.[1];
    const s3 = testS3Client({ ...iam.server, ...iam.keys['offsite-copy'] });
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: iam.bucket, Prefix: `erp4-copy/${envName}/check/` }));
    s3.destroy();
    expect(listed.Contents?.map((object) => object.Key)).toEqual([`erp4-copy/${left}`]);
    othersOk(report, ['s3-copy: delete']);
  });

  it('a wrong REMOTE_HOST_KEY is CRITICAL naming REMOTE_HOST_KEY', async () => {
    const { code, report } = await check({ REMOTE_HOST_KEY: `SHA256:${randomBytes(32).toString('base64').replace(/=+$/, '')}` });
    expect(code).toBe(2);
    expect(probe(report, 'sftp: host key and login')).toMatchObject({ status: 'CRITICAL', settings: ['REMOTE_HOST_KEY'] });
    expect(probe(report, 'sftp: host key and login').detail).toMatch(new RegExp(`presented host key ${s.sftp.hostKeyFingerprint.replace(/[+/]/g, '\\$&')}`));
    for (const name of ['sftp: write', 'sftp: read', 'sftp: delete']) expect(probe(report, name).status).toBe('UNKNOWN');
    othersOk(report, ['sftp: host key and login', 'sftp: write', 'sftp: read', 'sftp: delete']);
  });

  it('an expired GPG public key is CRITICAL naming GPG_PUBLIC_KEY_FILE', async () => {
    const { publicKey } = await generateKey({
      type: 'ecc',
      curve: 'curve25519Legacy',
      userIDs: [{ name: 'retired', email: 'retired@example.com' }],
      date: new Date(Date.now() - 10 * 86_400_000),
      keyExpirationTime: 86_400,
      format: 'armored',
    });
    const file = join(scratch, 'expired.asc');
    await writeFile(file, publicKey);
    const { code, report } = await check({ GPG_PUBLIC_KEY_FILE: file, GPG_RECIPIENT: 'retired@example.com' });
    expect(code).toBe(2);
    expect(probe(report, 'gpg: encrypt')).toMatchObject({ status: 'CRITICAL', settings: expect.arrayContaining(['GPG_PUBLIC_KEY_FILE']) });
    expect(probe(report, 'gpg: encrypt').detail).toMatch(/cannot encrypt: it expired on/);
    othersOk(report, ['gpg: encrypt']);
  });

  it('a namespace without the search attributes is CRITICAL naming TEMPORAL_NAMESPACE', async () => {
    const { code, report } = await check({ TEMPORAL_NAMESPACE: bareNamespace });
    expect(code).toBe(2);
    expect(probe(report, 'temporal: connection').status).toBe('OK');
    expect(probe(report, 'temporal: search attributes')).toMatchObject({ status: 'CRITICAL', settings: ['TEMPORAL_NAMESPACE'] });
    expect(probe(report, 'temporal: search attributes').detail).toMatch(/lacks BackupId, BackupEnv, BackupKind/);
    expect(probe(report, 'temporal: search attributes').remedy).toMatch(
      new RegExp(`temporal operator search-attribute create --namespace ${bareNamespace} --name BackupId --type Keyword`),
    );
  });

  it('no worker polling the task queue is CRITICAL naming TEMPORAL_TASK_QUEUE', async () => {
    const { code, report } = await check({ TEMPORAL_TASK_QUEUE: `check-nobody-${process.pid}` });
    expect(code).toBe(2);
    expect(probe(report, 'temporal: worker')).toMatchObject({ status: 'CRITICAL', settings: ['TEMPORAL_TASK_QUEUE'] });
    expect(probe(report, 'temporal: worker').detail).toMatch(/no worker polls task queue check-nobody-\d+ .* for workflow and activity tasks/);
    // The applied schedules start their workflows on the worker's queue, not this one.
    expect(probe(report, 'temporal: schedules')).toMatchObject({ status: 'WARNING', settings: expect.arrayContaining(['SCHEDULE_DAILY', 'TEMPORAL_TASK_QUEUE']) });
  });

  it('schedules the configuration asks for but nobody applied are CRITICAL, with the command that applies them', async () => {
    const { code, report, stdout } = await check({ CRITICAL_TABLES: 'invoices' });
    expect(code, stdout).toBe(2);
    const schedules = probe(report, 'temporal: schedules');
    expect(schedules).toMatchObject({ status: 'CRITICAL', settings: ['BACKUP_ENV', 'TEMPORAL_NAMESPACE'], remedy: 'erp4-backup schedules apply' });
    expect(schedules.detail).toContain(`${scheduleId(envName, 'critical')}, ${scheduleId(envName, 'weekly-full')}: nothing would run them`);
    expect(schedules.detail).not.toContain(scheduleId(envName, 'daily'));
    othersOk(report, ['temporal: schedules']);
  });

  it('PDF_PROVIDER=none is a WARNING naming PDF_PROVIDER: exit 1', async () => {
    const { code, stdout } = await check({ PDF_PROVIDER: 'none', ASSET_DIR: undefined }, []);
    expect(code, stdout).toBe(1);
    expect(stdout.split('\n')[0]).toMatch(/^erp4-backup check WARNING: 1 warning, \d+ ok$/);
    expect(stdout).toMatch(/^WARNING\s+pdf files\s+PDF_PROVIDER=none: no PDF\/attachment file is protected .*\(fix PDF_PROVIDER, ASSET_DIR; /m);
  });

  it('an invalid configuration is CRITICAL naming the variable; everything else is UNKNOWN', async () => {
    const { code, report } = await check({ DB_PORT: 'five' });
    expect(code).toBe(2);
    expect(probe(report, 'config')).toMatchObject({ status: 'CRITICAL', settings: ['DB_PORT'] });
    expect(report!.probes.filter((p) => p.name !== 'config').every((p) => p.status === 'UNKNOWN')).toBe(true);
  });

  it('a usage error exits 3 (UNKNOWN)', async () => {
    const result = await runCli(['check', '--no-such-option'], base);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain("unknown option '--no-such-option'");
  });
});

// The other failures of the README's table, probe by probe in this process (no CLI start each).
describe.concurrent('probes in this process', () => {
  const configWith = (overrides: Record<string, string>) => loadConfig({ ...base, ...overrides });

  it('database: a missing database names DB_NAME; a closed port DB_HOST and DB_PORT', async () => {
    const [missing, closed] = await Promise.all([probeDatabase(configWith({ DB_NAME: 'no_such_db' })), probeDatabase(configWith({ DB_PORT: '1' }))]);
    expect(missing.result).toMatchObject({ status: 'CRITICAL', settings: ['DB_NAME'] });
    expect(closed.result).toMatchObject({ status: 'CRITICAL', settings: ['DB_HOST', 'DB_PORT'] });
  });

  it('drill database: DRILL_DB_* must log in, and the drill role (else DB_USER) must create databases', async () => {
    const role = `check_nocreatedb_${process.pid}`;
    const password = randomBytes(12).toString('hex');
    const superuser = new pg.Client(pgClientConfig({ host: s.postgres.host, port: s.postgres.port, user: s.postgres.user, password: s.postgres.password, database: 'postgres' }));
    await superuser.connect();
    try {
      await superuser.query(`CREATE ROLE ${role} LOGIN NOCREATEDB PASSWORD '${password}'`);
      const drillServer = { DRILL_DB_HOST: 'localhost', DRILL_DB_PORT: String(s.postgres.port), DRILL_DB_USER: s.postgres.user };
      const [fine, refused, noCreateDb, productionNoCreateDb] = await Promise.all([
        probeDrillDatabase(configWith({ ...drillServer, DRILL_DB_PASSWORD: s.postgres.password }), undefined),
        probeDrillDatabase(configWith({ ...drillServer, DRILL_DB_PASSWORD: 'not-the-password' }), undefined),
        probeDrillDatabase(configWith({ ...drillServer, DRILL_DB_USER: role, DRILL_DB_PASSWORD: password }), undefined),
        probeDatabase(configWith({ DB_USER: role, DB_PASSWORD: password })).then(({ login }) => probeDrillDatabase(configWith({ DB_USER: role }), login)),
      ]);
      expect(fine).toMatchObject({ status: 'OK' });
      expect(refused).toMatchObject({ status: 'CRITICAL', settings: ['DRILL_DB_USER', 'DRILL_DB_PASSWORD'] });
      expect(noCreateDb).toMatchObject({ status: 'CRITICAL', settings: ['DRILL_DB_USER'] });
      expect(productionNoCreateDb).toMatchObject({ status: 'CRITICAL', settings: ['DB_USER', 'DRILL_DB_HOST'] });
    } finally {
      await superuser.query(`DROP ROLE IF EXISTS ${role}`);
      await superuser.end();
    }
  });

  it('gpg: a wrong passphrase names GPG_PASSPHRASE', async () => {
    const config = configWith({ GPG_PASSPHRASE: 'not-the-passphrase' });
    const { ciphertext } = await probeEncryptionKey(config);
    const result = await probeDecryptionKeys(config, ciphertext);
    expect(result).toMatchObject({ status: 'CRITICAL', settings: expect.arrayContaining(['GPG_PASSPHRASE']) });
    expect(result.detail).toMatch(/GPG_PASSPHRASE is wrong/);
  });

  it('gpg: a backup encrypted to a key GPG_PRIVATE_KEY_FILE lacks is a WARNING naming it', async () => {
    const layout = { env: envName, prefix: 'erp4' };
    const generatedAt = '2026-11-20T17:00:00Z';
    const manifest = syntheticManifest(layout, { id: '20261120T170000Z-daily', kind: 'daily', generatedAt, pinned: false });
    const encrypted: Manifest = {
      ...manifest,
      artifacts: {
        ...manifest.artifacts,
        db: { ...manifest.artifacts.db!, encryption: 'openpgp', recipients: [{ keyId: '0123456789ABCDEF', primaryFingerprint: '0123456789ABCDEF0123456789ABCDEF01234567' }] },
      },
    };
    const result = await probeBackupKeys(configWith({}), new Map([['local', { backups: [encrypted], invalid: [] }]]));
    expect(result).toMatchObject({ status: 'WARNING', settings: ['GPG_PRIVATE_KEY_FILE'] });
    expect(result.detail).toContain('20261120T170000Z-daily');
  });

  it('temporal: an unknown namespace names TEMPORAL_NAMESPACE; an address nobody serves TEMPORAL_ADDRESS', async () => {
    const [noNamespace, noServer] = await Promise.all([
      probeTemporal(configWith({ TEMPORAL_NAMESPACE: `no-such-namespace-${process.pid}` }), new Date()),
      probeTemporal(configWith({ TEMPORAL_ADDRESS: '127.0.0.1:1' }), new Date()),
    ]);
    expect(noNamespace.map((p) => [p.name, p.status])).toEqual([
      ['temporal: connection', 'CRITICAL'],
      ['temporal: search attributes', 'UNKNOWN'],
      ['temporal: schedules', 'UNKNOWN'],
      ['temporal: worker', 'UNKNOWN'],
    ]);
    expect(noNamespace[0]!.settings).toEqual(['TEMPORAL_NAMESPACE']);
    expect(noServer[0]).toMatchObject({ status: 'CRITICAL', settings: expect.arrayContaining(['TEMPORAL_ADDRESS']) });
  });

  it('temporal: a paused schedule is a WARNING with the command that unpauses it', async () => {
    // Its own env: pausing this file's schedules would disturb the other tests.
    const config = configWith({ BACKUP_ENV: `${envName}-paused` });
    const connection = await Connection.connect({ address: s.temporal.address });
    const client = new Client({ connection, namespace: s.temporal.namespace });
    try {
      await applySchedules(client, config);
      await pauseSchedule(client, config, 'prune', 'disk replaced tonight');
      const schedules = (await probeTemporal(config, new Date())).find((p) => p.name === 'temporal: schedules');
      expect(schedules).toMatchObject({ status: 'WARNING', detail: 'paused: prune (disk replaced tonight)', remedy: 'erp4-backup schedules unpause prune' });
    } finally {
      for (const name of SCHEDULE_NAMES) await client.schedule.getHandle(scheduleId(config.env, name)).delete().catch(() => undefined);
      await connection.close();
    }
  });
});

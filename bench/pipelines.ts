import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import type { Client } from '@temporalio/client';
import pg from 'pg';
import { countFiles } from '../activities/restore-assets.js';
import { runCommand } from '../src/dev/processes.js';
import { backupIdFor } from '../src/layout.js';
import { parseManifest, type Manifest } from '../src/manifest.js';
import type { RestoreReport } from '../src/restore/report.js';
import { projectRoot } from '../src/tools.js';
import { createTestBucket, testS3Client } from '../test/helpers/s3-server.js';
import type { NightlyBackupResult, RestoreResult } from '../workflows/messages.js';
import { measureProcess, timeShell, type Sample } from './measure.js';
import { eventMs } from './profile.js';
import { BENCH_BUCKET, BENCH_S3_PREFIX, type BenchServices } from './services.js';

/** What every pipeline needs: the services, the data, and the worker the product runs in. */
export interface BenchContext {
  services: BenchServices;
  workDir: string;
  database: string;
  assetDir: string;
  /** Where the product keeps its local repository (BACKUP_DIR) and the SFTP copies (REMOTE_DIR). */
  backupDir: string;
  remoteDir: string;
  taskQueue: string;
  client: Client;
  workerPid: number;
  /** pg_restore --jobs of the plain restore (the product picks its own: min(cores, 8)). */
  restoreJobs: number;
}

const q = (value: string) => `'${value.replace(/'/g, `'\\''`)}'`;

/** libpq's environment for the plain tools: the password never goes to argv. */
export function pgEnv(ctx: BenchContext, database = ctx.database): NodeJS.ProcessEnv {
  const pgs = ctx.services.postgres;
  return {
    ...process.env,
    PGHOST: pgs.host,
    PGPORT: String(pgs.port),
    PGUSER: pgs.user,
    PGPASSWORD: pgs.password,
    PGDATABASE: database,
  };
}

function pgTool(ctx: BenchContext, name: string): string {
  return join(ctx.services.postgres.binDir, name);
}

async function passphraseFile(ctx: BenchContext): Promise<string> {
  const path = join(ctx.services.gnupg.home, 'bench-passphrase');
  await writeFile(path, ctx.services.gnupg.passphrase, { mode: 0o600 });
  return path;
}

export interface BaselineOutput {
  sample: Sample;
  dir: string;
  /** `pg_dump -Fc` at its default compression, before gpg: the output-size reference. */
  dumpBytes: number;
  /** Everything stored in one repository (the .gpg files). */
  storedBytes: number;
  remoteDir: string;
  s3Prefix: string;
}

/**
 * Baseline A, the operations draft as plain commands, one step after another: pg_dump -Fc,
 * pg_dumpall --globals-only, tar of the PDF files, gpg --encrypt of each, upload of the
 * encrypted files to S3 (SSE-KMS) and a copy to the remote host with scp.
 */
export async function runBaselineA(ctx: BenchContext, repetition: number): Promise<BaselineOutput> {
  const { gnupg, s3, sftp } = ctx.services;
  const dir = join(ctx.workDir, `baseline-${repetition}`);
  const remoteDir = join(sftp.rootDir, `baseline-${repetition}`);
  const s3Prefix = `baseline/${repetition}`;
  await mkdir(dir, { recursive: true });
  await mkdir(remoteDir, { recursive: true });
  const knownHosts = join(ctx.workDir, 'known_hosts');
  await writeFile(knownHosts, `[${sftp.host}]:${sftp.port} ${sftp.hostPublicKey}\n`);
  const script = `
cd ${q(dir)}
${q(pgTool(ctx, 'pg_dump'))} -Fc -f db.dump
${q(pgTool(ctx, 'pg_dumpall'))} --globals-only -f globals.sql
tar -cf assets.tar -C ${q(ctx.assetDir)} .
for f in db.dump globals.sql assets.tar; do
  gpg --homedir ${q(gnupg.home)} --batch --yes --trust-model always -r ${q(gnupg.recipient)} -o "$f.gpg" --encrypt "$f"
done
${q(process.execPath)} ${q(join(projectRoot(), 'dist', 'bench', 'upload-s3.js'))} db.dump.gpg globals.sql.gpg assets.tar.gpg
scp -q -B -i ${q(sftp.privateKeyPath)} -P ${sftp.port} -o UserKnownHostsFile=${q(knownHosts)} -o StrictHostKeyChecking=yes \\
  db.dump.gpg globals.sql.gpg assets.tar.gpg ${sftp.user}@${sftp.host}:${q(remoteDir)}/
`;
  const sample = await timeShell(script, {
    ...pgEnv(ctx),
    BENCH_S3_ENDPOINT: s3.endpoint,
    BENCH_S3_BUCKET: BENCH_BUCKET,
    BENCH_S3_PREFIX: s3Prefix,
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
    AWS_REGION: s3.region,
  });
  const size = async (name: string) => (await stat(join(dir, name))).size;
  const storedBytes = (await size('db.dump.gpg')) + (await size('globals.sql.gpg')) + (await size('assets.tar.gpg'));
  return { sample, dir, dumpBytes: await size('db.dump'), storedBytes, remoteDir, s3Prefix };
}

/** The floor: reading the data out of PostgreSQL through pg_dump, and nothing else. */
export async function runFloor(ctx: BenchContext): Promise<Sample> {
  return timeShell(`${q(pgTool(ctx, 'pg_dump'))} -Fc -Z0 --no-sync -f /dev/null`, pgEnv(ctx));
}

export interface BackupOutput {
  sample: Sample;
  result: NightlyBackupResult;
  manifest: Manifest;
}

export interface BaselineBOutput {
  sample: Sample;
  /** The scratch database pg_restore restored into and the directory the PDFs were extracted to: for verifyBaselineB, then dropped. */
  database: string;
  assetDir: string;
  dir: string;
}

/**
 * Baseline B, the seed's restore as plain commands one after another, on the artifacts a
 * NightlyBackup stored in S3: an SDK download of the db and assets objects (bench/download-s3.ts),
 * `gpg --decrypt` of both, `createdb`, `pg_restore -j N`, `tar -x` of the PDF files.
 */
export async function runBaselineB(ctx: BenchContext, manifest: Manifest, repetition: number): Promise<BaselineBOutput> {
  const { gnupg, s3 } = ctx.services;
  const db = manifest.artifacts.db;
  const assets = manifest.artifacts.assets;
  if (!db || !assets) throw new Error(`baseline B needs a backup with db and assets artifacts; ${manifest.id} has ${Object.keys(manifest.artifacts).join(', ')}`);
  const dir = join(ctx.workDir, `baseline-b-${repetition}`);
  const database = 'bench_baseline_b';
  const assetDir = join(dir, 'assets');
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await dropDatabase(ctx, database);
  const passphrase = await passphraseFile(ctx);
  const decrypt = (input: string, output: string) =>
    `gpg --homedir ${q(gnupg.home)} --batch --yes --pinentry-mode loopback --passphrase-file ${q(passphrase)} -o ${output} --decrypt ${input}`;
  const script = `
cd ${q(dir)}
${q(process.execPath)} ${q(join(projectRoot(), 'dist', 'bench', 'download-s3.js'))} ${q(`${BENCH_S3_PREFIX}/${db.key}`)}=db.dump.gpg ${q(`${BENCH_S3_PREFIX}/${assets.key}`)}=assets.tar.gpg
${decrypt('db.dump.gpg', 'db.dump')}
${decrypt('assets.tar.gpg', 'assets.tar')}
${q(pgTool(ctx, 'createdb'))} --template=template0 ${q(database)}
${q(pgTool(ctx, 'pg_restore'))} --exit-on-error --no-owner --jobs=${ctx.restoreJobs} --dbname=${q(database)} db.dump
mkdir assets
tar -xf assets.tar -C assets
`;
  const sample = await timeShell(script, {
    ...pgEnv(ctx, 'postgres'),
    BENCH_S3_ENDPOINT: s3.endpoint,
    BENCH_S3_BUCKET: BENCH_BUCKET,
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
    AWS_REGION: s3.region,
  });
  return { sample, database, assetDir, dir };
}

/**
 * Checks that baseline B restored everything: the database's row counts and money totals equal
 * the source's, the extracted PDF files' count and bytes equal the generated ones. Drops the
 * database and removes the files afterwards.
 */
export async function verifyBaselineB(ctx: BenchContext, output: BaselineBOutput, source: string, assets: { files: number; bytes: number }): Promise<string> {
  try {
    const restored = await dataSummary(ctx, output.database);
    if (restored !== source) throw new Error(`baseline B's restored data ${restored} differs from the source ${source}`);
    const extracted = await countFiles(output.assetDir);
    if (extracted.fileCount !== assets.files || extracted.bytes !== assets.bytes) {
      throw new Error(`baseline B extracted ${extracted.fileCount} files, ${extracted.bytes} bytes; the source has ${assets.files} files, ${assets.bytes} bytes`);
    }
    return `restored from S3: data equal to the source, ${extracted.fileCount} PDF files of ${extracted.bytes} bytes as in the source`;
  } finally {
    await dropDatabase(ctx, output.database);
    await rm(output.dir, { recursive: true, force: true });
  }
}

/** Medians of the S3-overhead measurement (bench/s3-overhead.ts): the product's put and a plain lib-storage upload. */
export interface S3OverheadOutput {
  oursMs: number[];
  plainMs: number[];
}

/**
 * Runs bench/s3-overhead.ts in its own process with the worker's environment (the product's S3
 * repository opened as the worker opens it) on one stored file.
 */
export async function runS3Overhead(
  ctx: BenchContext,
  workerEnv: Record<string, string>,
  file: { path: string; size: number; sha256: string },
  pairs: number,
): Promise<S3OverheadOutput> {
  const { s3 } = ctx.services;
  const { stdout } = await runCommand(
    process.execPath,
    [join(projectRoot(), 'dist', 'bench', 's3-overhead.js'), file.path, String(file.size), file.sha256, String(pairs)],
    {
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        ...workerEnv,
        BENCH_S3_ENDPOINT: s3.endpoint,
        AWS_ACCESS_KEY_ID: s3.accessKeyId,
        AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
        AWS_REGION: s3.region,
      },
    },
  );
  return JSON.parse(stdout.trim().split('\n').pop()!) as S3OverheadOutput;
}

/** NightlyBackup end to end through Temporal: from the start request to the workflow's result. */
export async function runNightlyBackup(ctx: BenchContext, label: string, options: { taskQueue?: string; workerPid?: number; backupDir?: string } = {}): Promise<BackupOutput> {
  // Backup ids have a one-second resolution: never two in the same second.
  await new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 5));
  const backupId = backupIdFor('daily', new Date());
  const { sample, result } = await measureProcess(options.workerPid ?? ctx.workerPid, async () => {
    const handle = await ctx.client.workflow.start('NightlyBackup', {
      taskQueue: options.taskQueue ?? ctx.taskQueue,
      workflowId: `bench-${label}-${backupId}`,
      args: [{ kind: 'daily', backupId }],
    });
    return (await handle.result()) as NightlyBackupResult;
  });
  const manifest = parseManifest(await readFile(join(options.backupDir ?? ctx.backupDir, result.manifestKey)), result.manifestKey);
  return { sample, result, manifest };
}

export async function createDatabase(ctx: BenchContext, name: string): Promise<void> {
  await runCommand(pgTool(ctx, 'createdb'), ['--template=template0', name], { env: pgEnv(ctx, 'postgres') });
}

export async function dropDatabase(ctx: BenchContext, name: string): Promise<void> {
  await runCommand(pgTool(ctx, 'dropdb'), ['--if-exists', '--force', name], { env: pgEnv(ctx, 'postgres') });
}

/** Decrypts an OpenPGP file with the benchmark keyring (gpg, as an operator would). */
export async function gpgDecrypt(ctx: BenchContext, encrypted: string, plain: string): Promise<void> {
  await runCommand('gpg', [
    '--homedir', ctx.services.gnupg.home, '--batch', '--yes', '--pinentry-mode', 'loopback',
    '--passphrase-file', await passphraseFile(ctx), '-o', plain, '--decrypt', encrypted,
  ]);
}

/** Plain `createdb` + `pg_restore -j N` of a dump file into a new database (left for the caller to check and drop). */
export async function runPlainRestore(ctx: BenchContext, dumpFile: string, database: string): Promise<Sample> {
  await dropDatabase(ctx, database);
  return timeShell(
    `${q(pgTool(ctx, 'createdb'))} --template=template0 ${q(database)}
${q(pgTool(ctx, 'pg_restore'))} --exit-on-error --no-owner --jobs=${ctx.restoreJobs} --dbname=${q(database)} ${q(dumpFile)}`,
    pgEnv(ctx, 'postgres'),
  );
}

export interface DrillOutput {
  sample: Sample;
  result: RestoreResult;
  report: RestoreReport;
  /** The restoreDatabase activity (createdb + pg_restore into the scratch database). */
  restorePhaseMs: number;
  workflowId: string;
}

/**
 * How long the drill's restoreDatabase activity ran (started to completed, from the history): a
 * drill unpacks its PDF files alongside, so the `restoring-database` phase is no longer
 * pg_restore alone.
 */
async function restoreDatabaseMs(ctx: BenchContext, workflowId: string): Promise<number> {
  const names = new Map<string, string>();
  let startedAt: number | undefined;
  for (const event of (await ctx.client.workflow.getHandle(workflowId).fetchHistory()).events ?? []) {
    const at = eventMs(event.eventTime);
    const scheduled = event.activityTaskScheduledEventAttributes;
    if (scheduled) names.set(String(event.eventId), scheduled.activityType?.name ?? '?');
    const started = event.activityTaskStartedEventAttributes;
    if (started && names.get(String(started.scheduledEventId)) === 'restoreDatabase') startedAt = at;
    const completed = event.activityTaskCompletedEventAttributes;
    if (completed && names.get(String(completed.scheduledEventId)) === 'restoreDatabase' && startedAt !== undefined) return at - startedAt;
  }
  throw new Error(`the drill ${workflowId} has no completed restoreDatabase activity`);
}

/** RestoreDrill (pre-approved by the worker's DRILL_PREAPPROVED) of one backup, read from `repository`. */
export async function runDrill(
  ctx: BenchContext,
  backupId: string,
  repository: string,
  label: string,
  options: { taskQueue?: string; workerPid?: number; backupDir?: string } = {},
): Promise<DrillOutput> {
  const workflowId = `bench-drill-${label}-${backupId}`;
  const { sample, result } = await measureProcess(options.workerPid ?? ctx.workerPid, async () => {
    const handle = await ctx.client.workflow.start('RestoreDrill', {
      taskQueue: options.taskQueue ?? ctx.taskQueue,
      workflowId,
      args: [{ backupId, repository }],
    });
    return (await handle.result()) as RestoreResult;
  });
  const localReport = result.reportKeys.find((key) => key.startsWith('local:') && key.endsWith('.json'));
  if (!localReport) throw new Error(`the drill of ${backupId} stored no local JSON report (keys: ${result.reportKeys.join(', ')})`);
  const report = JSON.parse(await readFile(join(options.backupDir ?? ctx.backupDir, localReport.slice('local:'.length)), 'utf8')) as RestoreReport;
  const restorePhaseMs = await restoreDatabaseMs(ctx, workflowId);
  return { sample, result, report, restorePhaseMs, workflowId };
}

/** Row counts and money totals that must survive a dump and restore unchanged. */
export async function dataSummary(ctx: BenchContext, database: string): Promise<string> {
  const pgs = ctx.services.postgres;
  const client = new pg.Client({ host: pgs.host, port: pgs.port, user: pgs.user, password: pgs.password, database });
  await client.connect();
  try {
    const row = (await client.query<Record<string, string>>(`
      SELECT (SELECT count(*) FROM customers) AS customers,
             (SELECT count(*) || '/' || sum(total) FROM invoices) AS invoices,
             (SELECT count(*) || '/' || sum(amount) FROM invoice_lines) AS lines,
             (SELECT count(*) || '/' || sum(length(body)) FROM invoice_documents) AS documents`)).rows[0]!;
    return JSON.stringify(row);
  } finally {
    await client.end();
  }
}

/**
 * Checks that baseline A's copies are usable: the remote (scp) copy of the dump decrypts and
 * restores to the source's data, and S3 holds each file at its local size.
 */
export async function verifyBaseline(ctx: BenchContext, output: BaselineOutput, source: string): Promise<string> {
  const plain = join(ctx.workDir, 'baseline-verify.dump');
  await gpgDecrypt(ctx, join(output.remoteDir, 'db.dump.gpg'), plain);
  const database = 'bench_verify_baseline';
  try {
    await runPlainRestore(ctx, plain, database);
    const restored = await dataSummary(ctx, database);
    if (restored !== source) throw new Error(`baseline A's restored data ${restored} differs from the source ${source}`);
  } finally {
    await rm(plain, { force: true });
    await dropDatabase(ctx, database);
  }
  const s3 = testS3Client(ctx.services.s3);
  try {
    for (const name of ['db.dump.gpg', 'globals.sql.gpg', 'assets.tar.gpg']) {
      const head = await s3.send(new HeadObjectCommand({ Bucket: BENCH_BUCKET, Key: `${output.s3Prefix}/${name}` }));
      const local = (await stat(join(output.dir, name))).size;
      if (head.ContentLength !== local) throw new Error(`baseline A's S3 copy of ${name} has ${head.ContentLength} bytes, the local file ${local}`);
    }
  } finally {
    s3.destroy();
  }
  return 'restored from the scp copy: data equal to the source; S3 copies complete';
}

/** Frees what a repetition stored (moto keeps objects in memory; the disks fill): between repetitions. */
export async function clearStores(ctx: BenchContext, more: { backupDirs?: string[]; remoteDirs?: string[] } = {}): Promise<void> {
  const response = await fetch(`${ctx.services.s3.endpoint}/moto-api/reset`, { method: 'POST' });
  if (!response.ok) throw new Error(`moto reset answered ${response.status}`);
  await createTestBucket(ctx.services.s3, BENCH_BUCKET);
  for (const dir of [ctx.backupDir, ...(more.backupDirs ?? [])]) {
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
  }
  await rm(ctx.services.sftp.rootDir, { recursive: true, force: true });
  for (const dir of [ctx.remoteDir, ...(more.remoteDirs ?? [])]) await mkdir(dir, { recursive: true });
  for (const entry of await readdir(ctx.workDir)) {
    if (entry.startsWith('baseline-')) await rm(join(ctx.workDir, entry), { recursive: true, force: true });
  }
}

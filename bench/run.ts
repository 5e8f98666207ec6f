#!/usr/bin/env node
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { Client, Connection } from '@temporalio/client';
import pg from 'pg';
import { runCommand, type ServiceProcess } from '../src/dev/processes.js';
import { temporalCliVersion } from '../src/dev/temporal-server.js';
import { loadToolPaths, projectRoot } from '../src/tools.js';
import { generateAssets, generateDatabase } from './dataset.js';
import { ensureGnuTime, median, residentBytes, type Sample } from './measure.js';
import {
  clearStores,
  createDatabase,
  dataSummary,
  dropDatabase,
  gpgDecrypt,
  runBaselineA,
  runBaselineB,
  runDrill,
  runFloor,
  runNightlyBackup,
  runPlainRestore,
  runS3Overhead,
  verifyBaseline,
  verifyBaselineB,
  type BaselineOutput,
  type BackupOutput,
  type BenchContext,
  type DrillOutput,
} from './pipelines.js';
import { activityProfile } from './profile.js';
import { describeMachine, renderMarkdown, type BenchResults, type PipelineName } from './report.js';
import { BENCH_BUCKET, BENCH_S3_PREFIX, startBenchServices, type BenchServices } from './services.js';
import { startWorker } from './worker-process.js';

/**
 * `npm run bench [-- --scale 5] [-- --quick]`: generates the ERP-like dataset, then runs, side by
 * side on the same data and repeated, baseline A (the draft's plain commands), the floor
 * (pg_dump -Z0 to /dev/null), NightlyBackup through Temporal (to local + S3 + SFTP, and to
 * local + SFTP only), the S3-overhead comparison, a plain pg_restore, baseline B (the seed's
 * restore commands on the stored artifacts) and a RestoreDrill; writes the medians to
 * BENCHMARKS.md (or --output) and all numbers as JSON.
 */
interface Options {
  quick: boolean;
  scale: number;
  assetMb: number;
  repeat: number;
  dir?: string;
  output?: string;
  json?: string;
  keep: boolean;
  s3PartMb?: number;
  workerNodeOptions?: string;
}

const DATABASE = 'erp4_bench';
const EMPTY_DATABASE = 'erp4_bench_empty';

function positive(name: string) {
  return (value: string): number => {
    const number = Number(value);
    if (!Number.isFinite(number) || number <= 0) throw new InvalidArgumentError(`${name} must be a positive number, got ${JSON.stringify(value)}`);
    return number;
  };
}

function parseOptions(argv: string[]): Options {
  const program = new Command('bench')
    .description('Benchmark NightlyBackup and RestoreDrill against the plain tools they replace')
    .option('--quick', 'a few MB, one repetition: checks that every pipeline works (CI)', false)
    .option('--scale <GB>', 'database size on disk in GB', positive('--scale'), 1)
    .option('--asset-mb <MB>', 'size of the PDF-like files in MB', positive('--asset-mb'), 500)
    .option('--repeat <n>', 'repetitions (the median is reported)', positive('--repeat'), 3)
    .option('--dir <path>', 'work directory (default: a new one under the temp dir)')
    .option('--output <file>', 'Markdown report to write (default: BENCHMARKS.md, not with --quick)')
    .option('--json <file>', 'all measurements as JSON')
    .option('--keep', 'keep the work directory', false)
    .option('--s3-part-mb <MiB>', "the worker's S3_PART_SIZE_MB (default: the product's default)", positive('--s3-part-mb'))
    .option('--worker-node-options <flags>', "more NODE_OPTIONS for the worker (default: none; the product's own, src/worker-launch.ts, always apply)")
    .parse(argv, { from: 'user' });
  const options = program.opts<Options>();
  if (options.quick) {
    const given = (name: string) => program.getOptionValueSource(name) === 'cli';
    if (!given('scale')) options.scale = 0.005;
    if (!given('assetMb')) options.assetMb = 2;
    if (!given('repeat')) options.repeat = 1;
  } else if (!options.output) {
    options.output = join(projectRoot(), 'BENCHMARKS.md');
  }
  options.repeat = Math.round(options.repeat);
  return options;
}

const say = (line: string) => process.stdout.write(`[bench] ${line}\n`);

async function versions(services: BenchServices): Promise<Record<string, string>> {
  const tools = loadToolPaths();
  const first = async (command: string, args: string[]) => (await runCommand(command, args)).stdout.split('\n')[0]!.trim();
  return {
    postgresql: services.postgres.serverVersion,
    pg_dump: await first(join(services.postgres.binDir, 'pg_dump'), ['--version']),
    gpg: await first('gpg', ['--version']),
    temporal: await temporalCliVersion(tools.temporalCliPath),
    s3: 'moto_server (in-memory, Python, loopback)',
    sftp: `${services.sftp.version} (loopback)`,
  };
}

/** The worker's environment without the S3 repository (src/config.ts: S3 is enabled by S3_BUCKET and its companions). */
function withoutS3(env: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !name.startsWith('S3_') && !name.startsWith('SSE_')));
}

function productEnv(
  services: BenchServices,
  ctx: { database: string; backupDir: string; remoteDir: string; taskQueue: string; assetDir?: string; s3PartMb?: number; workerNodeOptions?: string },
): Record<string, string> {
  const { postgres, s3, sftp, gnupg, temporal } = services;
  return {
    BACKUP_ENV: 'bench',
    DB_HOST: postgres.host,
    DB_PORT: String(postgres.port),
    DB_USER: postgres.user,
    DB_PASSWORD: postgres.password,
    DB_NAME: ctx.database,
    PG_BIN_DIR: postgres.binDir,
    BACKUP_DIR: ctx.backupDir,
    TEMPORAL_ADDRESS: temporal.address,
    TEMPORAL_NAMESPACE: temporal.namespace,
    TEMPORAL_TASK_QUEUE: ctx.taskQueue,
    ...(ctx.assetDir ? { PDF_PROVIDER: 'local', ASSET_DIR: ctx.assetDir } : { PDF_PROVIDER: 'none' }),
    S3_BUCKET: BENCH_BUCKET,
    S3_PREFIX: BENCH_S3_PREFIX,
    S3_REGION: s3.region,
    S3_ENDPOINT_URL: s3.endpoint,
    ...(ctx.s3PartMb ? { S3_PART_SIZE_MB: String(ctx.s3PartMb) } : {}),
    ...(ctx.workerNodeOptions ? { NODE_OPTIONS: ctx.workerNodeOptions } : {}),
    SSE_KMS_KEY_ID: 'alias/erp4-backup',
    S3_WRITER_ACCESS_KEY_ID: s3.accessKeyId,
    S3_WRITER_SECRET_ACCESS_KEY: s3.secretAccessKey,
    S3_READER_ACCESS_KEY_ID: s3.accessKeyId,
    S3_READER_SECRET_ACCESS_KEY: s3.secretAccessKey,
    REMOTE_HOST: sftp.host,
    REMOTE_PORT: String(sftp.port),
    REMOTE_USER: sftp.user,
    REMOTE_DIR: ctx.remoteDir,
    REMOTE_SSH_KEY: sftp.privateKeyPath,
    REMOTE_HOST_KEY: sftp.hostPublicKey,
    GPG_RECIPIENT: gnupg.recipient,
    GPG_PUBLIC_KEY_FILE: gnupg.publicKeyPath,
    GPG_PRIVATE_KEY_FILE: gnupg.privateKeyPath,
    GPG_PASSPHRASE: gnupg.passphrase,
    DRILL_PREAPPROVED: 'true',
  };
}

async function prepareDatabase(services: BenchServices, options: Options): Promise<BenchResults['dataset']> {
  const { postgres } = services;
  const admin = new pg.Client({ host: postgres.host, port: postgres.port, user: postgres.user, password: postgres.password, database: 'postgres' });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${DATABASE} TEMPLATE template0 ENCODING 'UTF8'`);
    await admin.query(`CREATE DATABASE ${EMPTY_DATABASE} TEMPLATE template0 ENCODING 'UTF8'`);
    // pg_dumpall --globals-only has roles to show, as erp4's cluster does.
    await admin.query(`CREATE ROLE erp4_app LOGIN CONNECTION LIMIT 20; CREATE ROLE erp4_readonly NOLOGIN`);
  } finally {
    await admin.end();
  }
  const client = new pg.Client({ host: postgres.host, port: postgres.port, user: postgres.user, password: postgres.password, database: DATABASE });
  await client.connect();
  let generated;
  try {
    say(`generating the database (${options.scale} GB on disk)`);
    generated = await generateDatabase(client, options.scale * 1e9, say);
  } finally {
    await client.end();
  }
  return { databaseBytes: generated.bytesOnDisk, rows: generated.rows, assetFiles: 0, assetBytes: 0 };
}

async function main(options: Options, command: string): Promise<void> {
  await ensureGnuTime();
  const workDir = options.dir ? resolve(options.dir) : await mkdtemp(join(tmpdir(), 'erp4-bench-'));
  await mkdir(workDir, { recursive: true });
  say(`work dir ${workDir}`);
  const services = await startBenchServices(workDir);
  const workers: ServiceProcess[] = [];
  let connection: Connection | undefined;
  try {
    const dataset = await prepareDatabase(services, options);
    const assetDir = join(workDir, 'assets');
    const assets = await generateAssets(assetDir, options.assetMb * 1e6);
    dataset.assetFiles = assets.files;
    dataset.assetBytes = assets.bytes;
    say(`dataset: database ${(dataset.databaseBytes / 1e6).toFixed(0)} MB, ${assets.files} files ${(assets.bytes / 1e6).toFixed(0)} MB`);

    const backupDir = join(workDir, 'backups');
    const remoteDir = join(services.sftp.rootDir, 'bench');
    await mkdir(remoteDir, { recursive: true });
    const workerEnv = productEnv(services, { database: DATABASE, backupDir, remoteDir, taskQueue: 'bench', assetDir, s3PartMb: options.s3PartMb, workerNodeOptions: options.workerNodeOptions });
    const worker = await startWorker(workerEnv, join(workDir, 'logs', 'worker.log'));
    workers.push(worker);
    const emptyBackupDir = join(workDir, 'backups-empty');
    const emptyWorker = await startWorker(
      productEnv(services, { database: EMPTY_DATABASE, backupDir: emptyBackupDir, remoteDir: join(services.sftp.rootDir, 'bench-empty'), taskQueue: 'bench-empty' }),
      join(workDir, 'logs', 'worker-empty.log'),
    );
    workers.push(emptyWorker);
    // A third worker, the same as the first but without S3: NightlyBackup to local + SFTP only.
    const noS3BackupDir = join(workDir, 'backups-no-s3');
    const noS3RemoteDir = join(services.sftp.rootDir, 'bench-no-s3');
    await mkdir(noS3RemoteDir, { recursive: true });
    const noS3 = { taskQueue: 'bench-no-s3', backupDir: noS3BackupDir };
    const noS3Worker = await startWorker(
      withoutS3(productEnv(services, { database: DATABASE, backupDir: noS3BackupDir, remoteDir: noS3RemoteDir, taskQueue: noS3.taskQueue, assetDir, workerNodeOptions: options.workerNodeOptions })),
      join(workDir, 'logs', 'worker-no-s3.log'),
    );
    workers.push(noS3Worker);
    connection = await Connection.connect({ address: services.temporal.address });
    const client = new Client({ connection, namespace: services.temporal.namespace });
    const ctx: BenchContext = {
      services, workDir, database: DATABASE, assetDir, backupDir, remoteDir,
      taskQueue: 'bench', client, workerPid: worker.pid, restoreJobs: 2,
    };
    const source = await dataSummary(ctx, DATABASE);
    const workerRestingRssBytes = await residentBytes(worker.pid);

    const runs: Record<PipelineName, Sample[]> = {
      baselineA: [], floor: [], nightlyBackup: [], nightlyBackupLocalSftp: [], plainRestore: [], baselineB: [], restoreDrill: [],
    };
    const drillRestorePhaseMs: number[] = [];
    const drillRtoMs: number[] = [];
    const emptyBackupWallMs: number[] = [];
    const emptyDrillRtoMs: number[] = [];
    const s3Overhead: BenchResults['s3Overhead'] = { oursMs: [], plainMs: [] };
    const restorable: Record<string, string> = {};
    let baseline: BaselineOutput | undefined;
    let backup: BackupOutput | undefined;
    let emptyBackupId: string | undefined;
    let noS3Backup: BackupOutput | undefined;
    let drill: DrillOutput | undefined;
    const seconds = (sample: Sample) => `${(sample.wallMs / 1000).toFixed(2)} s`;
    for (let repetition = 1; repetition <= options.repeat; repetition++) {
      if (repetition > 1) await clearStores(ctx, { backupDirs: [noS3BackupDir, emptyBackupDir], remoteDirs: [noS3RemoteDir] });
      say(`repetition ${repetition}/${options.repeat}: baseline A`);
      baseline = await runBaselineA(ctx, repetition);
      runs.baselineA.push(baseline.sample);
      say(`  ${seconds(baseline.sample)}; floor`);
      runs.floor.push(await runFloor(ctx));
      say(`  ${seconds(runs.floor.at(-1)!)}; NightlyBackup (local + S3 + SFTP)`);
      backup = await runNightlyBackup(ctx, `r${repetition}`);
      runs.nightlyBackup.push(backup.sample);
      say(`  ${seconds(backup.sample)}; NightlyBackup (local + SFTP)`);
      noS3Backup = await runNightlyBackup(ctx, `no-s3-r${repetition}`, { ...noS3, workerPid: noS3Worker.pid });
      runs.nightlyBackupLocalSftp.push(noS3Backup.sample);
      say(`  ${seconds(noS3Backup.sample)}; S3 overhead (our put vs plain lib-storage, db artifact)`);

      const dbArtifact = backup.manifest.artifacts.db!;
      const overhead = await runS3Overhead(ctx, workerEnv, { path: join(backupDir, dbArtifact.key), size: dbArtifact.size, sha256: dbArtifact.sha256 }, 2);
      s3Overhead.oursMs.push(...overhead.oursMs);
      s3Overhead.plainMs.push(...overhead.plainMs);
      say(`  ours ${overhead.oursMs.map((ms) => (ms / 1000).toFixed(2)).join(', ')} s, plain ${overhead.plainMs.map((ms) => (ms / 1000).toFixed(2)).join(', ')} s; plain pg_restore of the same dump`);

      const plainDump = join(workDir, 'plain-restore.dump');
      await gpgDecrypt(ctx, join(backupDir, dbArtifact.key), plainDump);
      const plainDatabase = 'bench_plain_restore';
      runs.plainRestore.push(await runPlainRestore(ctx, plainDump, plainDatabase));
      const restored = await dataSummary(ctx, plainDatabase);
      if (restored !== source) throw new Error(`the plain restore's data ${restored} differs from the source ${source}`);
      restorable['plain pg_restore'] = 'restored data equal to the source (row counts and money totals)';
      await dropDatabase(ctx, plainDatabase);
      await rm(plainDump, { force: true });
      say(`  ${seconds(runs.plainRestore.at(-1)!)}; baseline B (S3 download, gpg --decrypt, createdb, pg_restore, tar -x)`);

      const baselineB = await runBaselineB(ctx, backup.manifest, repetition);
      runs.baselineB.push(baselineB.sample);
      restorable['baseline B'] = await verifyBaselineB(ctx, baselineB, source, assets);
      say(`  ${seconds(baselineB.sample)}; RestoreDrill from S3`);

      drill = await runDrill(ctx, backup.result.backupId, 's3', `r${repetition}`);
      if (drill.result.outcome !== 'passed') throw new Error(`the drill of ${backup.result.backupId} ended ${drill.result.outcome}`);
      runs.restoreDrill.push(drill.sample);
      drillRestorePhaseMs.push(drill.restorePhaseMs);
      drillRtoMs.push(drill.result.rtoMs);
      restorable['NightlyBackup'] = `RestoreDrill from S3 passed (${drill.result.checks.length} checks incl. the manifest fingerprint, PDF files restored)`;
      restorable['RestoreDrill'] = 'outcome passed';
      say(`  ${seconds(drill.sample)} (RTO ${(drill.result.rtoMs / 1000).toFixed(2)} s, restore phase ${(drill.restorePhaseMs / 1000).toFixed(2)} s); empty-database NightlyBackup and drill`);

      const emptyOptions = { taskQueue: 'bench-empty', workerPid: emptyWorker.pid, backupDir: emptyBackupDir };
      const empty = await runNightlyBackup(ctx, `empty-r${repetition}`, emptyOptions);
      emptyBackupId = empty.result.backupId;
      emptyBackupWallMs.push(empty.sample.wallMs);
      const emptyDrill = await runDrill(ctx, empty.result.backupId, 's3', `empty-r${repetition}`, emptyOptions);
      if (emptyDrill.result.outcome !== 'passed') throw new Error(`the drill of the empty database's ${empty.result.backupId} ended ${emptyDrill.result.outcome}`);
      emptyDrillRtoMs.push(emptyDrill.result.rtoMs);
      say(`  backup ${seconds(empty.sample)}, drill RTO ${(emptyDrill.result.rtoMs / 1000).toFixed(2)} s`);
    }
    restorable['baseline A'] = await verifyBaseline(ctx, baseline!, source);
    restorable['floor'] = 'pg_dump exited 0 (it writes to /dev/null: nothing to restore)';
    restorable['empty-database NightlyBackup'] = 'completed with its manifest in every repository; a RestoreDrill of it from S3 passed';
    say('RestoreDrill of the last local + SFTP backup, from SFTP');
    const noS3Drill = await runDrill(ctx, noS3Backup!.result.backupId, 'sftp', 'no-s3', { ...noS3, workerPid: noS3Worker.pid });
    if (noS3Drill.result.outcome !== 'passed') throw new Error(`the drill of the local + SFTP backup ${noS3Backup!.result.backupId} ended ${noS3Drill.result.outcome}`);
    restorable['NightlyBackup (local + SFTP)'] = `RestoreDrill from SFTP passed (${noS3Drill.result.checks.length} checks incl. the manifest fingerprint, PDF files restored)`;

    const results: BenchResults = {
      command,
      startedAt: new Date().toISOString(),
      machine: describeMachine(await versions(services)),
      repetitions: options.repeat,
      dataset: { databaseBytes: dataset.databaseBytes, rows: dataset.rows, assetFiles: dataset.assetFiles, assetBytes: dataset.assetBytes },
      pipelines: Object.fromEntries(Object.entries(runs).map(([name, samples]) => [name, { median: median(samples), runs: samples }])) as BenchResults['pipelines'],
      sizes: {
        pgDumpDefaultBytes: baseline!.dumpBytes,
        baselineStoredBytes: baseline!.storedBytes,
        oursDbBytes: backup!.manifest.artifacts.db!.size,
        oursStoredBytes: backup!.result.totalBytes,
      },
      restore: { plainJobs: ctx.restoreJobs, drillRestorePhaseMs, drillRtoMs, emptyDrillRtoMs },
      s3Overhead,
      emptyBackupWallMs,
      workerRestingRssBytes,
      restorable,
      profile: await activityProfile(client, `bench-r${options.repeat}-${backup!.result.backupId}`),
      emptyProfile: await activityProfile(client, `bench-empty-r${options.repeat}-${emptyBackupId!}`),
      drillPhases: drill!.report.phases.map((p) => ({ phase: p.phase, durationMs: p.durationMs })),
      drillProfile: await activityProfile(client, drill!.workflowId),
    };
    const markdown = renderMarkdown(results);
    process.stdout.write(`\n${markdown}\n`);
    if (options.json) await writeFile(options.json, JSON.stringify(results, null, 2) + '\n');
    if (options.output) await writeResultsSection(options.output, options.scale, markdown);
  } finally {
    await connection?.close();
    for (const worker of workers) await worker.stop();
    await services.stop();
    if (!options.keep) await rm(workDir, { recursive: true, force: true });
  }
}


/**
 * Puts the run's section between the results markers of its scale in the report (the prose around it,
 * the analysis, stays); a report without markers gets them appended.
 */
async function writeResultsSection(path: string, scale: number, section: string): Promise<void> {
  const RESULTS_START = `<!-- bench:results:${scale}GB:start -->`;
  const RESULTS_END = `<!-- bench:results:${scale}GB:end -->`;
  let text = '';
  try {
    text = await readFile(path, 'utf8');
  } catch {
    text = '# Benchmarks\n\n';
  }
  const block = `${RESULTS_START}\n${section}\n${RESULTS_END}`;
  const start = text.indexOf(RESULTS_START);
  const end = text.indexOf(RESULTS_END);
  text = start >= 0 && end > start ? text.slice(0, start) + block + text.slice(end + RESULTS_END.length) : `${text.trimEnd()}\n\n${block}\n`;
  await writeFile(path, text);
  say(`wrote ${path}`);
}

const argv = process.argv.slice(2);
main(parseOptions(argv), ['npm run bench', ...(argv.length ? ['--', ...argv] : [])].join(' ')).catch((error: unknown) => {
  const causes: string[] = [];
  for (let cause: unknown = error; cause !== undefined; cause = (cause as { cause?: unknown }).cause) {
    causes.push(cause instanceof Error ? cause.message : String(cause));
  }
  process.stderr.write(`bench failed: ${causes.join('\n  caused by: ')}\n`);
  process.exitCode = 1;
});

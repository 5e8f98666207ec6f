/**
 * What each stage of the dump activity costs (issue 16, BENCHMARKS.md's per-phase breakdown):
 * `pg_dump -Fc` at several `--compress` levels alone (to /dev/null), then piped through this
 * process, + OpenPGP encryption (the product's encryptStream), + sha256 (Sha256Meter), + the
 * staging file (stageStream, what activities/dump.ts runs, without the fingerprint scans that
 * overlap it). Generates its own database with bench/dataset.ts in a throwaway PostgreSQL.
 *
 *   npm run build && node dist/bench/dump-stages.js --scale 0.3 [--dir /tmp/x] [--levels default,0,1,6]
 */
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, mkdir, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { program } from 'commander';
import pg from 'pg';
import { stageStream } from '../activities/staging.js';
import { encryptStream, loadRecipientKeys } from '../src/crypto/openpgp.js';
import { startPostgres } from '../src/dev/postgres.js';
import { Sha256Meter } from '../src/storage/hash.js';
import { loadToolPaths } from '../src/tools.js';
import { createTestKeyring, stopGpgAgent } from '../test/helpers/gpg.js';
import { generateDatabase } from './dataset.js';

const DATABASE = 'erp4_stages';

interface Row {
  level: string;
  stage: string;
  wallMs: number;
  /** CPU of this process (encryption, hashing, piping), not pg_dump's. */
  nodeCpuMs: number;
  bytes: number;
}

function counter(): { sink: Writable; bytes: () => number } {
  let bytes = 0;
  return {
    sink: new Writable({
      write(chunk: Buffer, _encoding, callback) {
        bytes += chunk.length;
        callback();
      },
    }),
    bytes: () => bytes,
  };
}

async function main(): Promise<void> {
  program
    .option('--scale <GB>', 'database size on disk in GB', Number, 0.3)
    .option('--dir <path>', 'work directory (default: a new one under the temp dir)')
    .option('--levels <list>', 'pg_dump --compress levels ("default" = no option)', 'default,0,1,6');
  program.parse();
  const options = program.opts<{ scale: number; dir?: string; levels: string }>();
  const workDir = options.dir ?? (await mkdtemp(join(tmpdir(), 'erp4-dump-stages-')));
  await mkdir(join(workDir, 'logs'), { recursive: true });
  // The PostgreSQL server runs as the `postgres` OS user and must reach its directory.
  await chmod(workDir, 0o755);
  const tools = loadToolPaths();
  const postgres = await startPostgres({ dir: join(workDir, 'postgres'), binDir: tools.pgBinDir, logPath: join(workDir, 'logs', 'postgres.log') });
  const keyring = await createTestKeyring(workDir);
  try {
    const admin = new pg.Client({ host: postgres.host, port: postgres.port, user: postgres.user, password: postgres.password, database: 'postgres' });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${DATABASE} TEMPLATE template0 ENCODING 'UTF8'`);
    await admin.end();
    const client = new pg.Client({ host: postgres.host, port: postgres.port, user: postgres.user, password: postgres.password, database: DATABASE });
    await client.connect();
    const generated = await generateDatabase(client, options.scale * 1e9, (line) => console.error(line));
    await client.query('CHECKPOINT');
    await client.end();
    console.error(`database: ${(generated.bytesOnDisk / 1e6).toFixed(0)} MB on disk`);
    const keys = await loadRecipientKeys(keyring.publicKeyPath, keyring.recipient);
    const env = { ...process.env, PGHOST: postgres.host, PGPORT: String(postgres.port), PGUSER: postgres.user, PGPASSWORD: postgres.password };
    const pgDumpArgs = (level: string) => ['--format=custom', ...(level === 'default' ? [] : [`--compress=${level}`]), '--no-password', DATABASE];

    const measure = async (level: string, stage: string, run: () => Promise<number>): Promise<Row> => {
      const cpu = process.cpuUsage();
      const started = performance.now();
      const bytes = await run();
      const wallMs = performance.now() - started;
      const used = process.cpuUsage(cpu);
      const row = { level, stage, wallMs, nodeCpuMs: (used.user + used.system) / 1000, bytes };
      console.error(JSON.stringify(row));
      return row;
    };
    const dumpTo = async (level: string, consume: (stdout: Readable) => Promise<number>): Promise<number> => {
      const child = spawn(join(postgres.binDir, 'pg_dump'), pgDumpArgs(level), { env, stdio: ['ignore', 'pipe', 'inherit'] });
      const exited = new Promise<void>((resolve, reject) => child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`pg_dump exited ${code}`)))));
      const [bytes] = await Promise.all([consume(child.stdout), exited]);
      return bytes;
    };
    const toDevNull = async (level: string): Promise<number> => {
      const devNull = await open('/dev/null', 'w');
      try {
        const child = spawn(join(postgres.binDir, 'pg_dump'), pgDumpArgs(level), { env, stdio: ['ignore', devNull.fd, 'inherit'] });
        await new Promise<void>((resolve, reject) => child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`pg_dump exited ${code}`)))));
      } finally {
        await devNull.close();
      }
      return 0;
    };

    const rows: Row[] = [];
    for (const level of options.levels.split(',')) {
      rows.push(await measure(level, 'pg_dump > /dev/null', () => toDevNull(level)));
      rows.push(
        await measure(level, 'piped through node', () =>
          dumpTo(level, async (stdout) => {
            const c = counter();
            await pipeline(stdout, c.sink);
            return c.bytes();
          }),
        ),
      );
      rows.push(
        await measure(level, '+ OpenPGP', () =>
          dumpTo(level, async (stdout) => {
            const c = counter();
            await pipeline(await encryptStream(stdout, keys), c.sink);
            return c.bytes();
          }),
        ),
      );
      rows.push(
        await measure(level, '+ OpenPGP + sha256', () =>
          dumpTo(level, async (stdout) => {
            const c = counter();
            await pipeline(await encryptStream(stdout, keys), new Sha256Meter(), c.sink);
            return c.bytes();
          }),
        ),
      );
      const stagingPath = join(workDir, 'staging', `db-${level}.dump.gpg`);
      rows.push(
        await measure(level, '+ OpenPGP + sha256 + staging file (stageStream)', () =>
          dumpTo(level, async (stdout) => (await stageStream(stdout, stagingPath, { encrypt: (plain) => encryptStream(plain, keys) })).size),
        ),
      );
      await rm(stagingPath);
    }
    const sizeOf = (level: string) => rows.find((r) => r.level === level && r.stage === 'piped through node')!.bytes;
    const defaultSize = rows.some((r) => r.level === 'default') ? sizeOf('default') : undefined;
    console.log(`database ${(generated.bytesOnDisk / 1e6).toFixed(0)} MB on disk; pg_dump ${postgres.serverVersion}\n`);
    console.log('| --compress | stage | wall s | node CPU s | bytes (MB) | / -Fc default |');
    console.log('|---|---|---|---|---|---|');
    for (const r of rows) {
      const ratio = defaultSize && r.bytes ? (r.bytes / defaultSize).toFixed(3) : '';
      console.log(`| ${r.level} | ${r.stage} | ${(r.wallMs / 1000).toFixed(2)} | ${(r.nodeCpuMs / 1000).toFixed(2)} | ${r.bytes ? (r.bytes / 1e6).toFixed(1) : ''} | ${ratio} |`);
    }
  } finally {
    await postgres.stop();
    await stopGpgAgent(keyring.home);
    if (!options.dir) await rm(workDir, { recursive: true, force: true });
  }
}

await main();

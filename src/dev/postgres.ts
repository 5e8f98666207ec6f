import { randomBytes } from 'node:crypto';
import { chmod, chown, copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { projectRoot } from '../tools.js';
import { freePort, runCommand, serviceError, spawnService, waitUntilReady, type ServiceProcess } from './processes.js';

// Found from the project root, so the built demo (dist/src/dev) finds it as the tests (src/dev) do.
export const SAMPLE_ERP_SQL = join(projectRoot(), 'src', 'dev', 'sample-erp.sql');

export interface PostgresCluster {
  host: string;
  port: number;
  /** Superuser, authenticated with scram-sha-256 over TCP and the unix socket. */
  user: string;
  password: string;
  binDir: string;
  /** e.g. "15.15" */
  serverVersion: string;
  dataDir: string;
  socketDir: string;
  process: ServiceProcess;
  stop(): Promise<void>;
}

export interface StartPostgresOptions {
  /** An empty (or new) directory for this cluster; its parents must be traversable by the `postgres` OS user. */
  dir: string;
  binDir: string;
  logPath: string;
  /** Defaults to a free port. */
  port?: number;
  /** ssl=on with this certificate and key; `caFile` (ssl_ca_file) lets pg_hba demand client certificates. */
  ssl?: { certFile: string; keyFile: string; caFile?: string };
  /** pg_hba.conf lines placed before initdb's own (the first matching line wins). */
  hbaLines?: readonly string[];
}

interface OsUser {
  uid: number;
  gid: number;
}

/** PostgreSQL refuses to run as root: when we are root, it runs as the `postgres` OS user. */
async function serverOsUser(): Promise<OsUser | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const uid = Number((await runCommand('id', ['-u', 'postgres'])).stdout.trim());
    const gid = Number((await runCommand('id', ['-g', 'postgres'])).stdout.trim());
    return { uid, gid };
  } catch (error) {
    throw new Error(
      `running as root, PostgreSQL needs the OS user "postgres" (the postgresql-15 package creates it): ${(error as Error).message}`,
    );
  }
}

function serverEnv(): NodeJS.ProcessEnv {
  // A minimal, predictable environment: the server must not pick up the caller's PG* settings.
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8', TZ: 'UTC' };
}

/** Creates a fresh cluster with `initdb` and starts it on 127.0.0.1. */
export async function startPostgres(options: StartPostgresOptions): Promise<PostgresCluster> {
  const osUser = await serverOsUser();
  const dataDir = join(options.dir, 'data');
  const socketDir = join(options.dir, 'socket');
  const passwordFile = join(options.dir, 'superuser-password');
  const user = 'postgres';
  const password = randomBytes(18).toString('base64url');
  await mkdir(socketDir, { recursive: true });
  // initdb takes the password from a file (never argv); the file is gone right after.
  await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
  if (osUser) {
    for (const path of [options.dir, socketDir, passwordFile]) await chown(path, osUser.uid, osUser.gid);
  }
  try {
    await runCommand(
      join(options.binDir, 'initdb'),
      ['-D', dataDir, '-U', user, '-A', 'scram-sha-256', `--pwfile=${passwordFile}`, '-E', 'UTF8',
        '--locale=C.UTF-8', '--no-sync', '--no-instructions'],
      { env: serverEnv(), uid: osUser?.uid, gid: osUser?.gid, cwd: options.dir },
    );
  } catch (error) {
    throw new Error(`initdb into ${dataDir} failed: ${(error as Error).message}`);
  } finally {
    await rm(passwordFile, { force: true });
  }
  const sslArgs: string[] = [];
  if (options.ssl) {
    // The server refuses a key others can read: copies owned by the server's OS user, mode 0600.
    const files = { ssl_cert_file: options.ssl.certFile, ssl_key_file: options.ssl.keyFile, ssl_ca_file: options.ssl.caFile };
    sslArgs.push('-c', 'ssl=on');
    for (const [setting, source] of Object.entries(files)) {
      if (source === undefined) continue;
      const copy = join(dataDir, `${setting}.pem`);
      await copyFile(source, copy);
      if (osUser) await chown(copy, osUser.uid, osUser.gid);
      await chmod(copy, 0o600);
      sslArgs.push('-c', `${setting}=${copy}`);
    }
  }
  if (options.hbaLines?.length) {
    const hba = join(dataDir, 'pg_hba.conf');
    await writeFile(hba, `${options.hbaLines.join('\n')}\n${await readFile(hba, 'utf8')}`);
  }
  const host = '127.0.0.1';
  const port = options.port ?? (await freePort());
  const server = await spawnService({
    name: 'postgres',
    command: join(options.binDir, 'postgres'),
    args: [
      '-D', dataDir,
      '-c', `listen_addresses=${host}`,
      '-c', `port=${port}`,
      '-c', `unix_socket_directories=${socketDir}`,
      // A throwaway test cluster: durability buys nothing, speed does.
      '-c', 'fsync=off',
      '-c', 'synchronous_commit=off',
      '-c', 'full_page_writes=off',
      '-c', 'max_connections=200',
      ...sslArgs,
    ],
    logPath: options.logPath,
    env: serverEnv(),
    uid: osUser?.uid,
    gid: osUser?.gid,
    cwd: options.dir,
    // SIGINT = "fast shutdown": ends sessions and stops at once.
    stopSignal: 'SIGINT',
  });
  try {
    const serverVersion = await waitUntilReady(
      server,
      async () => {
        // TLS when the server has it, so pg_hba lines that refuse plaintext do not refuse this check.
        const ssl = options.ssl ? { rejectUnauthorized: false } : false;
        const client = new pg.Client({ host, port, user, password, database: 'postgres', connectionTimeoutMillis: 3_000, ssl });
        await client.connect();
        try {
          const result = await client.query<{ server_version: string }>('SHOW server_version');
          return /^\d+(\.\d+)?/.exec(result.rows[0]?.server_version ?? '')?.[0];
        } finally {
          await client.end();
        }
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    return {
      host, port, user, password, serverVersion, dataDir, socketDir,
      binDir: options.binDir,
      process: server,
      stop: () => server.stop(),
    };
  } catch (error) {
    await server.stop();
    throw error;
  }
}

/** Creates database `name` and loads test/fixtures/sample-erp.sql into it with psql. */
export async function seedSampleDatabase(
  cluster: Pick<PostgresCluster, 'host' | 'port' | 'user' | 'password' | 'binDir'>,
  name = 'erp4_sample',
): Promise<void> {
  const admin = new pg.Client({
    host: cluster.host, port: cluster.port, user: cluster.user, password: cluster.password, database: 'postgres',
  });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  } finally {
    await admin.end();
  }
  try {
    await runCommand(
      join(cluster.binDir, 'psql'),
      ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', cluster.host, '-p', String(cluster.port), '-U', cluster.user,
        '-d', name, '-f', SAMPLE_ERP_SQL],
      { env: { ...process.env, PGPASSWORD: cluster.password, PGCONNECT_TIMEOUT: '10' } },
    );
  } catch (error) {
    throw new Error(`could not load ${SAMPLE_ERP_SQL} into ${name}: ${(error as Error).message}`);
  }
}

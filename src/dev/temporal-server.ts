import { Connection } from '@temporalio/client';
import { BACKUP_SEARCH_ATTRIBUTES } from '../temporal/search-attributes.js';
import { freePort, runCommand, spawnService, waitForPort, waitUntilReady, type ServiceProcess } from './processes.js';


export interface TemporalDevServer {
  address: string;
  namespace: string;
  port: number;
  /** The Web UI's port (0 when started headless). */
  uiPort: number;
  dbFile: string;
  cliPath: string;
  process: ServiceProcess;
  stop(): Promise<void>;
}

export interface StartTemporalOptions {
  cliPath: string;
  /** SQLite file holding all state: restarting on the same file continues where it stopped. */
  dbFile: string;
  logPath: string;
  /** Defaults to a free port; pass the old port to restart a server at the same address. */
  port?: number;
  /** Defaults to a free port; ignored when headless. */
  uiPort?: number;
  /** No Web UI (slightly lighter); the global setup keeps the UI for debugging runs. */
  headless?: boolean;
}

/** "temporal version 1.9.1 (Server 1.32.0, UI 2.54.1)" */
export async function temporalCliVersion(cliPath: string): Promise<string> {
  return (await runCommand(cliPath, ['--version'])).stdout.trim();
}

/**
 * Starts `temporal server start-dev` on 127.0.0.1 and waits until the `default` namespace
 * answers with the backup search attributes registered.
 */
export async function startTemporalDevServer(options: StartTemporalOptions): Promise<TemporalDevServer> {
  const host = '127.0.0.1';
  const namespace = 'default';
  const port = options.port ?? (await freePort());
  const uiPort = options.headless ? 0 : (options.uiPort ?? (await freePort()));
  const args = [
    'server', 'start-dev',
    '--db-filename', options.dbFile,
    '--ip', host,
    '--port', String(port),
    '--log-level', 'warn',
    ...(options.headless ? ['--headless'] : ['--ui-port', String(uiPort)]),
    // The product's search attributes (the worker would add them too; here they exist from the start).
    ...BACKUP_SEARCH_ATTRIBUTES.flatMap((name) => ['--search-attribute', `${name}=Keyword`]),
  ];
  const server = await spawnService({
    name: 'temporal',
    command: options.cliPath,
    args,
    logPath: options.logPath,
  });
  const address = `${host}:${port}`;
  try {
    await waitForPort(server, host, port, 60_000);
    const connection = await Connection.connect({ address, connectTimeout: 10_000 });
    try {
      await waitUntilReady(
        server,
        async () => {
          await connection.workflowService.describeNamespace({ namespace });
          const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
          const missing = BACKUP_SEARCH_ATTRIBUTES.filter((name) => !(name in customAttributes));
          return missing.length === 0 ? true : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 200 },
      );
    } finally {
      await connection.close();
    }
  } catch (error) {
    await server.stop();
    throw error;
  }
  return {
    address, namespace, port, uiPort,
    dbFile: options.dbFile,
    cliPath: options.cliPath,
    process: server,
    stop: () => server.stop(),
  };
}

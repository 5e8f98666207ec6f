import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where the external programs the project runs live, as scripts/provision.sh found them. */
export interface ToolPaths {
  /** The `temporal` CLI (dev server). */
  temporalCliPath: string;
  /** `moto_server`, the S3-compatible server used by tests and the demo. */
  motoServerPath: string;
  /** Directory with postgres, initdb, pg_dump, pg_restore, pg_dumpall, psql (PostgreSQL 15). */
  pgBinDir: string;
  /** Absolute path of `sshd`. */
  sshdPath: string;
}

const PROVISION_HINT = 'run scripts/provision.sh (npm test and npm run demo run it for you)';

/** The project root: the nearest directory above this module that holds package.json. */
export function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find the project root above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
  return dir;
}

export function toolsEnvPath(root = projectRoot()): string {
  return join(root, '.tools', 'tools.env');
}

/** Parses KEY=VALUE lines (blank lines and # comments ignored). */
export function parseToolsEnv(text: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const [index, rawLine] of text.split('\n').entries()) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) continue;
    const separator = line.indexOf('=');
    if (separator <= 0) throw new Error(`line ${index + 1} is not KEY=VALUE: ${JSON.stringify(rawLine)}`);
    values.set(line.slice(0, separator), line.slice(separator + 1));
  }
  return values;
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function requireExecutable(file: string, key: string, envFile: string): string {
  if (!isExecutable(file)) throw new Error(`${key}=${file} in ${envFile} is not an executable file; ${PROVISION_HINT}`);
  return file;
}

/** Reads `.tools/tools.env`, written by scripts/provision.sh, and checks every path in it. */
export function loadToolPaths(envFile = toolsEnvPath()): ToolPaths {
  let text: string;
  try {
    text = readFileSync(envFile, 'utf8');
  } catch {
    throw new Error(`${envFile} is missing; ${PROVISION_HINT}`);
  }
  let values: Map<string, string>;
  try {
    values = parseToolsEnv(text);
  } catch (error) {
    throw new Error(`${envFile}: ${(error as Error).message}; ${PROVISION_HINT}`);
  }
  const required = (key: string): string => {
    const value = values.get(key);
    if (!value) throw new Error(`${envFile} has no ${key}; ${PROVISION_HINT}`);
    return resolve(value);
  };
  const pgBinDir = required('PG_BIN_DIR');
  for (const program of ['postgres', 'initdb', 'pg_dump', 'pg_restore', 'pg_dumpall', 'psql']) {
    if (!isExecutable(join(pgBinDir, program))) {
      throw new Error(`PG_BIN_DIR=${pgBinDir} in ${envFile} has no executable ${program}; ${PROVISION_HINT}`);
    }
  }
  return {
    temporalCliPath: requireExecutable(required('TEMPORAL_CLI_PATH'), 'TEMPORAL_CLI_PATH', envFile),
    motoServerPath: requireExecutable(required('MOTO_SERVER_PATH'), 'MOTO_SERVER_PATH', envFile),
    pgBinDir,
    sshdPath: requireExecutable(required('SSHD_PATH'), 'SSHD_PATH', envFile),
  };
}

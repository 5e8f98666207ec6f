import { access, constants, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { runTool, ToolError } from '../child-process.js';

export type PgTool = 'pg_dump' | 'pg_dumpall' | 'pg_restore' | 'psql';

export const PG_INSTALL_HINT =
  'install the PostgreSQL client tools of the server\'s major version (Debian/Ubuntu: apt-get install postgresql-client-15) or set PG_BIN_DIR';

/** Where Debian and Ubuntu (and the PostgreSQL project's apt packages) install each major's tools. */
export const DEBIAN_PG_ROOT = '/usr/lib/postgresql';

/**
 * Finds a PostgreSQL client tool: PG_BIN_DIR when configured, else the Debian layout
 * /usr/lib/postgresql/<major>/bin of the server's major version, else of the next newer major
 * installed (pg_dump reads older servers; the Docker image carries 15, 16 and 17), else PATH
 * (whose wrapper scripts may pick another version; checkPgToolVersion refuses an older one).
 */
export async function resolvePgTool(tool: PgTool, options: { binDir?: string; serverMajor?: number; debianRoot?: string }): Promise<string> {
  if (options.binDir) return join(options.binDir, tool);
  if (options.serverMajor) {
    const root = options.debianRoot ?? DEBIAN_PG_ROOT;
    const majors = (await readdir(root).catch(() => [] as string[]))
      .filter((name) => /^\d+$/.test(name) && Number(name) >= options.serverMajor!)
      .map(Number)
      .sort((a, b) => a - b);
    for (const major of majors) {
      const candidate = join(root, String(major), 'bin', tool);
      if (await isExecutable(candidate)) return candidate;
    }
  }
  return tool;
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** `pg_dump (PostgreSQL) 15.18 (Debian ...)` -> `15.18`; refuses a tool older than the server. */
export async function checkPgToolVersion(toolPath: string, serverVersionNum: number): Promise<string> {
  const output = await runTool(toolPath, ['--version'], { installHint: PG_INSTALL_HINT });
  const version = /\(PostgreSQL\) (\d+)(?:\.(\d+))?/.exec(output);
  if (!version?.[1]) throw new ToolError(toolPath, `cannot read the version of ${toolPath}: ${output.trim()}`, true);
  const toolMajor = Number(version[1]);
  const serverMajor = Math.floor(serverVersionNum / 10_000);
  if (toolMajor < serverMajor) {
    throw new ToolError(
      toolPath,
      `${toolPath} is version ${toolMajor} but the server is ${serverMajor}: pg_dump cannot dump a newer server; ${PG_INSTALL_HINT.replace('15', String(serverMajor))}`,
      true,
    );
  }
  return `${version[1]}${version[2] ? `.${version[2]}` : ''}`;
}

import { spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadToolPaths, parseToolsEnv } from '../../src/tools.js';

describe('parseToolsEnv', () => {
  it('reads KEY=VALUE lines, skipping blanks and comments, keeping "=" inside values', () => {
    const values = parseToolsEnv('# written by provision\nA=/x/y\n\nB=/p=q\n');
    expect([...values]).toEqual([
      ['A', '/x/y'],
      ['B', '/p=q'],
    ]);
  });

  it('rejects a line that is not KEY=VALUE, naming the line', () => {
    expect(() => parseToolsEnv('A=/x\nnonsense\n')).toThrow(/line 2 is not KEY=VALUE/);
  });
});

describe('loadToolPaths', () => {
  let dir: string;
  let envFile: string;

  async function executable(name: string): Promise<string> {
    const path = join(dir, name);
    await writeFile(path, '#!/bin/sh\n');
    await chmod(path, 0o755);
    return path;
  }

  async function writeValidEnv(overrides: Record<string, string> = {}): Promise<void> {
    const pgBinDir = join(dir, 'pgbin');
    await mkdir(pgBinDir);
    for (const program of ['postgres', 'initdb', 'pg_dump', 'pg_restore', 'pg_dumpall', 'psql']) {
      await executable(join('pgbin', program));
    }
    const values: Record<string, string> = {
      TEMPORAL_CLI_PATH: await executable('temporal'),
      MOTO_SERVER_PATH: await executable('moto_server'),
      PG_BIN_DIR: pgBinDir,
      SSHD_PATH: await executable('sshd'),
      ...overrides,
    };
    await writeFile(envFile, Object.entries(values).map(([key, value]) => `${key}=${value}\n`).join(''));
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'erp4-tools-'));
    envFile = join(dir, 'tools.env');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('returns the four paths when every program is there', async () => {
    await writeValidEnv();
    expect(loadToolPaths(envFile)).toEqual({
      temporalCliPath: join(dir, 'temporal'),
      motoServerPath: join(dir, 'moto_server'),
      pgBinDir: join(dir, 'pgbin'),
      sshdPath: join(dir, 'sshd'),
    });
  });

  it('tells to run the provisioning script when the file is missing', () => {
    expect(() => loadToolPaths(envFile)).toThrow(/tools\.env is missing; run scripts\/provision\.sh/);
  });

  it('names a missing key', async () => {
    await writeFile(envFile, 'TEMPORAL_CLI_PATH=/bin/sh\n');
    expect(() => loadToolPaths(envFile)).toThrow(/has no PG_BIN_DIR; run scripts\/provision\.sh/);
  });

  it('names the key whose program is not executable', async () => {
    await writeValidEnv({ SSHD_PATH: join(dir, 'no-such-sshd') });
    expect(() => loadToolPaths(envFile)).toThrow(/SSHD_PATH=.*no-such-sshd .* is not an executable file/);
  });

  it('rejects a PG_BIN_DIR without the PostgreSQL programs', async () => {
    await writeValidEnv({ PG_BIN_DIR: dir });
    expect(() => loadToolPaths(envFile)).toThrow(/PG_BIN_DIR=.* in .* has no executable postgres/);
  });
});

describe('scripts/provision.sh --which-postgresql', () => {
  const which = (env: Record<string, string>) =>
    spawnSync('scripts/provision.sh', ['--which-postgresql'], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8' });

  it("takes the distribution's PostgreSQL major (what its postgresql metapackage depends on)", () => {
    const distribution = /Depends: postgresql-(\d+)/.exec(spawnSync('apt-cache', ['depends', 'postgresql'], { encoding: 'utf8' }).stdout)?.[1];
    expect(distribution, 'apt-cache knows the postgresql metapackage').toBeDefined();
    expect(which({}).stdout.trim()).toBe(`postgresql-${distribution} /usr/lib/postgresql/${distribution}/bin`);
  });

  it('takes PG_MAJOR when set, and refuses one that is not a major version, naming it', () => {
    expect(which({ PG_MAJOR: '16' }).stdout.trim()).toBe('postgresql-16 /usr/lib/postgresql/16/bin');
    const refused = which({ PG_MAJOR: 'sixteen' });
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain('PG_MAJOR=sixteen is not a PostgreSQL major version');
  });
});

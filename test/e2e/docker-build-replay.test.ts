import { execFileSync } from 'node:child_process';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { services } from '../helpers/services.js';
import { startWorkerProcess } from '../helpers/worker-process.js';

/**
 * No container engine here: the Dockerfile's build stage is replayed on the host, step by step
 * as written (its COPY lines into a fresh directory, its RUN lines in a shell there), and the
 * result — what the image's final stage copies: the pruned node_modules, dist, package.json —
 * must answer `--version` and start a worker against the dev server.
 */
const root = resolve(import.meta.dirname, '../..');

async function buildStageSteps(): Promise<Array<{ kind: 'COPY' | 'RUN'; args: string }>> {
  const text = (await readFile(join(root, 'Dockerfile'), 'utf8')).replace(/\\\n/g, ' ');
  const stages = text.split(/^FROM /m).slice(1);
  expect(stages[0], 'the first stage is the build stage').toMatch(/AS build/);
  return stages[0]!
    .split('\n')
    .map((line) => /^(COPY|RUN) (.*)$/.exec(line.trim()))
    .filter((match): match is RegExpExecArray => match !== null)
    .map((match) => ({ kind: match[1] as 'COPY' | 'RUN', args: match[2]! }));
}

describe('the Docker image, built by replaying the Dockerfile on the host', () => {
  const s = services();
  let app: string;

  afterAll(async () => {
    if (app) await rm(app, { recursive: true, force: true });
  });

  it('runs the pruned CLI and starts a worker', { timeout: 600_000 }, async () => {
    app = await mkdtemp(join(tmpdir(), 'erp4-image-'));
    const steps = await buildStageSteps();
    expect(steps.map((step) => step.kind)).toContain('RUN');
    for (const step of steps) {
      if (step.kind === 'COPY') {
        // COPY <source>... <dest>: into the directory dest when it ends in / or there are several sources.
        const sources = step.args.split(/\s+/);
        const dest = sources.pop()!;
        const intoDirectory = dest.endsWith('/') || sources.length > 1;
        for (const source of sources) await cp(join(root, source), join(app, dest, intoDirectory ? basename(source) : ''), { recursive: true });
      } else {
        // npm ci from the local cache where it can: the packages are the ones `npm ci` just installed.
        execFileSync('sh', ['-c', step.args], { cwd: app, env: { ...process.env, npm_config_prefer_offline: 'true', npm_config_audit: 'false', npm_config_fund: 'false' }, stdio: 'pipe' });
      }
    }
    const devOnly = ['vitest', 'typescript', '@temporalio/testing'];
    for (const name of devOnly) expect(() => execFileSync(process.execPath, ['-e', `require.resolve('${name}/package.json')`], { cwd: app, stdio: 'pipe' }), name).toThrow();

    const cli = join(app, 'dist', 'src', 'cli.js');
    const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { version: string };
    expect(execFileSync(process.execPath, [cli, '--version'], { encoding: 'utf8' }).trim()).toBe(pkg.version);

    const env = {
      DB_NAME: s.postgres.sampleDb,
      DB_HOST: s.postgres.host,
      DB_PORT: String(s.postgres.port),
      DB_USER: s.postgres.user,
      DB_PASSWORD: s.postgres.password,
      BACKUP_DIR: await mkdtemp(join(tmpdir(), 'erp4-image-backups-')),
      TEMPORAL_ADDRESS: s.temporal.address,
      TEMPORAL_TASK_QUEUE: `image-${process.pid}`,
    };
    const worker = await startWorkerProcess(s, env, `image-worker-${process.pid}`, cli);
    await worker.stop();
  });
});

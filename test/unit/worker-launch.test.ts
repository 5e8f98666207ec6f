import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { missingLaunchSettings, WORKER_MALLOC_ENV, WORKER_NODE_FLAGS } from '../../src/worker-launch.js';

// The worker's memory settings are read when the process starts: each way the product starts a
// worker must carry all of them (src/worker-launch.ts).
const root = path.resolve(import.meta.dirname, '../..');
const read = (file: string) => fs.readFileSync(path.join(root, file), 'utf8');
/** `NAME=value` words (the value may hold `=`) as variables. */
const variables = (words: readonly string[]) => Object.fromEntries(words.filter((w) => /^\w+=/.test(w)).map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]));
const expected = [...WORKER_NODE_FLAGS, ...Object.entries(WORKER_MALLOC_ENV).map(([name, value]) => `${name}=${value}`)];

describe("the worker's launch settings", () => {
  it('are set in the Docker image', () => {
    // `ENV a=b c=d` sets both; a later ENV of the same name wins.
    const env = variables([...read('Dockerfile').matchAll(/^ENV (.+)$/gm)].flatMap((m) => m[1]!.trim().split(/\s+/)));
    expect(missingLaunchSettings([], env)).toEqual([]);
  });

  it('are set in the systemd unit', () => {
    const env = Object.fromEntries(
      [...read('deploy/systemd/erp4-backup-worker.service').matchAll(/^Environment=(\w+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!.replace(/^"|"$/g, '')]),
    );
    expect(missingLaunchSettings([], env)).toEqual([]);
  });

  it("are set by `npm run worker`", () => {
    const script = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts.worker!;
    const words = script.split(/\s+/);
    const node = words.indexOf('node');
    expect(node).toBeGreaterThan(-1);
    const env = variables(words.slice(0, node));
    expect(missingLaunchSettings(words.slice(node + 1, words.indexOf('dist/src/cli.js')), env)).toEqual([]);
  });

  it('are missing, by name, when the process was started without them', () => {
    expect(missingLaunchSettings([], {})).toEqual(expected);
    expect(missingLaunchSettings([...WORKER_NODE_FLAGS], { ...WORKER_MALLOC_ENV })).toEqual([]);
    // NODE_OPTIONS counts as much as the command line; another value of a malloc setting does not.
    expect(missingLaunchSettings([], { ...WORKER_MALLOC_ENV, NODE_OPTIONS: `--enable-source-maps ${WORKER_NODE_FLAGS.join(' ')}` })).toEqual([]);
    const [name] = Object.keys(WORKER_MALLOC_ENV);
    expect(missingLaunchSettings([...WORKER_NODE_FLAGS], { ...WORKER_MALLOC_ENV, [name!]: '64' })).toEqual([`${name}=${WORKER_MALLOC_ENV[name!]}`]);
  });
});

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { productEnv, startProduct, type RunningProduct } from '../helpers/product.js';
import { services } from '../helpers/services.js';

const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));

/** The built CLI on a pseudo-terminal (util-linux `script`), as at an operator's terminal: everything it wrote there. */
function onTerminal(args: string[], env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const command = [process.execPath, CLI, ...args].map((word) => `'${word}'`).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qefc', command, '/dev/null'], { env: { PATH: process.env.PATH, HOME: process.env.HOME, TERM: 'dumb', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
  });
}

// Progress of a backup: one updating line on a terminal, plain lines in a pipe.
describe('erp4-backup backup progress', () => {
  const s = services();
  let env: Record<string, string>;
  let product: RunningProduct;

  beforeAll(async () => {
    env = await productEnv(s, 'progress', { assets: true });
    product = await startProduct(s, env);
  });
  afterAll(async () => product?.close());

  it('on a terminal: the progress line is rewritten in place, the phase in colour unless NO_COLOR', async () => {
    const run = await onTerminal(['backup', '--kind', 'daily'], env);
    expect(run.code, run.output).toBe(0);
    expect(run.output).toMatch(/\r\x1b\[2K\[\d+m\d\ds\] \x1b\[36m(dumping|transferring|writing-manifest|completed)\x1b\[39m/);
    expect(run.output).toMatch(/backup \S+-daily complete/);
    // No progress line of its own: every one is rewritten (\r) rather than ended.
    expect(run.output.split(/\r?\n/).filter((line) => /^\[\d+m\d\ds\] /.test(line))).toEqual([]);

    const plain = await onTerminal(['backup', '--kind', 'manual', '--label', 'no colour'], { ...env, NO_COLOR: '1' });
    expect(plain.code, plain.output).toBe(0);
    expect(plain.output).toMatch(/\r\x1b\[2K\[\d+m\d\ds\] (dumping|transferring|writing-manifest|completed)/);
    expect(plain.output).not.toContain('\x1b[36m');
  });

  it('in a pipe: plain lines, no control characters', async () => {
    const run = await runCli(['backup', '--kind', 'daily'], env);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout + run.stderr).not.toMatch(/[\r\x1b]/);
    expect(run.stdout).toMatch(/^\[\d+m\d\ds\] (dumping|transferring|writing-manifest|completed)/m);
  });
});

import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runCommand } from '../../src/dev/processes.js';
import { services } from '../helpers/services.js';

const DEMO = fileURLToPath(new URL('../../dist/src/demo.js', import.meta.url));

// `npm run demo` as the README promises: no configuration at all, it starts its own Temporal
// dev server and PostgreSQL, runs one backup, and says where it went.
describe('npm run demo', () => {
  it('ends with a backup that pg_restore --list reads, the workflow id and the Web UI address', async () => {
    const s = services();
    const demoDir = await mkdtemp(join(tmpdir(), 'erp4-demo-test-'));
    try {
      const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
        const child = spawn(process.execPath, [DEMO, '--exit'], {
          env: { PATH: process.env.PATH, HOME: process.env.HOME, DEMO_DIR: demoDir },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        let err = '';
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
        child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
        child.once('error', reject);
        child.once('close', (exitCode) => resolve({ code: exitCode, stdout: out, stderr: err }));
      });
      expect(code, stdout + stderr).toBe(0);
      const workflowId = /workflow id: (backup-demo-\d{8}T\d{6}Z-daily)/.exec(stdout)?.[1];
      expect(workflowId).toBeDefined();
      expect(stdout).toMatch(new RegExp(`Temporal Web UI: http://127\\.0\\.0\\.1:\\d+/namespaces/default/workflows/${workflowId}`));
      const dump = /^\s+db\s+(\S+\.dump)$/m.exec(stdout)?.[1];
      expect(dump).toBeDefined();
      const list = await runCommand(join(s.postgres.binDir, 'pg_restore'), ['--list', dump!]);
      expect(list.stdout).toContain('TABLE DATA public invoices');
    } finally {
      await rm(demoDir, { recursive: true, force: true });
    }
  }, 180_000);
});

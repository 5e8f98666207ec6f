import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

// `--env-file <path>`: the settings from a file, read by Node's process.loadEnvFile before the command.
describe('erp4-backup --env-file', () => {
  it('reads the settings from the file, before or after the command; a variable already set wins', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'erp4-env-file-'));
    const file = join(dir, 'erp4.env');
    await writeFile(file, `# as .env.example\nBACKUP_ENV="from-file"\nBACKUP_DIR=${join(dir, 'backups')}\nSCHEDULE_WEEKLY_FULL="sun 03:00"\n`);
    for (const args of [['--env-file', file, 'list'], ['list', '--env-file', file]]) {
      const result = await runCli(args, {});
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toContain(`local: 0 complete backup(s) for env from-file (the local repository of host`);
      expect(result.stdout).toContain(join(dir, 'backups'));
    }
    const overridden = await runCli(['list', '--env-file', file], { BACKUP_ENV: 'from-environment' });
    expect(overridden.stdout).toContain('for env from-environment');
    const without = await runCli(['list'], { BACKUP_DIR: join(dir, 'backups') });
    expect(without.stdout).toContain('for env poc');
  });

  it('a file that does not exist stops before the command, naming it', async () => {
    const result = await runCli(['list', '--env-file', '/nonexistent/erp4.env'], {});
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('/nonexistent/erp4.env: not found');
    expect(result.stdout).toBe('');
  });
});

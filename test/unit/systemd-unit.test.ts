import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const UNIT = 'deploy/systemd/erp4-backup-worker.service';
const text = readFileSync(UNIT, 'utf8');
const settings = (key: string) => [...text.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1]!);

describe(UNIT, () => {
  it('is a valid unit for systemd-analyze verify', () => {
    const which = spawnSync('sh', ['-c', 'command -v systemd-analyze'], { encoding: 'utf8' });
    expect(which.status, 'systemd-analyze (Debian package systemd) is on PATH').toBe(0);
    const verify = spawnSync('systemd-analyze', ['verify', UNIT], { encoding: 'utf8' });
    expect(verify.stderr + verify.stdout).toBe('');
    expect(verify.status).toBe(0);
  });

  it('runs the worker as a dedicated user with its settings from an EnvironmentFile, hardened', () => {
    expect(settings('User')).toEqual(['erp4-backup']);
    expect(settings('EnvironmentFile')).toEqual(['/etc/erp4-backup/env']);
    expect(settings('ExecStart')[0]).toMatch(/dist\/src\/cli\.js worker$/);
    expect(settings('KillSignal')).toEqual(['SIGTERM']);
    for (const key of ['NoNewPrivileges', 'ProtectSystem', 'ProtectHome', 'PrivateTmp']) expect(settings(key), key).toHaveLength(1);
    expect(settings('ReadWritePaths')).toEqual(settings('Environment').filter((e) => e.startsWith('BACKUP_DIR=')).map((e) => e.slice('BACKUP_DIR='.length)));
  });
});

import { describe, expect, it } from 'vitest';
import { defaultHostId, HOST_ID, hostOfIdentity, hostTaskQueue, workerIdentity } from '../../src/host.js';

describe('host identity (src/host.ts)', () => {
  it('derives a valid id from any OS host name, distinct per BACKUP_DIR', () => {
    for (const name of ['db-1.example.com', 'ÜBER host', '--weird--', '']) {
      const id = defaultHostId(name, '/var/backups/erp4');
      expect(id, name).toMatch(HOST_ID);
      expect(id).not.toBe(defaultHostId(name, '/var/backups/erp4-b'));
    }
    expect(defaultHostId('db-1.example.com', '/srv/a')).toMatch(/^db-1\.example\.com-[0-9a-f]{8}$/);
  });

  it('names the host queue after the shared one, and finds the host in a worker identity it made', () => {
    expect(hostTaskQueue('erp4-backup', 'db-1-0a1b2c3d')).toBe('erp4-backup/host/db-1-0a1b2c3d');
    expect(hostOfIdentity(workerIdentity(4242, 'db-1-0a1b2c3d'))).toBe('db-1-0a1b2c3d');
    // Other pollers (the CLI, someone else's worker with a free-form identity) are not hosts.
    expect(hostOfIdentity('temporal-cli')).toBeUndefined();
    expect(hostOfIdentity('worker@')).toBeUndefined();
    expect(hostOfIdentity('12@bad host')).toBeUndefined();
  });
});

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES } from '../../src/config.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

// The README is the operators' page: it must not drift from what the product reads.
describe('README', () => {
  it('documents every configuration variable', () => {
    const missing = CONFIG_VARIABLES.filter((name) => !readme.includes(name));
    expect(missing).toEqual([]);
  });

  it('names the commands the CLI offers', () => {
    for (const command of ['worker', 'backup', 'list', 'verify', 'drill', 'approve', 'restore', 'schedules apply', 'prune', 'pin', 'lifecycle apply', 'copy', 'import']) {
      expect(readme, command).toContain(`erp4-backup ${command}`);
    }
  });

  it('names the keys command (key rotation)', () => {
    expect(readme).toContain('erp4-backup keys');
  });
});

import { describe, expect, it } from 'vitest';
import { offsiteMissingSince, type BackupFact, type RepositoryFacts } from '../../src/freshness.js';
import { backupIdFor, type BackupKind } from '../../src/layout.js';

const HOUR = 3_600_000;
const now = Date.parse('2026-12-01T03:00:00Z');

function backup(kind: BackupKind, ageMs: number): BackupFact {
  const at = new Date(now - ageMs);
  return { id: backupIdFor(kind, at), kind, generatedAt: at.toISOString() };
}
const repo = (name: string, backups: BackupFact[]): RepositoryFacts => ({ name, backups, drills: [] });

// The gauge erp4_offsite_missing_since_timestamp_seconds: the alert rule Erp4OffsiteLag takes
// max across workers, so it must only grow as time passes and copies happen.
describe('offsiteMissingSince', () => {
  const oldest = backup('daily', 50 * HOUR);
  const middle = backup('critical', 5 * HOUR);
  const newest = backup('daily', 1 * HOUR);

  it('is the time of the read when the off-site repository lacks nothing', () => {
    expect(offsiteMissingSince(repo('local', [oldest, middle, newest]), repo('s3', [oldest, middle, newest]), now)).toBe(now);
  });

  it('is the generatedAt of the oldest local backup newer than everything off-site', () => {
    expect(offsiteMissingSince(repo('local', [oldest, middle, newest]), repo('sftp', [oldest]), now)).toBe(Date.parse(middle.generatedAt));
    expect(offsiteMissingSince(repo('local', [oldest, middle, newest]), repo('sftp', []), now)).toBe(Date.parse(oldest.generatedAt));
  });

  it('ignores older backups the off-site repository never had (added later, or pruned on another schedule)', () => {
    expect(offsiteMissingSince(repo('local', [oldest, middle, newest]), repo('s3', [middle, newest]), now)).toBe(now);
  });
});

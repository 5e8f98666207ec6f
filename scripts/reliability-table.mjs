#!/usr/bin/env node
// Writes docs/RELIABILITY.md from the results the reliability suite (test/chaos) recorded:
//   node scripts/reliability-table.mjs <results dir> <output file>
// `npm run test:chaos` runs the suite with many trials and then this script.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const [resultsDir, output] = process.argv.slice(2);
if (!resultsDir || !output) {
  console.error('usage: node scripts/reliability-table.mjs <results dir> <output file>');
  process.exit(2);
}
const results = readdirSync(resultsDir)
  .filter((name) => name.endsWith('.json'))
  .sort()
  .map((name) => JSON.parse(readFileSync(join(resultsDir, name), 'utf8')));
if (results.length === 0) {
  console.error(`${resultsDir} holds no results: the suite did not run; ${output} left as it was`);
  process.exit(1);
}

const cell = (text) => String(text).replace(/\|/g, '\\|').replace(/\s+/g, ' ');
const seeds = [...new Set(results.map((r) => r.seed))];
const chaos = results.every((r) => r.chaos);
const total = (key) => results.reduce((sum, r) => sum + r[key], 0);
const failed = results.filter((r) => r.survived < r.trials || r.dataLost > 0);

const lines = [
  '# Reliability',
  '',
  `Produced by \`npm run test:chaos\` on ${new Date().toISOString().slice(0, 10)}${chaos ? '' : ' (CI-sized trial counts)'}: every fault of the`,
  'reliability suite (`test/chaos/`), injected into real processes (the built worker, the Temporal dev',
  'server, PostgreSQL 15, moto, sshd) with the trial counts below. **Survived** counts the trials that',
  'ended as promised: a complete backup that `verify` accepts and nothing else visible, or, for bad',
  'input, a refusal that names the input and writes nothing. **Data lost** counts trials that left a',
  'lost or corrupt backup visible to readers; it must be 0.',
  '',
  '| Fault | Trials | Survived | Data lost | Test |',
  '|---|---:|---:|---:|---|',
  ...results.map((r) => `| ${cell(r.fault)} | ${r.trials} | ${r.survived} | ${r.dataLost} | \`${r.test}\` |`),
  `| **Total** | **${total('trials')}** | **${total('survived')}** | **${total('dataLost')}** | |`,
  '',
  failed.length === 0 ? 'Every trial survived; no data lost.' : `**${failed.length} fault(s) with failed trials:** ${failed.map((r) => r.id).join(', ')}.`,
  '',
  '## Reproduce',
  '',
  '    npm run test:chaos                      # all faults, large trial counts; rewrites this file',
  `    CHAOS_SEED=${seeds[0]} npm run test:chaos   # the same random moments and fault parameters as this run`,
  '    CHAOS_TRIALS=10 npm run test:chaos      # every fault 10 times',
  '    npm test                                # the same files with CI-sized trial counts (no table)',
  '',
  'Random moments (where a SIGKILL lands, where a connection resets) come from a seeded generator;',
  `this run used seed${seeds.length > 1 ? 's' : ''} ${seeds.join(', ')}.`,
  '',
  '## What the trials saw',
  '',
  ...results.map((r) => `- **${cell(r.fault)}**: ${cell(r.notes)}`),
  '',
  '## Covered by other tests',
  '',
  '- Every configuration variable with a bad value, one row each: `test/unit/config.test.ts`.',
  '- An SFTP host presenting another host key (refused, naming REMOTE_HOST; nothing written anywhere):',
  '  `test/workflows/nightly-backup.test.ts`.',
  '- A flipped byte in a stored artifact of each repository, found by `verify`: `test/workflows/nightly-backup.test.ts`.',
  '- Approvals: one person twice, two people of one role, an approver removed while a Restore waits,',
  '  an unsigned drill approval, a Restore without keys of two roles: `test/chaos/approvals.test.ts`,',
  '  `test/workflows/restore.test.ts`; an allowed_signers line for a name not in RESTORE_APPROVERS,',
  '  or that is not a key: `test/unit/config.test.ts`.',
  '- A table held in ACCESS EXCLUSIVE mode by another session (a migration): each dump attempt waits at most',
  '  DB_LOCK_TIMEOUT and names the session holding the lock; the third attempt fails the backup, a lock released',
  '  meanwhile lets a retry complete; a backup id that already has a manifest is refused before anything is',
  '  written: `test/workflows/backup-ids-and-locks.test.ts`.',
  '- A workflow id started again: the CLI refuses it; a second drill run never drops or reuses the first run\'s',
  '  database: `test/workflows/reused-ids.test.ts`.',
  '',
  '## Known limits',
  '',
  '- With a dedicated write-only S3 role (S3_WRITER_*), the backup cannot read back what it wrote: a',
  '  byte corrupted on the way is caught by the server checking the SHA256 checksum sent with every',
  '  request (AWS S3 does; moto, the test server, does not), else by `verify` and by every restore drill,',
  '  which check every artifact against the manifest before using it. The flipped-byte row above runs',
  '  with a read-capable role, which reads a single-part object back and compares the server-computed',
  '  checksum of a multipart one.',
  '',
];
mkdirSync(dirname(output), { recursive: true });
writeFileSync(output, `${lines.join('\n')}`);
console.log(`${output}: ${results.length} faults, ${total('trials')} trials, ${total('dataLost')} with data lost`);
process.exitCode = failed.length === 0 ? 0 : 1;

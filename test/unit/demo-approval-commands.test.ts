import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { approvalCommands, shellWord } from '../../src/dev/demo-drill.js';

/** The words `sh` makes of a command line: what the pasted line really runs. */
function wordsOf(line: string): string[] {
  return execFileSync('sh', ['-c', `printf '%s\\0' ${line}`], { encoding: 'utf8' }).split('\0').slice(0, -1);
}

describe('the approval commands npm run demo prints', () => {
  it('quote every word so the shell passes it unchanged (quotes, spaces, $, JSON)', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ minLength: 1, unit: 'grapheme-ascii' }).filter((w) => !w.includes('\0')), { minLength: 1, maxLength: 4 }), (words) => {
        expect(wordsOf(words.map(shellWord).join(' '))).toEqual(words);
      }),
      { numRuns: 50 },
    );
  });

  it('send approve-restore for the drill as the approver, from anywhere, with the comment intact', () => {
    const { erp4Backup, temporal } = approvalCommands({
      workflowId: 'drill-demo-20261129T192907Z-daily',
      approver: 'oncall',
      comment: "it's checked: $HOME stays",
      temporalAddress: '127.0.0.1:7233',
      namespace: 'erp 4',
      databaseName: 'erp4 sample',
      projectRoot: '/opt/erp4 backup',
      temporalCliPath: '/usr/bin/temporal',
    });
    expect(erp4Backup).toBe(
      "TEMPORAL_ADDRESS=127.0.0.1:7233 TEMPORAL_NAMESPACE='erp 4' DB_NAME='erp4 sample' npm --prefix '/opt/erp4 backup' run cli -- approve drill-demo-20261129T192907Z-daily --as oncall --comment 'it'\\''s checked: $HOME stays'",
    );
    expect(wordsOf(temporal)).toEqual([
      '/usr/bin/temporal',
      ...['workflow', 'signal', '--address', '127.0.0.1:7233', '--namespace', 'erp 4', '--workflow-id', 'drill-demo-20261129T192907Z-daily'],
      ...['--name', 'approve-restore', '--input', '{"approver":"oncall","comment":"it\'s checked: $HOME stays"}'],
    ]);
  });
});

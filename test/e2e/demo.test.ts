import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isPortOpen, runCommand } from '../../src/dev/processes.js';
import { shellWord } from '../../src/dev/demo-drill.js';
import { services } from '../helpers/services.js';

const DEMO = fileURLToPath(new URL('../../dist/src/demo.js', import.meta.url));

/** One `npm run demo` (the built dist/src/demo.js), its output as a user reads it. */
class DemoRun {
  output = '';
  readonly exit: Promise<number | null>;

  constructor(
    readonly child: ChildProcessWithoutNullStreams,
    readonly onTerminal: boolean,
  ) {
    // A pseudo-terminal writes CRLF line ends.
    const collect = (chunk: string) => (this.output += chunk.replace(/\r\n/g, '\n'));
    child.stdout.setEncoding('utf8').on('data', collect);
    child.stderr.setEncoding('utf8').on('data', collect);
    this.exit = new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('close', resolve);
    });
  }

  /** Resolves once the output matches; fails with the output so far when the demo ends or the time is up. */
  async waitFor(pattern: RegExp, timeoutMs = 60_000): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs;
    let ended = false;
    void this.exit.finally(() => (ended = true));
    for (;;) {
      const match = pattern.exec(this.output);
      if (match) return match;
      if (ended || Date.now() > deadline) throw new Error(`the demo's output never matched ${pattern}:\n${this.output}`);
      await sleep(100);
    }
  }

  /** The line the demo printed to approve with erp4-backup, and the one for the Temporal CLI. */
  async approvalCommands(): Promise<{ erp4Backup: string; temporal: string }> {
    const block = await this.waitFor(/approve it with\n {2}(TEMPORAL_ADDRESS=.*)\nor with the Temporal CLI:\n {2}(\S*temporal workflow signal .*)\n/);
    return { erp4Backup: block[1]!, temporal: block[2]! };
  }

  /** The Markdown report the demo printed. */
  report(): string {
    const report = /--- drill report \(\S+\.md\) ---\n([\s\S]*?)\n--- end of the drill report ---/.exec(this.output)?.[1];
    expect(report, this.output).toBeDefined();
    return report!;
  }
}

let demoDir: string;
let running: DemoRun | undefined;
const env = () => ({ PATH: process.env.PATH, HOME: process.env.HOME, DEMO_DIR: demoDir });

beforeEach(async () => {
  demoDir = await mkdtemp(join(tmpdir(), 'erp4-demo-test-'));
});
afterEach(async () => {
  // A failed assertion must not leave the demo (and its dev server and database) running:
  // Ctrl-C stops them; SIGKILL only if the demo does not end.
  if (running && running.child.exitCode === null && running.child.signalCode === null) {
    if (running.onTerminal) running.child.stdin.write('\x03');
    else running.child.kill('SIGINT');
    if ((await Promise.race([running.exit.then(() => 'ended'), sleep(30_000)])) !== 'ended') running.child.kill('SIGKILL');
  }
  running = undefined;
  await rm(demoDir, { recursive: true, force: true });
});

/** stdin not a terminal (CI, a pipe): the demo approves its drill itself. */
function demoWithoutTerminal(args: string[]): DemoRun {
  running = new DemoRun(spawn(process.execPath, [DEMO, ...args], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] }) as unknown as ChildProcessWithoutNullStreams, false);
  return running;
}

/** On a pseudo-terminal (util-linux `script`), as a user at a terminal runs it; keys are written to `child.stdin`. */
function demoOnTerminal(args: string[]): DemoRun {
  const command = ['exec', process.execPath, DEMO, ...args].map(shellWord).join(' ');
  running = new DemoRun(spawn('script', ['-qfec', command, '/dev/null'], { env: { ...env(), TERM: 'dumb' }, stdio: ['pipe', 'pipe', 'pipe'] }), true);
  return running;
}

/** Runs a printed command line as a user pasting it into another terminal (elsewhere than the checkout). */
async function runPrinted(line: string): Promise<string> {
  const { stdout } = await runCommand('sh', ['-c', line], { cwd: tmpdir(), env: { PATH: process.env.PATH, HOME: process.env.HOME } });
  return stdout;
}

function expectPassedDrillApprovedBy(run: DemoRun, comment: string): void {
  const report = run.report();
  expect(report).toMatch(/^# Restore drill \S+: PASSED$/m);
  expect(report).toMatch(new RegExp(`^- accepted: oncall \\(admin\\) at \\S+: ${comment.replace(/[()-]/g, '\\$&')}$`, 'm'));
  expect(report).toMatch(/^- Measured RTO: \d+m\d\ds \(target 4h00m00s: met;/m);
  expect(report).toMatch(/^\| pass \| fingerprint: public\.invoices \| rows 1000; sum\(amount\) /m);
  expect(report).toMatch(/^\| pass \| assets: PDF files restored \| 52 files/m);
  expect(run.output).toMatch(/^drill passed: backup \d{8}T\d{6}Z-daily, \d+ checks, measured RTO \d+m\d\ds$/m);
}

// `npm run demo` as the README promises: no configuration at all, it starts its own Temporal
// dev server and PostgreSQL, runs one backup and a drill of it behind an approval, and prints
// the drill's report.
describe('npm run demo', () => {
  it('without a terminal: a backup pg_restore reads, a drill it approves itself, the commands to approve, the report', async () => {
    const run = demoWithoutTerminal([]);
    const code = await run.exit;
    expect(code, run.output).toBe(0);
    const { output } = run;

    const workflowId = /workflow id: (backup-demo-\d{8}T\d{6}Z-daily)/.exec(output)?.[1];
    expect(workflowId, output).toBeDefined();
    expect(output).toMatch(new RegExp(`Temporal Web UI: http://127\\.0\\.0\\.1:\\d+/namespaces/default/workflows/${workflowId}`));
    const dump = /^\s+db\s+(\S+\.dump)$/m.exec(output)?.[1];
    expect(dump).toBeDefined();
    const list = await runCommand(join(services().postgres.binDir, 'pg_restore'), ['--list', dump!]);
    expect(list.stdout).toContain('TABLE DATA public invoices');

    const drillId = /started RestoreDrill of backup \S+, workflow id (drill-demo-\S+)/.exec(output)?.[1];
    expect(drillId, output).toBeDefined();
    expect(output).toMatch(new RegExp(`drill in the Temporal Web UI: http://127\\.0\\.0\\.1:\\d+/namespaces/default/workflows/${drillId}\n`));
    expect(await run.approvalCommands()).toMatchObject({
      erp4Backup: expect.stringContaining(` run cli -- approve ${drillId} --as oncall --comment 'checked in the demo'`),
      temporal: expect.stringContaining(`workflow signal --address 127.0.0.1:`),
    });
    expect(output).toContain('approve-restore sent by the demo as oncall: approved by the demo itself (no terminal)');
    expectPassedDrillApprovedBy(run, 'approved by the demo itself (no terminal)');
    // The report printed is the one stored beside the backup.
    const reportKey = /--- drill report \((demo\/meta\/drills\/\S+\.md)\) ---/.exec(output)![1]!;
    expect((await readFile(join(demoDir, 'backups', reportKey), 'utf8')).trimEnd()).toBe(run.report());
    expect(output).not.toContain('keep running');
  }, 120_000);

  it('on a terminal: waits until the user runs the printed erp4-backup approve command, reports, and stops on Ctrl-C', async () => {
    const run = demoOnTerminal([]);
    const { erp4Backup } = await run.approvalCommands();
    await run.waitFor(/^waiting for the approval/m);
    // The demo waits: nothing approves the drill while the user reads the commands.
    await sleep(2_500);
    expect(run.output).not.toContain('approved by');
    expect(run.output).not.toContain('approve-restore sent by the demo');

    expect(await runPrinted(erp4Backup)).toMatch(/approval by oncall accepted; the restore proceeds/);
    await run.waitFor(/press Ctrl-C to stop/);
    expectPassedDrillApprovedBy(run, 'checked in the demo');
    const waited = /^\| awaiting-approval \| \S+ \| (\d+)m(\d\d)s \|$/m.exec(run.report());
    expect(Number(waited?.[1]) * 60 + Number(waited?.[2])).toBeGreaterThanOrEqual(2);

    run.child.stdin.write('\x03');
    expect(await run.exit, run.output).toBe(0);
    expect(run.output).not.toContain('while stopping');
    // Ctrl-C stopped the dev server and the database too.
    const temporalPort = Number(/^TEMPORAL_ADDRESS=127\.0\.0\.1:(\d+) /.exec(erp4Backup)![1]);
    const postgresPort = Number(/throwaway PostgreSQL \S+ on 127\.0\.0\.1:(\d+)/.exec(run.output)![1]);
    expect(await isPortOpen('127.0.0.1', temporalPort)).toBe(false);
    expect(await isPortOpen('127.0.0.1', postgresPort)).toBe(false);
  }, 120_000);

  it('on a terminal: the printed temporal workflow signal command approves the drill', async () => {
    const run = demoOnTerminal(['--exit']);
    const { temporal } = await run.approvalCommands();
    await run.waitFor(/^waiting for the approval/m);
    await runPrinted(temporal);
    expect(await run.exit, run.output).toBe(0);
    expectPassedDrillApprovedBy(run, 'checked in the demo');
  }, 120_000);

  it('on a terminal: Ctrl-C while the drill waits for approval stops the demo, the dev server and the database', async () => {
    const run = demoOnTerminal([]);
    const { erp4Backup } = await run.approvalCommands();
    await run.waitFor(/^waiting for the approval/m);
    run.child.stdin.write('\x03');
    expect(await run.exit, run.output).toBe(130);
    expect(run.output).toContain('\ninterrupted (Ctrl-C): stopping\n');
    // Stopped, not crashed: no error and no stack trace after it.
    expect(run.output).not.toMatch(/demo failed|while stopping|^\s+at /m);
    const temporalPort = Number(/^TEMPORAL_ADDRESS=127\.0\.0\.1:(\d+) /.exec(erp4Backup)![1]);
    const postgresPort = Number(/throwaway PostgreSQL \S+ on 127\.0\.0\.1:(\d+)/.exec(run.output)![1]);
    expect(await isPortOpen('127.0.0.1', temporalPort)).toBe(false);
    expect(await isPortOpen('127.0.0.1', postgresPort)).toBe(false);
  }, 120_000);

  it('on a terminal with --approve: approves at once, without waiting for the user', async () => {
    const run = demoOnTerminal(['--approve', '--exit']);
    expect(await run.exit, run.output).toBe(0);
    expect(run.output).not.toContain('waiting for the approval');
    expect(run.output).toContain('approve-restore sent by the demo as oncall: approved by the demo itself (--approve)');
    expectPassedDrillApprovedBy(run, 'approved by the demo itself (--approve)');
  }, 120_000);
});

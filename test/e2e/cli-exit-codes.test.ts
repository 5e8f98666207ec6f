import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { productEnv, startProduct, type RunningProduct } from '../helpers/product.js';
import { services } from '../helpers/services.js';
import { writeGoodAndCorruptBackups } from '../helpers/synthetic-backups.js';

// The README's exit-code table, command by command, with the built CLI against real services:
// 0 ok, 1 the command found a problem, 2 usage or configuration, 3 the run failed or a service is unreachable.
describe('erp4-backup exit codes', () => {
  const s = services();
  let env: Record<string, string>;
  let product: RunningProduct;
  const good = '20261101T170000Z-daily';
  const corrupt = '20261102T170000Z-daily';

  beforeAll(async () => {
    // Drills restore without waiting for approve-restore, so a drill of a broken backup ends on its own.
    env = await productEnv(s, 'exit-codes', { assets: false, s3: true, env: { BACKUP_ENV: 'exit-codes', DRILL_PREAPPROVED: 'true' } });
    // Its own env: drill and restore workflow ids (`drill-<env>-<second>`) never meet another file's.
    await writeGoodAndCorruptBackups(env, { good, corrupt });
    product = await startProduct(s, env);
  });
  afterAll(async () => product?.close());

  const offline = () => ({ ...env, TEMPORAL_ADDRESS: '127.0.0.1:1' });
  /** The commands that touch no database ask for no DB_NAME. */
  const withoutDbName = (environment: Record<string, string>) => Object.fromEntries(Object.entries(environment).filter(([name]) => name !== 'DB_NAME'));

  it('0: the command did what was asked', async () => {
    for (const args of [['--help'], ['--version'], ['list'], ['list', '--repo', 's3'], ['verify', good]]) {
      const result = await runCli(args, withoutDbName(offline()));
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(0);
    }
  });

  it('1: verify finds a mismatch; a drill of a backup that does not restore fails with its report', async () => {
    const verify = await runCli(['verify', corrupt], offline());
    expect(verify.code).toBe(1);
    expect(verify.stdout).toContain(`backup ${corrupt} FAILED verification`);

    // The synthetic "dump" is not a pg_dump archive: the drill runs and fails at a step it names.
    const drill = await runCli(['drill', '--repo', 'local', '--backup', good], env);
    expect(drill.code, drill.stdout + drill.stderr).toBe(1);
    expect(drill.stderr).toMatch(/RestoreDrill failed at restoring/);
    // Drill ids are per second: the next one must not reuse the first one's id.
    await sleep(1100);
    // Whatever stopped it: a drill that ran and failed is 1, with the step and cause in its report.
    const missing = await runCli(['drill', '--repo', 'local', '--backup', '20200101T000000Z-daily'], env);
    expect(missing.code, missing.stdout + missing.stderr).toBe(1);
    expect(missing.stderr).toMatch(/RestoreDrill failed at selecting: backup "20200101T000000Z-daily" not found/);

    // An approval that does not count (the drill no longer waits for one), sent without DB_NAME.
    const workflowId = /workflow id (drill-\S+)/.exec(missing.stdout)![1]!;
    const approve = await runCli(['approve', workflowId, '--as', 'alice'], withoutDbName(env));
    expect(approve.code, approve.stdout + approve.stderr).toBe(1);
    expect(approve.stdout).toContain(`${workflowId}: not sent: the run is failed`);
  });

  it('2: usage and configuration errors, each named', async () => {
    const cases: Array<[string[], Record<string, string>, RegExp]> = [
      [[], offline(), /Usage: erp4-backup/],
      [['list', '--bogus'], offline(), /unknown option '--bogus'/],
      [['verify', '../../etc/passwd'], offline(), /expected a backup id/],
      [['list', '--repo', 'nas'], offline(), /--repo nas: not configured/],
      [['list'], { ...offline(), DB_PORT: 'five' }, /DB_PORT: /],
      [['verify', '20200101T000000Z-daily'], offline(), /backup "20200101T000000Z-daily" not found in repository local/],
    ];
    for (const [args, environment, message] of cases) {
      const result = await runCli(args, environment);
      expect(result.code, `${args.join(' ')}: ${result.stdout}${result.stderr}`).toBe(2);
      expect(result.stderr).toMatch(message);
    }
  });

  it('3: a service that cannot be reached', async () => {
    const result = await runCli(['backup', '--kind', 'daily'], offline());
    expect(result.code, result.stderr).toBe(3);
    expect(result.stderr).toMatch(/cannot be reached .*TEMPORAL_ADDRESS/);
    const s3 = await runCli(['list', '--repo', 's3'], withoutDbName({ ...offline(), S3_ENDPOINT_URL: 'http://127.0.0.1:1' }));
    expect(s3.code, s3.stderr).toBe(3);
    expect(s3.stderr).toMatch(/127\.0\.0\.1:1|ECONNREFUSED/);
  });
});

import type { Command } from 'commander';
import { EXIT_CODES, type CheckReport, type ProbeResult, type ProbeStatus } from '../check/probe.js';
import { runChecks } from '../check/run.js';

/**
 * `erp4-backup check`: the preflight (pgBackRest's and Barman's `check`). One line per probe,
 * or `--json`; the exit code follows the Nagios plugin convention (0 OK, 1 WARNING, 2 CRITICAL,
 * 3 UNKNOWN), usage errors included, so a monitoring system can run it as a plugin.
 */

function fixOf(probe: ProbeResult): string {
  const parts = [...(probe.settings.length > 0 ? [`fix ${probe.settings.join(', ')}`] : []), ...(probe.remedy ? [probe.remedy] : [])];
  return probe.status === 'OK' || parts.length === 0 ? '' : ` (${parts.join('; ')})`;
}

const SUMMARY_ORDER: readonly ProbeStatus[] = ['CRITICAL', 'WARNING', 'UNKNOWN', 'OK'];

/** The first line is the plugin's summary (what Nagios shows), problems first; then one line per probe. */
export function formatCheckReport(report: CheckReport): string {
  const counts = SUMMARY_ORDER.map((status) => [status, report.probes.filter((probe) => probe.status === status).length] as const)
    .filter(([, count]) => count > 0)
    .map(([status, count]) => `${count} ${status.toLowerCase()}`);
  const width = Math.max(...report.probes.map((probe) => probe.name.length));
  const lines = report.probes.map((probe) => `${probe.status.padEnd(8)}  ${probe.name.padEnd(width)}  ${probe.detail}${fixOf(probe)}`);
  return [`erp4-backup check ${report.status}: ${counts.join(', ')}`, ...lines].join('\n');
}

export async function checkCommand(options: { json: boolean }, env: NodeJS.ProcessEnv = process.env, out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const report = await runChecks(env);
  out.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatCheckReport(report)}\n`);
  return report.exitCode;
}

export function addCheckCommand(program: Command): void {
  program
    .command('check')
    .description('before the first night: probe the configuration, the database and pg tools, every repository with each role, the keys, Temporal (schedules, worker) and the backups\' age; exits 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN')
    .option('--json', 'print the probes and the overall status as JSON', false)
    // A usage error is UNKNOWN (3) for a monitoring plugin, not commander's 1; --help stays 0.
    .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : EXIT_CODES.UNKNOWN))
    .action(async (options: { json: boolean }) => {
      try {
        process.exitCode = await checkCommand(options);
      } catch (error) {
        // runChecks turns every failure into a probe; anything else is the check's own fault.
        process.stdout.write(`erp4-backup check UNKNOWN: ${(error as Error).message}\n`);
        process.exitCode = EXIT_CODES.UNKNOWN;
      }
    });
}

import { appendFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { beforeAll, beforeEach, expect, inject } from 'vitest';
import { installTelemetry } from '../../src/telemetry.js';

/**
 * Every test file's in-process workers log through Temporal's Runtime logger (src/telemetry.ts,
 * as `erp4-backup worker` does) into a file of the run's log directory instead of the test
 * output; a failing test prints what was logged while it ran. (Worker PROCESSES started by tests
 * write to their own log files: test/helpers/worker-process.ts.)
 */
const logDir = join(inject('services').workDir, 'logs');
let logFile = join(logDir, `workers-${process.pid}.log`);
let sinceTestStarted: string[] = [];
const MAX_LINES_KEPT = 2000;

installTelemetry({ env: 'test', log: { level: 'INFO', format: 'text' }, metrics: { bindAddress: undefined } }, (line) => {
  appendFileSync(logFile, line);
  sinceTestStarted.push(line);
  if (sinceTestStarted.length > MAX_LINES_KEPT) sinceTestStarted.splice(0, sinceTestStarted.length - MAX_LINES_KEPT);
});

beforeAll(() => {
  const testPath = expect.getState().testPath;
  if (testPath) logFile = join(logDir, `workers-${basename(testPath).replace(/\.test\.ts$/, '')}-${process.pid}.log`);
});

beforeEach((context) => {
  sinceTestStarted = [];
  context.onTestFailed(() => {
    process.stderr.write(`--- worker log while "${context.task.name}" ran (whole file: ${logFile}) ---\n${sinceTestStarted.join('')}--- end of worker log ---\n`);
  });
});

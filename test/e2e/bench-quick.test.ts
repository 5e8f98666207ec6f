import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { BenchResults } from '../../bench/report.js';

const BENCH = fileURLToPath(new URL('../../dist/bench/run.js', import.meta.url));

// `npm run bench -- --quick` (a few MB, one repetition) on every test run, so the benchmark
// never rots. It starts its own services (the numbers must not share a machine's services with
// other tests' state) and proves each pipeline's output restorable; it asserts nothing about time.
describe('npm run bench -- --quick', () => {
  it('runs every pipeline and shows each result restorable', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'erp4-bench-quick-test-'));
    const json = join(dir, 'results.json');
    try {
      const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
        const child = spawn(process.execPath, [BENCH, '--quick', '--json', json], {
          env: { PATH: process.env.PATH, HOME: process.env.HOME },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let text = '';
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
        child.stderr.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
        child.once('error', reject);
        child.once('close', (exitCode) => resolve({ code: exitCode, output: text }));
      });
      expect(code, output).toBe(0);
      const results = JSON.parse(await readFile(json, 'utf8')) as BenchResults;

      for (const pipeline of ['baselineA', 'floor', 'nightlyBackup', 'nightlyBackupLocalSftp', 'plainRestore', 'baselineB', 'restoreDrill'] as const) {
        expect(results.pipelines[pipeline].runs, pipeline).toHaveLength(1);
      }
      expect(Object.keys(results.restorable).sort()).toEqual(
        [
          'NightlyBackup', 'NightlyBackup (local + SFTP)', 'RestoreDrill', 'baseline A', 'baseline B',
          'empty-database NightlyBackup', 'floor', 'plain pg_restore',
        ].sort(),
      );
      expect(results.restorable['NightlyBackup']).toMatch(/^RestoreDrill from S3 passed/);
      expect(results.restorable['NightlyBackup (local + SFTP)']).toMatch(/^RestoreDrill from SFTP passed/);
      expect(results.restorable['baseline A']).toMatch(/data equal to the source/);
      expect(results.restorable['baseline B']).toMatch(new RegExp(`data equal to the source, ${results.dataset.assetFiles} PDF files of ${results.dataset.assetBytes} bytes`));
      expect(results.restorable['plain pg_restore']).toMatch(/equal to the source/);
      // The S3-overhead pairs ran (both uploads of the db artifact), and the process tree was sampled (the worker is in it).
      expect(results.s3Overhead.oursMs).toHaveLength(2);
      expect(results.s3Overhead.plainMs).toHaveLength(2);
      for (const pipeline of ['nightlyBackup', 'restoreDrill'] as const) {
        const sample = results.pipelines[pipeline].median;
        expect(sample.treePeakRssBytes, pipeline).toBeGreaterThan(50e6);
      }
      // The whole machine's CPU was counted for every pipeline (it includes the worker's own).
      for (const [pipeline, { median }] of Object.entries(results.pipelines)) expect(median.machineBusyMs, pipeline).toBeGreaterThan(0);
      expect(results.pipelines.restoreDrill.median.machineBusyMs).toBeGreaterThanOrEqual(results.pipelines.restoreDrill.median.cpuMs * 0.9);
      expect(results.emptyProfile.at(-1)).toMatch(/^workflow total: /);
      expect(results.restore.emptyDrillRtoMs).toHaveLength(1);
      expect(results.drillPhases.map((p) => p.phase)).toContain('restoring-database');
      expect(results.dataset.rows['invoices']).toBeGreaterThan(0);
      expect(results.dataset.assetFiles).toBeGreaterThan(0);
      expect(results.sizes.oursDbBytes).toBeGreaterThan(0);
      expect(results.restore.drillRestorePhaseMs).toHaveLength(1);
      expect(output).toContain('| **NightlyBackup**');
      expect(output).toContain('| drill RTO / baseline B |');
      expect(output).toContain('the largest database restored within the 4 h RTO (S9)');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 240_000);
});

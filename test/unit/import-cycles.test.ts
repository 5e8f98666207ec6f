import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { expect, it } from 'vitest';

// Import cycles hide the order things are built in (the composition root is src/runtime.ts):
// dpdm, type imports included, over every source file of the product, the bench and the tests.
const dpdm = createRequire(import.meta.url).resolve('dpdm/lib/bin/dpdm.js');
const sources = ['src/**/*.ts', 'activities/**/*.ts', 'workflows/**/*.ts', 'bench/**/*.ts', 'test/*.ts', 'test/!(fixtures)/**/*.ts'];

function cyclesIn(patterns: string[]): string {
  try {
    execFileSync(process.execPath, [dpdm, '--no-warning', '--no-tree', '--exit-code', 'circular:1', ...patterns], { encoding: 'utf8' });
    return '';
  } catch (error) {
    return String((error as { stdout?: string }).stdout ?? error);
  }
}

it('no source file imports itself through others', () => {
  expect(cyclesIn(sources)).toBe('');
});

it('the check finds a cycle where there is one', () => {
  // Control: two fixture modules importing each other must be reported.
  expect(cyclesIn(['test/fixtures/import-cycle/a.ts'])).toMatch(/a\.ts.*b\.ts/s);
});

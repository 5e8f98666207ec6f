import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { descendantsOf, parentPidOf, residentBytesOf, sampleTreePeak, treeResidentBytes } from '../../bench/process-tree.js';

describe('bench process tree', () => {
  it('finds every descendant of a pid, not its siblings or parent', () => {
    const parents = new Map([
      [10, 1], // worker
      [11, 10], // pg_dump
      [12, 10], // sh
      [13, 12], // gpg under sh
      [20, 1], // another service
      [21, 20],
    ]);
    expect([...descendantsOf(10, parents)].sort()).toEqual([10, 11, 12, 13]);
    expect([...descendantsOf(13, parents)]).toEqual([13]);
  });

  it('reads the parent pid after a command name holding spaces and parentheses', () => {
    expect(parentPidOf('4242 (node (worker) x) S 4100 4242 4100 0 -1 4194560')).toBe(4100);
  });

  it('reads VmRSS, and counts a process without one (a zombie) as nothing', () => {
    expect(residentBytesOf('Name:\tnode\nVmHWM:\t  300000 kB\nVmRSS:\t  123456 kB\n')).toBe(123456 * 1024);
    expect(residentBytesOf('Name:\tpg_dump\nState:\tZ (zombie)\n')).toBe(0);
  });

  it("counts a child's memory in the tree's peak, which the parent's own RSS lacks", async () => {
    const ownBefore = process.memoryUsage().rss;
    const sampler = sampleTreePeak(process.pid, 20);
    // A child holding 80 MB resident until it is told to exit.
    const child = spawn(process.execPath, ['-e', "const b = Buffer.alloc(80e6, 1); process.stdout.write('ready'); setInterval(() => b[0]++, 1000)"], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      await once(child.stdout!, 'data');
      expect(await treeResidentBytes(process.pid)).toBeGreaterThan(ownBefore + 80e6);
      await new Promise((resolve) => setTimeout(resolve, 100));
    } finally {
      child.kill();
      await once(child, 'exit');
    }
    expect(await sampler.stop()).toBeGreaterThan(ownBefore + 80e6);
  });
});

import { describe, expect, it } from 'vitest';
import { allSettledInOrder, summedProgress } from '../../activities/restore-concurrency.js';

describe('allSettledInOrder', () => {
  it('runs every item at once and waits for all of them', async () => {
    const running: string[] = [];
    let peak = 0;
    const finished: string[] = [];
    await allSettledInOrder(new AbortController().signal, ['db', 'globals', 'assets'], async (item) => {
      running.push(item);
      peak = Math.max(peak, running.length);
      await new Promise((resolve) => setTimeout(resolve, 20));
      running.splice(running.indexOf(item), 1);
      finished.push(item);
    });
    expect(peak).toBe(3);
    expect(finished.sort()).toEqual(['assets', 'db', 'globals']);
  });

  it('throws the failure of the first item in order, after the others have settled', async () => {
    const settled: string[] = [];
    const run = allSettledInOrder(new AbortController().signal, ['db', 'globals', 'assets'], async (item) => {
      // globals fails first in time, db later: db's failure is the one thrown.
      await new Promise((resolve) => setTimeout(resolve, item === 'db' ? 30 : item === 'globals' ? 5 : 60));
      settled.push(item);
      if (item !== 'assets') throw new Error(`${item} failed`);
    });
    await expect(run).rejects.toThrow('db failed');
    expect(settled).toEqual(['globals', 'db', 'assets']);
  });
});

describe('summedProgress', () => {
  it('reports the sum of every item\'s latest byte count', () => {
    const reported: number[] = [];
    const progress = summedProgress((bytes) => reported.push(bytes));
    const db = progress('db');
    const assets = progress('assets');
    db(100);
    assets(50);
    db(300);
    expect(reported).toEqual([100, 150, 350]);
  });
});

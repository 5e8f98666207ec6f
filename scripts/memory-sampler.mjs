// Samples the worker's memory for docs/MEMORY.md: preload it into the bench's worker with
//   npm run bench -- ... --worker-node-options="--import $PWD/scripts/memory-sampler.mjs"
// Every 100 ms, process.memoryUsage() of the main thread; every second the latest values, the
// maxima and the series ([time ms, rss, heapTotal, heapUsed, external, arrayBuffers] in MiB) go
// to <tmpdir>/erp4-memory-<pid>.json.
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMainThread } from 'node:worker_threads';

if (isMainThread) {
  const out = join(tmpdir(), `erp4-memory-${process.pid}.json`);
  const max = {};
  const series = [];
  const MiB = 1024 * 1024;
  setInterval(() => {
    const { rss, heapTotal, heapUsed, external, arrayBuffers } = process.memoryUsage();
    const now = { rss, heapTotal, heapUsed, external, arrayBuffers };
    for (const [key, value] of Object.entries(now)) max[key] = Math.max(max[key] ?? 0, value);
    series.push([Date.now(), ...Object.values(now).map((value) => Math.round(value / MiB))]);
    if (series.length % 10 === 0) writeFileSync(out, JSON.stringify({ now, max, series }));
  }, 100).unref();
}

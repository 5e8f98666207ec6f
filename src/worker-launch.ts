/**
 * How the worker process is started so that it fits its memory budget (300 MB peak RSS during a
 * backup or a drill; docs/MEMORY.md has the measurements). Both kinds of setting are read by
 * Node and by the C library when the process starts, so the running worker cannot apply them to
 * itself: every way the product starts a worker applies them (package.json's `worker` script,
 * the Dockerfile, deploy/systemd, the bench's worker process; test/unit/worker-launch.test.ts
 * compares them), and the worker warns at start when it runs without them.
 */

/**
 * Node flags. `--max-semi-space-size=2` (MiB): Node 24 lets the young generation grow to
 * 64 MB here, 4 MB with the flag (v8.getHeapSpaceStatistics); stream chunks die young and are
 * collected sooner. V8 reads it once at start-up (`v8.setFlagsFromString` later leaves the new
 * space as it is: measured). Worker RSS at rest 233 -> 195 MB with this and the arenas below.
 */
export const WORKER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2'];

/**
 * glibc malloc settings. Buffers' memory comes from malloc, and glibc keeps what is freed: per
 * thread arena (libuv's pool, the Temporal core's Rust threads, the workflow thread), and, once
 * a large buffer has been freed, it raises its mmap threshold (up to 32 MiB) so that later large
 * buffers come from the arenas too. During a backup the worker's RSS grew ~100 MB beyond its JS
 * heap and external memory this way. `MALLOC_ARENA_MAX=2`: two arenas, whose freed memory is
 * reused; `MALLOC_MMAP_THRESHOLD_=131072` (fixed, 128 KiB): stream chunks and S3 parts of
 * 128 KiB or more are mapped on their own and returned to the system when freed. Measured in the
 * bench at 0.1 GB (docs/MEMORY.md): peak RSS of a backup 335 -> 325 MB with the arenas alone,
 * 281-300 MB with both; of a drill 407 -> 361 -> 287-315 MB. The worker's CPU time in a
 * backup: 7.0-7.2 s without the threshold, 7.6-9.3 s with it (runs on a loaded 2-core machine;
 * about 1,500 mmap/munmap calls in a backup and a drill, strace).
 */
export const WORKER_MALLOC_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '131072' };

/** The settings above that this process was started without (empty: all applied). */
export function missingLaunchSettings(execArgv: readonly string[], env: Readonly<Record<string, string | undefined>>): string[] {
  const nodeOptions = (env.NODE_OPTIONS ?? '').split(/\s+/);
  const missing = WORKER_NODE_FLAGS.filter((flag) => !execArgv.includes(flag) && !nodeOptions.includes(flag));
  for (const [name, value] of Object.entries(WORKER_MALLOC_ENV)) if (env[name] !== value) missing.push(`${name}=${value}`);
  return missing;
}

import { configDefaults, defineConfig } from 'vitest/config';

// One set of real services (PostgreSQL, Temporal dev server, S3 server, sshd) is started
// by the global setup for the whole run; test files share it and isolate themselves by
// using their own database names, bucket prefixes and task queues.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Chaos-only files: their faults are in `npm test` once, elsewhere (see each file); `npm run test:chaos` (CHAOS=1) runs them.
    exclude: [...configDefaults.exclude, ...(process.env.CHAOS === '1' ? [] : ['test/chaos/hosts.test.ts'])],
    globalSetup: ['test/helpers/global-setup.ts'],
    setupFiles: ['test/helpers/worker-logs.ts'],
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 180_000,
    reporters: ['default'],
  },
});

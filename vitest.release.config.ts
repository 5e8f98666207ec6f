import { defineConfig } from 'vitest/config';

// `npm run record-release` (test/releases/record.ts): the real services of the test suite, one recorder file.
export default defineConfig({
  test: {
    include: ['test/releases/record.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    pool: 'forks',
    testTimeout: 300_000,
    hookTimeout: 180_000,
  },
});

import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The global install of the packed tarball takes minutes: `npm run test:install` (vitest.install.config.ts).
    exclude: [...configDefaults.exclude, 'test/install/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // End-to-end tests start many CLI processes; two cores are shared, so files run two at a time.
    maxWorkers: 2,
  },
});

import { defineConfig } from 'vitest/config';

// `npm run test:install`: the packed tarball installed globally into a temporary prefix
// (test/install/). Minutes, not seconds, so kept out of `npm test`; .ci/run runs it.
export default defineConfig({
  test: {
    include: ['test/install/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 600_000,
  },
});

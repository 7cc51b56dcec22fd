import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    globals: false,
    include: [
      'connectors/**/*.test.ts',
      'correlator/**/*.test.ts',
      'platform/**/*.test.ts',
      'services/**/*.test.ts',
      'rules/**/*.test.ts',
      'test/**/*.test.ts',
      'console/src/**/*.test.ts',
    ],
    testTimeout: 30_000,
    pool: 'forks',
  },
});

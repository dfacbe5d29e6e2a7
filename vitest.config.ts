import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Several files start servers and child processes; two cores are all this machine has.
    maxWorkers: 2,
    reporters: ['default'],
  },
});

import { resolve } from 'node:path';
import { defineConfig } from 'vitest/config';

// The real-Medplum suite (`npm run test:medplum`): its own project, so `npm test` never needs a
// Medplum server. The global setup starts one from the server box when none is given.
process.env.DATABASE_URL ??= 'postgres://postgres@127.0.0.1:5432/test';

export default defineConfig({
  root: resolve(import.meta.dirname, '..'),
  test: {
    name: 'real-medplum',
    environment: 'node',
    include: ['test-medplum/**/*.test.ts'],
    globalSetup: ['test-medplum/global-setup.ts'],
    pool: 'forks',
    // Files share two servers on a machine with few cores: one file at a time keeps their
    // throughput (and the quota window) their own.
    fileParallelism: false,
    // A quota window is a minute; the quota test waits one out.
    testTimeout: 150_000,
    // Starting a server from the box: 2–13 s (its README), more on a loaded machine.
    hookTimeout: 240_000,
    env: { DATABASE_URL: process.env.DATABASE_URL },
  },
});

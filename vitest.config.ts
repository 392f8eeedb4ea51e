import { defineConfig } from 'vitest/config';

// Integration tests use a real PostgreSQL server. Locally and in CI it listens on 127.0.0.1:5432
// with a `test` database (`.ci/run` creates it); set DATABASE_URL to use another one.
process.env.DATABASE_URL ??= 'postgres://postgres@127.0.0.1:5432/test';
// The MySQL table adapter's tests use MariaDB (or MySQL) on 127.0.0.1:3306, `test` database.
process.env.MYSQL_URL ??= 'mysql://root@127.0.0.1:3306/test';

export default defineConfig({
  test: {
    environment: 'node',
    include: ['test/**/*.test.ts'],
    // Tests open PostgreSQL pools and HTTP servers; a child process per file isolates their
    // sockets and native handles more robustly than worker threads.
    pool: 'forks',
    testTimeout: 30_000,
    // Setup starts the HTTP FHIR harness and migrates a schema, which takes longer than a test.
    hookTimeout: 60_000,
    env: { DATABASE_URL: process.env.DATABASE_URL, MYSQL_URL: process.env.MYSQL_URL },
  },
});

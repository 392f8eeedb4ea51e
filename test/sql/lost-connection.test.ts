/**
 * Nothing the database does may crash the host process. A `pg` client checked out for a
 * transaction emits `'error'` when its backend is terminated; without a listener Node throws it
 * and the process ends (a drainer crashed twice this way). The scenario runs in a child process
 * so that a crash is seen as one: its exit code.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const PROCESS = join(import.meta.dirname, 'lost-connection', 'lost-connection-process.ts');

interface Run {
  readonly code: number | null;
  readonly stderr: string;
  readonly lines: readonly Record<string, unknown>[];
}

function runProcess(schema: string): Promise<Run> {
  const child = spawn(process.execPath, [PROCESS, DATABASE_URL, schema], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      const lines = stdout
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      resolve({ code, stderr, lines });
    });
  });
}

describe('a PostgreSQL backend terminated under the library', () => {
  const schema = `dw_lost_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  let run: Run;

  beforeAll(async () => {
    run = await runProcess(schema);
  }, 60_000);

  afterAll(async () => {
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await pool.end();
  });

  it('does not crash the process', () => {
    expect(run.stderr).not.toMatch(/Unhandled 'error' event|Connection terminated/);
    expect(run.code).toBe(0);
    expect(run.lines.at(-1)).toEqual({ survived: true });
  });

  it('rejects a call whose transaction lost its connection with a retryable typed error', () => {
    expect(run.lines.find((line) => String(line.call).startsWith('saveLink, backend'))).toEqual({
      call: 'saveLink, backend terminated mid-transaction',
      outcome: 'rejected',
      typed: true,
      name: 'UnavailableError',
      retryable: true,
      code: '57P01',
    });
  });

  it('answers the next calls on fresh connections once idle ones were terminated', () => {
    expect(run.lines.filter((line) => line.outcome === 'resolved').map((line) => line.call)).toEqual([
      'outboxCounts, after idle connections were terminated',
      'saveLink, afterwards',
    ]);
  });
});

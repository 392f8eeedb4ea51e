/**
 * The one classification of database errors: which are transient (retried) and which are
 * permanent, on errors PostgreSQL and `pg` really produce, and on the codes other drivers use.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseCodeOf, databaseFailureKind, isTransientSqlState } from '../../src/sql/database-failure.ts';

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

describe('errors PostgreSQL gives', () => {
  let admin: pg.Client;

  beforeAll(async () => {
    admin = new pg.Client({ connectionString: DATABASE_URL });
    await admin.connect();
  });
  afterAll(() => admin.end());

  /** What a statement of a client whose backend is terminated rejects with, and what comes after. */
  async function terminatedClientErrors(): Promise<{ during: unknown; after: unknown }> {
    const victim = new pg.Client({ connectionString: DATABASE_URL });
    victim.on('error', () => undefined);
    await victim.connect();
    const { rows } = await victim.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    const during = victim.query('SELECT pg_sleep(30)').catch((error: unknown) => error);
    for (;;) {
      const { rows: states } = await admin.query<{ state: string }>(
        'SELECT state FROM pg_stat_activity WHERE pid = $1',
        [rows[0]!.pid],
      );
      if (states[0]?.state === 'active') break;
    }
    await admin.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
    const error = await during;
    const after = await victim.query('SELECT 1').catch((e: unknown) => e);
    await victim.end().catch(() => undefined);
    return { during: error, after };
  }

  it('a terminated backend (57P01), and the lost connection after it, are transient', async () => {
    const { during, after } = await terminatedClientErrors();
    expect(databaseCodeOf(during)).toBe('57P01');
    expect(databaseFailureKind(during)).toBe('transient');
    expect(databaseFailureKind(after)).toBe('transient');
  });

  it('a refused connection is transient', async () => {
    const client = new pg.Client({
      host: '127.0.0.1',
      port: 1,
      user: 'postgres',
      connectionTimeoutMillis: 2_000,
    });
    const error = await client.connect().catch((e: unknown) => e);
    expect(databaseFailureKind(error)).toBe('transient');
  });

  it('a unique violation, a bad value and a missing table are permanent', async () => {
    const errors: unknown[] = [];
    for (const text of [
      "SELECT 'x'::date",
      'SELECT * FROM dw_no_such_table',
      'CREATE TEMP TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (1)',
    ])
      errors.push(await admin.query(text).catch((e: unknown) => e));
    expect(errors.map(databaseCodeOf)).toEqual(['22007', '42P01', '23505']);
    expect(errors.map(databaseFailureKind)).toEqual(['permanent', 'permanent', 'permanent']);
  });
});

describe('SQLSTATEs and driver codes', () => {
  it.each([
    '08006',
    '08001',
    '40001',
    '40P01',
    '53300',
    '53100',
    '57P01',
    '57P02',
    '57P03',
    '57014',
    '25006',
  ])('%s is transient', (state) => {
    expect(isTransientSqlState(state)).toBe(true);
    expect(databaseFailureKind({ code: state })).toBe('transient');
  });

  it.each(['22001', '23505', '42P01', '42501', 'XX000'])('%s is permanent', (state) => {
    expect(databaseFailureKind({ code: state })).toBe('permanent');
  });

  it('reads MariaDB errors by their sqlState and connection codes', () => {
    expect(databaseFailureKind({ code: 'ER_TRUNCATED_WRONG_VALUE', sqlState: '22007' })).toBe('permanent');
    expect(databaseFailureKind({ code: 'ER_LOCK_DEADLOCK', sqlState: '40001' })).toBe('transient');
    expect(databaseFailureKind({ code: 'PROTOCOL_CONNECTION_LOST' })).toBe('transient');
  });

  it('says nothing of errors that are not a database’s', () => {
    expect(databaseFailureKind(new TypeError('x is not a function'))).toBeUndefined();
    expect(databaseFailureKind('a string')).toBeUndefined();
  });
});

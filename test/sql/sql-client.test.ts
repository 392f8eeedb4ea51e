import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { sqlClientFromPg, type PgPool, type PgPoolClient } from '../../src/sql/pg-client.ts';
import { sqlClientFromPglite } from '../../src/sql/pglite-client.ts';
import type { SqlClient } from '../../src/sql/sql-client.ts';

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = `dw_sql_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;

let pool: pg.Pool;
let db: PGlite;

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
  await pool.query(`CREATE SCHEMA "${schema}"`);
  db = new PGlite();
  await db.query(`CREATE SCHEMA "${schema}"`);
});

afterAll(async () => {
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
  await db.close();
});

for (const [name, client] of [
  ['sqlClientFromPg', () => sqlClientFromPg(pool)],
  ['sqlClientFromPglite', () => sqlClientFromPglite(db)],
] as const) {
  describe(name, () => {
    let sql: SqlClient;
    const table = `"${schema}"."${name}"`;

    beforeEach(async () => {
      sql = client();
      await sql.query(`DROP TABLE IF EXISTS ${table}`);
      await sql.query(`CREATE TABLE ${table} (id int PRIMARY KEY, v text)`);
    });

    it('runs parameterised queries and reports rows changed', async () => {
      await sql.query(`INSERT INTO ${table} VALUES ($1, $2), ($3, $4)`, [1, 'a', 2, 'b']);
      const updated = await sql.query(`UPDATE ${table} SET v = $1`, ['c']);
      expect(updated.rowCount).toBe(2);
      expect((await sql.query<{ v: string }>(`SELECT v FROM ${table} WHERE id = $1`, [2])).rows).toEqual([
        { v: 'c' },
      ]);
    });

    it('commits when the callback resolves, and returns its value', async () => {
      const value = await sql.transaction(async (tx) => {
        await tx.query(`INSERT INTO ${table} VALUES (1, 'a')`);
        return 'done';
      });
      expect(value).toBe('done');
      expect((await sql.query(`SELECT * FROM ${table}`)).rows).toHaveLength(1);
    });

    it('rolls back when the callback throws, and rethrows its error', async () => {
      const failure = new Error('boom');
      await expect(
        sql.transaction(async (tx) => {
          await tx.query(`INSERT INTO ${table} VALUES (1, 'a')`);
          throw failure;
        }),
      ).rejects.toBe(failure);
      expect((await sql.query(`SELECT * FROM ${table}`)).rows).toEqual([]);
    });

    it('refuses queries on the transaction once it has ended', async () => {
      const leaked = await sql.transaction((tx) => Promise.resolve(tx));
      await expect(leaked.query('SELECT 1')).rejects.toThrow('transaction has ended');
    });
  });
}

describe('sqlClientFromPg prepared statements', () => {
  const table = `"${schema}".prepared`;

  async function preparedNames(sql: SqlClient, text: string): Promise<string[]> {
    return sql.transaction(async (tx) => {
      await tx.query(text, [1]);
      const { rows } = await tx.query<{ name: string }>(
        `SELECT name FROM pg_catalog.pg_prepared_statements WHERE statement = $1`,
        [text],
      );
      return rows.map((row) => row.name);
    });
  }

  it('prepares a parameterised statement once per connection, under a name its text decides', async () => {
    const text = `SELECT $1::int + 41 AS n`;
    const names = await preparedNames(sqlClientFromPg(pool), text);
    expect(names).toHaveLength(1);
    expect(names[0]).toMatch(/^dw_[0-9a-f]{24}$/);
    // Another client object over the same pool names the same text the same way.
    expect(await preparedNames(sqlClientFromPg(pool), text)).toEqual(names);
    expect((await sqlClientFromPg(pool).query<{ n: number }>(text, [1])).rows).toEqual([{ n: 42 }]);
  });

  it('prepares nothing when told not to', async () => {
    const fresh = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
    try {
      const names = await preparedNames(
        sqlClientFromPg(fresh, { preparedStatements: false }),
        'SELECT $1::int',
      );
      expect(names).toEqual([]);
    } finally {
      await fresh.end();
    }
  });

  it('runs a statement unprepared once the table changed its result type under the prepared plan', async () => {
    const sql = sqlClientFromPg(pool);
    await sql.query(`CREATE TABLE ${table} (id int PRIMARY KEY, v int)`);
    await sql.query(`INSERT INTO ${table} VALUES (1, 7)`);
    const text = `SELECT * FROM ${table} WHERE id = $1`;
    // Prepare it on both of the pool's connections.
    await Promise.all([sql.query(text, [1]), sql.query(text, [1])]);
    await sql.query(`ALTER TABLE ${table} ALTER COLUMN v TYPE text`);
    for (let i = 0; i < 3; i++) expect((await sql.query(text, [1])).rows).toEqual([{ id: 1, v: '7' }]);
  });
});

describe('sqlClientFromPg when the session loses its prepared statements', () => {
  it('runs the statement unprepared, and prepares nothing more (a pooler or DISCARD ALL)', async () => {
    const one = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
    try {
      const sql = sqlClientFromPg(one);
      const text = 'SELECT $1::int * 2 AS n';
      expect((await sql.query<{ n: number }>(text, [2])).rows).toEqual([{ n: 4 }]);
      // The server forgets; the driver still believes the statement prepared on this session.
      await sql.query('DEALLOCATE ALL');
      expect((await sql.query<{ n: number }>(text, [3])).rows).toEqual([{ n: 6 }]);
      expect((await sql.query<{ n: number }>('SELECT $1::int + 1 AS n', [3])).rows).toEqual([{ n: 4 }]);
      const { rows } = await sql.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM pg_catalog.pg_prepared_statements',
      );
      expect(rows).toEqual([{ n: 0 }]);
    } finally {
      await one.end();
    }
  });
});

describe('sqlClientFromPg bad input', () => {
  it('names what is wrong with the pool or the options', () => {
    expect(() => sqlClientFromPg(undefined as never)).toThrow(/^pool: must be a pg Pool/);
    expect(() => sqlClientFromPg('postgres://localhost' as never)).toThrow(/^pool:/);
    expect(() => sqlClientFromPg(pool, null as never)).toThrow(/^options: must be an object/);
    expect(() => sqlClientFromPg(pool, { preparedStatements: 'yes' as never })).toThrow(
      /^options\.preparedStatements: must be true or false/,
    );
    expect(() => sqlClientFromPg(pool, { prepared: false } as never)).toThrow(
      /^options\.prepared: is not an option/,
    );
  });
});

describe('sqlClientFromPg connections', () => {
  it('returns the client to the pool after a commit and after a rollback', async () => {
    const sql = sqlClientFromPg(pool);
    await sql.transaction((tx) => tx.query('SELECT 1'));
    await sql.transaction(() => Promise.reject(new Error('boom'))).catch(() => undefined);
    expect(pool.totalCount - pool.idleCount).toBe(0);
  });

  it('destroys a client whose ROLLBACK failed instead of reusing it', async () => {
    // A broken connection cannot be produced on demand, so this one pool is simulated.
    const released: unknown[] = [];
    const client: PgPoolClient = {
      query: (text) =>
        text === 'ROLLBACK' ? Promise.reject(new Error('connection lost')) : Promise.resolve({ rows: [] }),
      release: (destroy) => void released.push(destroy),
    };
    const fakePool: PgPool = {
      query: () => Promise.resolve({ rows: [] }),
      connect: () => Promise.resolve(client),
    };
    await expect(
      sqlClientFromPg(fakePool).transaction(() => Promise.reject(new Error('boom'))),
    ).rejects.toThrow('boom');
    expect(released).toEqual([new Error('connection lost')]);
  });
});

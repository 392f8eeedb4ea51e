import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigurationError } from '../../src/errors.ts';
import type { Lease } from '../../src/journal/outbox.ts';
import { JOURNAL_MIGRATIONS } from '../../src/journal/migrations/migrate.ts';
import { PostgresStore, type PostgresStoreOptions } from '../../src/journal/postgres-store.ts';
import { LinkConflictError } from '../../src/journal/sync-store.ts';
import { sqlClientFromPg } from '../../src/sql/pg-client.ts';
import { sqlClientFromPglite } from '../../src/sql/pglite-client.ts';
import type { SqlClient, SqlQueryable } from '../../src/sql/sql-client.ts';
import { intentOf, linkOf } from './sync-store.fixture.ts';

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const HOUR = 3_600_000;

describe('PostgresStore on PGlite', () => {
  let db: PGlite;
  let sql: SqlClient;
  beforeAll(async () => {
    db = await PGlite.create();
    sql = sqlClientFromPglite(db);
  });
  afterAll(async () => {
    await db.close();
  });

  async function migrations(schema: string): Promise<{ version: number; name: string }[]> {
    const { rows } = await sql.query<{ version: number; name: string }>(
      `SELECT version, name FROM "${schema}".migrations ORDER BY version`,
    );
    return rows;
  }

  it('applies each migration once: opening again applies nothing', async () => {
    await PostgresStore.open({ sql, schema: 'reopened' });
    const store = await PostgresStore.open({ sql, schema: 'reopened' });
    expect(await migrations('reopened')).toEqual([
      { version: 1, name: 'initial' },
      { version: 2, name: 'applying-hash' },
      { version: 3, name: 'link-base' },
      { version: 4, name: 'hold-count' },
      { version: 5, name: 'event-counts' },
      { version: 6, name: 'other-direction' },
      { version: 10, name: 'plan-rows' },
      { version: 11, name: 'shared-runtime' },
      { version: 12, name: 'waiting-for' },
      { version: 16, name: 'jobs' },
      { version: 20, name: 'trace-parent' },
      { version: 21, name: 'backlog-samples' },
      { version: 27, name: 'unit-pauses' },
      { version: 48, name: 'letter-lease' },
      { version: 51, name: 'seen-copies' },
      { version: 54, name: 'outbox-lanes' },
      { version: 56, name: 'letter-repeats' },
      { version: 58, name: 'resolved-letters' },
    ]);
    await store.saveLink(linkOf('p-1', 'm-1'));
    expect(await store.getLink('Patient', 'p-1')).toEqual(linkOf('p-1', 'm-1'));
  });

  it("keeps its tables in the schema 'dualwrite' by default", async () => {
    await PostgresStore.open({ sql });
    const { rows } = await sql.query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'dualwrite' ORDER BY table_name`,
    );
    expect(rows.map((row) => row.table_name)).toEqual([
      'backlog_samples',
      'cursors',
      'dead_letters',
      'events',
      'feed_leases',
      'job_pages',
      'job_seen_copies',
      'jobs',
      'lane_holders',
      'links',
      'migrations',
      'outbox',
      'plan',
      'plan_stages',
      'readiness_samples',
      'unit_pauses',
    ]);
  });

  it('isolates the data of stores in different schemas', async () => {
    const north = await PostgresStore.open({ sql, schema: 'iso_north' });
    const south = await PostgresStore.open({ sql, schema: 'iso_south' });
    await north.saveLink(linkOf('p-1', 'm-1'));
    await north.intend(intentOf('p-1'), HOUR);
    await south.saveLink(linkOf('p-2', 'm-1'));
    expect(await south.getLink('Patient', 'p-1')).toBeUndefined();
    expect(await south.listOutbox()).toEqual([]);
    expect((await north.getLinkByMedplumId('Patient', 'm-1'))?.legacyId).toBe('p-1');
  });

  it('finishes the completions asked for while one runs in one statement', async () => {
    const statements: string[] = [];
    const counting: SqlClient = {
      query: (text, params) => {
        statements.push(text.trimStart().slice(0, 12));
        return sql.query(text, params);
      },
      transaction: (fn) => sql.transaction(fn),
    };
    const store = await PostgresStore.open({ sql: counting, schema: 'grouped' });
    const ids = Array.from({ length: 9 }, (_, i) => `p-${i}`);
    for (const id of ids) await store.commit(await store.intend(intentOf(id), HOUR));
    const leases = await store.claim('worker-1', 9, HOUR);
    statements.length = 0;
    const outcomes = await Promise.all(
      leases.map((lease) => store.complete(lease, linkOf(lease.entry.legacyId, `m-${lease.entry.legacyId}`))),
    );
    expect(outcomes).toEqual(ids.map(() => 'done'));
    // The first at once, alone; the eight asked for meanwhile together.
    expect(statements).toEqual(['WITH entry A', 'WITH input A']);
    for (const id of ids) expect(await store.getLink('Patient', id)).toEqual(linkOf(id, `m-${id}`));
    expect(await store.listOutbox()).toEqual([]);
  });

  it('records the marks asked for in one turn in one statement, each fenced by its own lease', async () => {
    const statements: string[] = [];
    const counting: SqlClient = {
      query: (text, params) => {
        statements.push(text.trimStart().slice(0, 12));
        return sql.query(text, params);
      },
      transaction: (fn) => sql.transaction(fn),
    };
    const store = await PostgresStore.open({ sql: counting, schema: 'grouped_marks' });
    const ids = Array.from({ length: 5 }, (_, i) => `p-${i}`);
    for (const id of ids) await store.commit(await store.intend(intentOf(id), HOUR));
    const leases = await store.claim('worker-1', 5, HOUR);
    // The last one's lease was taken over: its token is no longer the entry's.
    const stale = leases.map((lease, i) => (i === 4 ? { ...lease, token: '999999' } : lease));
    statements.length = 0;
    const marked = await Promise.all(stale.map((lease, i) => store.markApplying(lease, `sha256:${i}`)));
    expect(marked).toEqual([true, true, true, true, false]);
    expect(statements).toEqual(['WITH input A']);
    // A second mark keeps the first, newest first.
    expect(await store.markApplying(leases[0]!, 'sha256:again')).toBe(true);
    const byId = new Map((await store.listOutbox()).map((entry) => [entry.legacyId, entry.applyingHashes]));
    expect(byId.get('p-0')).toEqual(['sha256:again', 'sha256:0']);
    expect(byId.get('p-3')).toEqual(['sha256:3']);
    expect(byId.get('p-4')).toEqual([]);
  });

  it('says its leases do not reach other processes, since a PGlite database is one process’s', async () => {
    expect((await PostgresStore.open({ sql, schema: 'local' })).leasesAcrossProcesses).toBe(false);
  });

  it('leaves a database it was given open when closed', async () => {
    const store = await PostgresStore.open({ sql, schema: 'given' });
    await store.close();
    expect((await sql.query<{ one: number }>('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });

  describe('options', () => {
    async function configurationError(options: unknown): Promise<ConfigurationError> {
      const error = await PostgresStore.open(options as PostgresStoreOptions).catch((err: unknown) => err);
      expect(error).toBeInstanceOf(ConfigurationError);
      return error as ConfigurationError;
    }

    it.each(['a.b', 'x"; DROP SCHEMA public; --', '', '1st', 'a'.repeat(64), 42])(
      'rejects the schema %j, naming the field',
      async (schema) => {
        expect((await configurationError({ sql, schema })).field).toBe('schema');
      },
    );

    it('rejects something that is not a SqlClient, naming the field', async () => {
      expect((await configurationError({ sql: {} })).field).toBe('sql');
      expect((await configurationError(undefined)).field).toBe('options');
    });

    it('rejects an empty dataDir for an embedded store, naming the field', async () => {
      const error = await PostgresStore.openEmbedded({ dataDir: '' }).catch((err: unknown) => err);
      expect(error).toBeInstanceOf(ConfigurationError);
      expect((error as ConfigurationError).field).toBe('dataDir');
    });
  });
});

// An embedded PostgreSQL boots and migrates in a few seconds on a quiet machine and far longer on a
// loaded one: these tests wait for it, they do not time it.
describe('PostgresStore.openEmbedded', { timeout: 180_000 }, () => {
  it('opens an in-memory database by default, and closing twice is harmless', async () => {
    const store = await PostgresStore.openEmbedded();
    expect(store.leasesAcrossProcesses).toBe(false);
    await store.setCursor('legacy', 'c-1');
    expect(await store.getCursor('legacy')).toBe('c-1');
    await store.close();
    await store.close();
  });

  it('keeps its data in dataDir across a close and a reopen', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'dualwrite-store-'));
    try {
      const first = await PostgresStore.openEmbedded({ dataDir });
      await first.saveLink(linkOf('p-1', 'm-1'));
      await first.commit(await first.intend(intentOf('p-1'), HOUR));
      await first.close();
      const second = await PostgresStore.openEmbedded({ dataDir });
      expect(await second.getLink('Patient', 'p-1')).toEqual(linkOf('p-1', 'm-1'));
      expect(await second.claim('worker-1', 10, HOUR)).toHaveLength(1);
      await second.close();
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

/** A checked-out client as a queryable: the application's own transaction. */
function queryableOf(client: pg.PoolClient): SqlQueryable {
  return {
    query: async (text: string, params?: readonly unknown[]) => {
      const result = await client.query(text, params === undefined ? undefined : [...params]);
      return { rows: result.rows as never[], rowCount: result.rowCount };
    },
  };
}

describe('PostgresStore on PostgreSQL with concurrent instances', () => {
  // Separate pools stand for separate service instances: no connection is shared.
  const run = `dw_pgstore_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const schemas: string[] = [];
  const pools: pg.Pool[] = [];
  beforeAll(() => {
    for (let i = 0; i < 4; i += 1) pools.push(new pg.Pool({ connectionString: DATABASE_URL, max: 4 }));
  });
  afterAll(async () => {
    for (const schema of schemas) await pools[0]!.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await Promise.all(pools.map((pool) => pool.end()));
  });

  /** Opens one store per pool on a fresh schema, all at once. */
  async function openAll(): Promise<{ schema: string; stores: PostgresStore[] }> {
    const schema = `${run}_${schemas.length + 1}`;
    schemas.push(schema);
    const stores = await Promise.all(
      pools.map((pool) => PostgresStore.open({ sql: sqlClientFromPg(pool), schema })),
    );
    return { schema, stores };
  }

  it('migrates safely when several instances open the same new schema at once', async () => {
    const { schema, stores } = await openAll();
    const { rows } = await pools[0]!.query(`SELECT version FROM "${schema}".migrations ORDER BY version`);
    expect(rows).toEqual(JOURNAL_MIGRATIONS.map((migration) => ({ version: migration.version })));
    await stores[0]!.saveLink(linkOf('p-1', 'm-1'));
    expect(await stores[3]!.getLink('Patient', 'p-1')).toEqual(linkOf('p-1', 'm-1'));
  });

  it('says its leases exclude workers in other processes, which share the server', async () => {
    const { stores } = await openAll();
    expect(stores.every((store) => store.leasesAcrossProcesses)).toBe(true);
  });

  it('never leases one entry twice when four instances race to claim 200 entries', async () => {
    const { stores } = await openAll();
    const ids = Array.from({ length: 200 }, (_, i) => `p-${i}`);
    await Promise.all(ids.map(async (id) => stores[0]!.commit(await stores[0]!.intend(intentOf(id), HOUR))));
    const leases: Lease[] = [];
    await Promise.all(
      stores.map(async (store, worker) => {
        // Each worker claims small batches until the outbox has nothing left for it.
        for (;;) {
          const batch = await store.claim(`worker-${worker}`, 7, HOUR);
          if (batch.length === 0) return;
          leases.push(...batch);
        }
      }),
    );
    const entryIds = leases.map((lease) => lease.entry.id);
    expect(new Set(entryIds).size).toBe(entryIds.length);
    expect(entryIds).toHaveLength(200);
    expect(new Set(leases.map((lease) => lease.owner)).size).toBeGreaterThan(1);
  });

  it('never deadlocks completions with an application transaction recording intents in another order', async () => {
    const { stores } = await openAll();
    const store = stores[0]!;
    for (const id of ['a', 'b', 'c']) await store.commit(await store.intend(intentOf(id), HOUR));
    const leased = new Map(
      (await store.claim('worker-1', 3, HOUR)).map((lease) => [lease.entry.legacyId, lease]),
    );
    const lease = (id: string): Lease => leased.get(id)!;
    const app = await pools[1]!.connect();
    try {
      // The application's transaction records an intent for b with its own write, then for a.
      await app.query('BEGIN');
      const appStore = stores[1]!;
      const tx = queryableOf(app);
      await appStore.intendWithin(tx, intentOf('b'));
      // c goes first; a and b, asked for meanwhile, go together in one statement.
      const completions = Promise.all([
        store.complete(lease('c'), undefined),
        store.complete(lease('a'), undefined),
        store.complete(lease('b'), undefined),
      ]);
      // Give the completions time to reach the server and lock what they can.
      await new Promise((resolve) => setTimeout(resolve, 100));
      await appStore.intendWithin(tx, intentOf('a'));
      await app.query('COMMIT');
      // b waited for the application's commit, which moved its seq on: it is mirrored again.
      expect(await completions).toEqual(['done', 'done', 'requeued']);
    } finally {
      app.release();
    }
  });

  it('lets no completion wait behind an entry an application transaction holds', async () => {
    const { stores } = await openAll();
    const store = stores[0]!;
    for (const id of ['x', 'y']) await store.commit(await store.intend(intentOf(id), HOUR));
    const leased = new Map(
      (await store.claim('worker-1', 2, HOUR)).map((lease) => [lease.entry.legacyId, lease]),
    );
    const app = await pools[1]!.connect();
    try {
      await app.query('BEGIN');
      const tx = queryableOf(app);
      await stores[1]!.intendWithin(tx, intentOf('x'));
      const x = store.complete(leased.get('x')!, undefined);
      await new Promise((resolve) => setTimeout(resolve, 50));
      // x waits for the application's lock, outside the queue: y goes through meanwhile.
      expect(await store.complete(leased.get('y')!, undefined)).toBe('done');
      await app.query('COMMIT');
      expect(await x).toBe('requeued');
    } finally {
      app.release();
    }
  });

  it('lets no mark wait behind an entry an application transaction holds', async () => {
    const { stores } = await openAll();
    const store = stores[0]!;
    for (const id of ['x', 'y']) await store.commit(await store.intend(intentOf(id), HOUR));
    const leased = new Map(
      (await store.claim('worker-1', 2, HOUR)).map((lease) => [lease.entry.legacyId, lease]),
    );
    const app = await pools[1]!.connect();
    try {
      await app.query('BEGIN');
      await stores[1]!.intendWithin(queryableOf(app), intentOf('x'));
      // Asked for in one turn: x is skipped by the statement and waits on its own; y is marked.
      const x = store.markApplying(leased.get('x')!, 'sha256:x');
      expect(await store.markApplying(leased.get('y')!, 'sha256:y')).toBe(true);
      await app.query('COMMIT');
      expect(await x).toBe(true);
    } finally {
      app.release();
    }
    const byId = new Map((await store.listOutbox()).map((entry) => [entry.legacyId, entry.applyingHashes]));
    expect(byId.get('x')).toEqual(['sha256:x']);
    expect(byId.get('y')).toEqual(['sha256:y']);
  });

  it("sees another direction's lease committed during the statement, which the statement's snapshot misses", async () => {
    const { schema, stores } = await openAll();
    const store = stores[0]!;
    await store.commit(await store.intend(intentOf('p-1', { target: 'legacy' }), HOUR));
    const outbox = `"${schema}".outbox`;
    // One statement: its snapshot is taken, then it waits on an advisory lock the test holds
    // while another session leases the record's legacy entry and commits; then it asks both
    // ways. The lock makes the interleaving certain (a sleep lost the race at load 15-19).
    const gate = await pools[3]!.connect();
    try {
      const key = 0x5ee1ea5e;
      await gate.query('SELECT pg_catalog.pg_advisory_lock($1)', [key]);
      const asking = pools[0]!.query<{ snapshot: boolean; fresh: boolean }>(
        `SELECT EXISTS (SELECT 1 FROM ${outbox} WHERE target = 'legacy' AND lease_expires_at > clock_timestamp()) AS snapshot,
                "${schema}".other_direction_leased('Patient', 'p-1', 'medplum') AS fresh
         FROM (SELECT pg_catalog.pg_advisory_xact_lock(${key})) AS waited`,
      );
      // The statement has started (so taken its snapshot) once it waits for the lock.
      for (;;) {
        const { rows } = await gate.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_catalog.pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = $1`,
          [key],
        );
        if (rows[0]!.n > 0) break;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      expect(await stores[1]!.claim('worker-2', 1, HOUR)).toHaveLength(1);
      await gate.query('SELECT pg_catalog.pg_advisory_unlock($1)', [key]);
      const { rows } = await asking;
      expect(rows).toEqual([{ snapshot: false, fresh: true }]);
    } finally {
      gate.release();
    }
  });

  it('coalesces concurrent intents of one record into one entry', async () => {
    const { stores } = await openAll();
    const tickets = await Promise.all(
      Array.from({ length: 20 }, (_, i) => stores[i % 4]!.intend(intentOf('p-1'), HOUR)),
    );
    expect(new Set(tickets.map((ticket) => ticket.id)).size).toBe(1);
    expect(tickets.map((ticket) => ticket.seq).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    expect(await stores[0]!.listOutbox()).toHaveLength(1);
  });

  it('links a Medplum id to exactly one of several legacy ids saved at once', async () => {
    const { stores } = await openAll();
    const results = await Promise.allSettled(
      Array.from({ length: 12 }, (_, i) => stores[i % 4]!.saveLink(linkOf(`p-${i}`, 'm-1'))),
    );
    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
    const failures = results.flatMap((result) =>
      result.status === 'rejected' ? [result.reason as unknown] : [],
    );
    expect(failures).toHaveLength(11);
    for (const failure of failures) expect(failure).toBeInstanceOf(LinkConflictError);
  });
});

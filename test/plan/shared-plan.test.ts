import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CutoverPlan, MemoryStore, type Stage, type StageChange } from '../../src/index.ts';
import { JOURNAL_MIGRATIONS, migrate } from '../../src/journal/migrations/migrate.ts';
import { PostgresStore } from '../../src/journal/postgres-store.ts';
import { sqlClientFromPg } from '../../src/sql/pg-client.ts';

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

interface Ctx {
  clinic: string;
}
const unitOf = (ctx: Ctx): string => ctx.clinic;

/*
 * Several service instances share one plan through one PostgreSQL: each instance here has a
 * pool of its own (as separate processes would) on one schema per case.
 */
describe('CutoverPlan shared by instances on one PostgreSQL', () => {
  const run = `dw_plan_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const pools: pg.Pool[] = [];
  const schemas: string[] = [];
  beforeAll(() => {
    pools.push(...[1, 2, 3].map(() => new pg.Pool({ connectionString: DATABASE_URL, max: 2 })));
  });
  afterAll(async () => {
    for (const schema of schemas) await pools[0]?.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await Promise.all(pools.map((pool) => pool.end()));
  });

  /** One store per instance, all on a fresh schema. */
  async function instances(count: number): Promise<PostgresStore[]> {
    const schema = `${run}_${String(schemas.length + 1)}`;
    schemas.push(schema);
    const stores: PostgresStore[] = [];
    for (const pool of pools.slice(0, count))
      stores.push(await PostgresStore.open({ sql: sqlClientFromPg(pool), schema }));
    return stores;
  }

  it('does not split when two instances move two units within one refresh interval', async () => {
    const [storeA, storeB] = await instances(2);
    const a = new CutoverPlan<Ctx>({ default: 'legacy-only', unitOf });
    const b = new CutoverPlan<Ctx>({ default: 'legacy-only', unitOf });
    // Neither refreshes by itself during the case: the interleaving is the test's.
    await a.attach(storeA!, { refreshMs: 3_600_000 });
    await b.attach(storeB!, { refreshMs: 3_600_000 });
    try {
      await a.set('north', 'dual-write');
      await b.set('south', 'dual-write');
      await a.refresh();
      await b.refresh();
      for (const plan of [a, b]) {
        expect([plan.stageOf('north', 'Patient'), plan.stageOf('south', 'Patient')]).toEqual([
          'dual-write',
          'dual-write',
        ]);
      }
      expect(a.toJSON()).toEqual(b.toJSON());
      expect(await storeA!.loadPlan()).toEqual(a.toJSON());
    } finally {
      a.detach();
      b.detach();
    }
  });

  it('decides a move from the stage the store holds, not from a stale copy', async () => {
    const [storeA, storeB] = await instances(2);
    const a = new CutoverPlan<Ctx>({ default: 'dual-write', unitOf });
    const b = new CutoverPlan<Ctx>({ default: 'dual-write', unitOf });
    await a.attach(storeA!, { refreshMs: 3_600_000 });
    await b.attach(storeB!, { refreshMs: 3_600_000 });
    try {
      await a.set('north', 'shadow', { by: 'ops:a' });
      // B still sees dual-write; its move back is decided again from shadow, and recorded so.
      const change = await b.set('north', 'legacy-only', { by: 'ops:b' });
      expect(change).toMatchObject({ from: 'shadow', to: 'legacy-only' });
      // B's copy follows the store at once; a forward move from a stale copy is refused as the
      // stored stage says (shadow → medplum-only skips stages), not as B's copy did.
      await a.refresh();
      expect(a.stageOf('north', 'Patient')).toBe('legacy-only');
      expect((await a.history({ unit: 'north' })).map((c) => [c.from, c.to])).toEqual([
        ['shadow', 'legacy-only'],
        ['dual-write', 'shadow'],
      ]);
    } finally {
      a.detach();
      b.detach();
    }
  });

  it('converges when three instances move units concurrently, and each routes by the stored plan', async () => {
    const stores = await instances(3);
    const plans = stores.map(() => new CutoverPlan<Ctx>({ default: 'legacy-only', unitOf }));
    for (const [i, plan] of plans.entries()) await plan.attach(stores[i]!, { refreshMs: 50 });
    const units = ['north', 'south', 'east', 'west'];
    const path: Stage[] = ['dual-write', 'shadow', 'live', 'shadow', 'dual-write'];
    try {
      // Each instance walks a unit of its own along the path, and all three race on `west`.
      const changes = await Promise.all(
        plans.flatMap((plan, i) =>
          [units[i]!, 'west'].map(async (unit) => {
            const made: StageChange[] = [];
            for (const stage of path)
              made.push(await plan.set(unit, stage, { by: `instance-${String(i)}`, force: true }));
            return made;
          }),
        ),
      );
      const stored = (await stores[0]!.loadPlan())!;
      // Every instance routes by the stored plan once its refresh interval has passed.
      await vi.waitFor(
        () => {
          for (const plan of plans) expect(plan.toJSON()).toEqual(stored);
        },
        { timeout: 10_000, interval: 20 },
      );
      // Each recorded change moved from the stage the previous recorded change of its unit left.
      const history = await plans[0]!.history({ limit: 10_000 });
      expect(history).toHaveLength(changes.flat().length);
      expect(stored.revision).toBe(history.length + 1);
      for (const unit of units) {
        const ofUnit = history.filter((change) => change.unit === unit).reverse();
        let stage: Stage = 'legacy-only';
        for (const change of ofUnit) {
          expect(change.from).toBe(stage);
          stage = change.to;
        }
        expect(stored.units[unit]?.default).toBe(stage);
      }
    } finally {
      for (const plan of plans) plan.detach();
    }
  });

  it('stores and loads a unit named __proto__, and knows no unit named toString or constructor', async () => {
    const [storeA, storeB] = await instances(2);
    const a = new CutoverPlan<Ctx>({ default: 'legacy-only', unitOf });
    const b = new CutoverPlan<Ctx>({ default: 'legacy-only', unitOf });
    await a.attach(storeA!, { refreshMs: 3_600_000 });
    await b.attach(storeB!, { refreshMs: 3_600_000 });
    try {
      await a.set('__proto__', 'dual-write');
      await a.set('south', 'dual-write');
      await b.refresh();
      const stored = await storeB!.loadPlan();
      expect(Object.keys(stored?.units ?? {}).sort()).toEqual(['__proto__', 'south']);
      expect(b.stageOf('__proto__', 'Patient')).toBe('dual-write');
      expect(b.stageOf('toString', 'Patient')).toBe('legacy-only');
      expect(b.stageOf('constructor', 'Patient')).toBe('legacy-only');
      expect(b.toJSON()).toEqual(a.toJSON());
    } finally {
      a.detach();
      b.detach();
    }
  });

  it('carries a plan stored whole by an earlier version over to rows', async () => {
    const schema = `${run}_old`;
    schemas.push(schema);
    const sql = sqlClientFromPg(pools[0]!);
    await migrate(
      sql,
      schema,
      JOURNAL_MIGRATIONS.filter((migration) => migration.version < 10),
    );
    await sql.query(`INSERT INTO "${schema}".plan (id, plan) VALUES (1, $1::text::jsonb)`, [
      JSON.stringify({
        revision: 7,
        default: 'dual-write',
        units: {
          north: { default: 'shadow', resourceTypes: { Observation: 'legacy-only' } },
          south: { resourceTypes: {} },
        },
      }),
    ]);
    const store = await PostgresStore.open({ sql, schema });
    expect(await store.loadPlan()).toEqual({
      revision: 7,
      default: 'dual-write',
      units: { north: { default: 'shadow', resourceTypes: { Observation: 'legacy-only' } } },
    });
  });
});

describe('CutoverPlan attached to a store', () => {
  it('lets the store win over the code, seeding only what the store does not hold', async () => {
    const store = new MemoryStore();
    const first = new CutoverPlan<Ctx>({ default: 'legacy-only', units: { north: 'dual-write' }, unitOf });
    await first.attach(store, { refreshMs: 3_600_000 });
    await first.set('north', 'shadow');
    const later = new CutoverPlan<Ctx>({
      default: 'live',
      units: { north: 'dual-write', east: 'dual-write' },
      unitOf,
    });
    await later.attach(store, { refreshMs: 3_600_000 });
    try {
      expect(later.stageOf('north', 'Patient')).toBe('shadow');
      expect(later.stageOf('east', 'Patient')).toBe('dual-write');
      expect(later.stageOf('west', 'Patient')).toBe('legacy-only');
    } finally {
      first.detach();
      later.detach();
    }
  });

  it('reports a failed re-read and says it is stale until a re-read succeeds', async () => {
    const store = new MemoryStore();
    const plan = new CutoverPlan<Ctx>({ default: 'legacy-only', unitOf });
    await plan.attach(store, { refreshMs: 3_600_000 });
    const errors: unknown[] = [];
    plan.onRefreshError((error) => errors.push(error));
    expect(plan.status()).toMatchObject({ attached: true, revision: 1, stale: false });
    const outage = vi.spyOn(store, 'planRevision').mockRejectedValue(new Error('connection refused'));
    await expect(plan.refresh()).rejects.toThrow('connection refused');
    expect(errors).toHaveLength(1);
    expect(plan.status()).toMatchObject({ stale: true, revision: 1 });
    outage.mockRestore();
    await plan.refresh();
    expect(plan.status().stale).toBe(false);
    plan.detach();
  });

  it('leaves an instance on the stored plan when a change cannot be stored', async () => {
    const store = new MemoryStore();
    const plan = new CutoverPlan<Ctx>({ default: 'legacy-only', unitOf });
    await plan.attach(store, { refreshMs: 3_600_000 });
    vi.spyOn(store, 'changePlan').mockRejectedValueOnce(new Error('connection reset'));
    await expect(plan.set('north', 'dual-write')).rejects.toThrow('connection reset');
    expect(plan.stageOf('north', 'Patient')).toBe('legacy-only');
    plan.detach();
  });
});

import type { Patient } from '@medplum/fhirtypes';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLINIC_TABLE_SQL, clinicPatientMapping } from '../../examples/clinic-mapping.ts';
import {
  byResourceType,
  compareCopies,
  CutoverPlan,
  DualWriter,
  PostgresStore,
  PostgresTableAdapter,
  createMedplumClient,
  sqlClientFromPg,
  threeWayMerge,
  type DualWriteEvent,
  type PostgresTableRow,
} from '../../src/index.ts';
import { legacyIdOf } from '../../src/mapping/mapped-record.ts';
import { startFhirTestServer, type FhirTestServer } from '../../src/testing/index.ts';

/*
 * The active-active acceptance test: real PostgreSQL (the legacy table, with tombstones, and
 * the journal), the HTTP FHIR test server with faults, two units in different stages (north in
 * dual-write, south in live). Staff write through the service, and other staff write straight
 * into the legacy table and straight into Medplum, a few thousand changes in all, while the
 * writer's feeds and drainer run. Afterwards every record exists once on each side, the copies
 * agree, nothing ping-pongs, and every conflict was decided by the configured resolver.
 */
interface Ctx {
  readonly clinic: 'north' | 'south';
}

const RECORDS_PER_UNIT = 60;
const CHANGES = 2400;
const CONCURRENCY = 4;
const SYSTEM = 'https://clinic.example.org/active-active/patient-id';

describe('active-active sync on PostgreSQL: writes through the service and directly in both systems', () => {
  let server: FhirTestServer;
  let pool: pg.Pool;
  let schema: string;

  beforeAll(async () => {
    server = await startFhirTestServer({ seed: 11 });
    pool = new pg.Pool({
      connectionString: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
      max: 8,
    });
    schema = `dw_active_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
    await pool.query(`CREATE SCHEMA ${schema}`);
  });
  afterAll(async () => {
    await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await pool.query(`DROP SCHEMA IF EXISTS ${schema}_journal CASCADE`);
    await pool.end();
    await server.close();
  });

  it('ends with one agreeing copy per record on each side, no ping-pong, and every conflict resolved by the resolver', async () => {
    const sql = sqlClientFromPg(pool);
    await sql.query(CLINIC_TABLE_SQL(`${schema}.patients`));
    const legacy = new PostgresTableAdapter({
      sql,
      tables: { Patient: { table: 'patients', schema } },
      tombstones: { schema },
    });
    await legacy.installTombstones();
    const store = await PostgresStore.open({ sql, schema: `${schema}_journal` });
    const mapping = clinicPatientMapping(SYSTEM);
    const plan = new CutoverPlan<Ctx>({
      default: 'legacy-only',
      units: { north: 'dual-write', south: 'live' },
      unitOf: (ctx) => ctx.clinic,
    });
    const events: DualWriteEvent[] = [];
    let nextId = 1;
    const writer = new DualWriter<Ctx, PostgresTableRow>({
      legacy,
      medplum: createMedplumClient({ baseUrl: server.baseUrl }),
      mappings: [{ ...mapping, newLegacyId: () => String(nextId++) }],
      plan,
      store,
      mirror: 'async',
      resolver: byResourceType({ Patient: threeWayMerge({ onCollision: 'authority' }) }),
      retry: { retries: 4, minTimeoutMs: 2, maxTimeoutMs: 20 },
      drainer: { concurrency: 4, pollIntervalMs: 20, backoff: { minMs: 10, maxMs: 100 } },
      divergence: { verifySampleRate: 0 },
      feeds: {
        unitOf: (record) =>
          (record.row?.clinic as string | undefined) ??
          (record.resource as Patient | undefined)?.managingOrganization?.display,
        pollIntervalMs: 50,
        existenceCheckIntervalMs: 0,
      },
      onEvent: (event) => events.push(event),
    });
    const direct = createMedplumClient({ baseUrl: server.baseUrl });
    const units = ['north', 'south'] as const;

    // The records, created through the service in each unit's shape.
    const ids: { id: string; clinic: Ctx['clinic'] }[] = [];
    for (const clinic of units) {
      for (let i = 0; i < RECORDS_PER_UNIT; i++) {
        const id = String(nextId++);
        await writer.create(
          'Patient',
          {
            id: Number(id),
            clinic,
            first_name: 'Ada',
            last_name: `${clinic}-${String(i)}`,
            birth_date: '1815-12-10',
          },
          { clinic },
        );
        ids.push({ id, clinic });
      }
    }
    writer.start();
    server.faults.failShare(0.05, 503).serializationFailureShare(0.02);

    // The changes: a third through the service, a third in the legacy table, a third in Medplum.
    let made = 0;
    const tally = { service: 0, legacy: 0, medplum: 0, failed: 0 };
    const change = async (n: number): Promise<void> => {
      const { id, clinic } = ids[(n * 7919) % ids.length]!;
      const family = `v${String(n)}`;
      const kind = n % 3;
      try {
        if (kind === 0) {
          const row = await writer.read('Patient', id, { clinic });
          if (row === undefined) return;
          await writer.update('Patient', id, { ...row, last_name: family }, { clinic });
          tally.service++;
        } else if (kind === 1) {
          await sql.query(
            `UPDATE ${schema}.patients SET last_name = $1, version = version + 1, updated_at = clock_timestamp()
             WHERE id = $2`,
            [family, Number(id)],
          );
          tally.legacy++;
        } else {
          const [copy] = await direct.searchResources(
            'Patient',
            { identifier: `${SYSTEM}|${id}` },
            { cache: 'no-cache' },
          );
          if (copy === undefined) return;
          await direct.updateResource<Patient>({ ...copy, name: [{ ...copy.name?.[0], family }] });
          tally.medplum++;
        }
      } catch {
        tally.failed++; // a fault answered the direct call; that change simply did not happen
      }
    };
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (made < CHANGES) {
          // Medplum goes down for a moment halfway through.
          if (made === CHANGES / 2) server.faults.outage(500);
          await change(made++);
        }
      }),
    );

    // Quiesce: faults off, then feeds and drainer until a pass finds nothing new.
    server.faults.clear();
    await writer.stop();
    for (let round = 0; round < 20; round++) {
      const report = await writer.pollFeeds();
      await writer.drain({ timeoutMs: 60_000 });
      if (report.queued === 0 && round > 0) break;
    }
    const appliedBefore = applied(events);
    const echoesBefore = writer.feedCounts().echoes;
    for (let pass = 0; pass < 3; pass++) {
      expect(await writer.pollFeeds()).toMatchObject({ queued: 0 });
      await writer.drain({ timeoutMs: 10_000 });
    }
    // No ping-pong: further passes see only the writer's own mirrors, and mirror nothing.
    expect(applied(events)).toBe(appliedBefore);
    expect(writer.feedCounts().echoes).toBeGreaterThan(echoesBefore);
    expect(await writer.outbox()).toEqual({ pending: 0, leased: 0, dead: 0 });

    // Every record exists once on each side, and the copies agree after normalisation.
    const copies = await direct.searchResources(
      'Patient',
      { identifier: `${SYSTEM}|`, _count: '1000' },
      { cache: 'no-cache' },
    );
    const byId = new Map<string, Patient>();
    for (const copy of copies) {
      const id = legacyIdOf(copy, SYSTEM)!;
      expect(byId.has(id)).toBe(false);
      byId.set(id, copy);
    }
    expect(byId.size).toBe(ids.length);
    const { rows } = await pool.query<{ n: number }>(`SELECT count(*)::integer AS n FROM ${schema}.patients`);
    expect(rows[0]?.n).toBe(ids.length);
    const disagreements: string[] = [];
    for (const { id } of ids) {
      const record = await legacy.read('Patient', id);
      const differences = compareCopies(mapping, id, record, byId.get(id), 'legacy');
      if (differences.length > 0) disagreements.push(`${id}: ${differences.map((d) => d.path).join(', ')}`);
    }
    expect(disagreements).toEqual([]);

    // Each mirror applied at most once per change beyond retries: no more applied mirrors than
    // changes made (feeds coalesce several changes of a record into one mirror).
    const changes = ids.length + tally.service + tally.legacy + tally.medplum;
    expect(applied(events)).toBeLessThanOrEqual(changes);
    // Every conflict was decided by the configured resolver, and its decision written.
    const conflicts = events.filter((event) => event.type === 'conflict');
    expect(conflicts.length).toBeGreaterThan(0);
    expect(new Set(conflicts.map((event) => event.resolvedBy))).toEqual(new Set(['three-way-merge']));
    expect(events.filter((event) => event.type === 'resolved')).toHaveLength(conflicts.length);
    expect(await writer.deadLetters()).toEqual([]);
    console.log(
      JSON.stringify({
        records: ids.length,
        changes: { ...tally, total: changes },
        applied: applied(events),
        conflicts: conflicts.length,
        echoes: writer.feedCounts().echoes,
        feeds: writer.feedCounts(),
        faults: server.faults.stats.injected,
      }),
    );
    await store.close();
  }, 600_000);
});

/** Mirrors that changed the other side: inline ones and drained ones. */
function applied(events: readonly DualWriteEvent[]): number {
  return events.filter(
    (event) =>
      (event.type === 'mirrored' && event.mirror === 'applied') ||
      (event.type === 'drained' && event.outcome === 'applied'),
  ).length;
}

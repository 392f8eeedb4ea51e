/**
 * Promises 2 and 4 with two drainers in two processes sharing one PostgreSQL journal. The
 * parent writes versions 1…N of M records in `async` mode without a drainer of its own, so
 * entries pile up and coalesce, while two drain processes apply them; then the outbox is
 * drained to empty. Each record ends with one Medplum copy at version N whose history never
 * goes backwards, and no entry was applied by both workers, or by both at once.
 *
 * Two shapes of drainer: leases that outlast every mirror, and leases shorter than a slow
 * Medplum's mirrors take, so that entries a worker claimed in a batch expire in its queue and
 * the other worker claims them again.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Patient } from '@medplum/fhirtypes';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLINIC_TABLE_SQL, clinicPatientMapping } from '../../examples/clinic-mapping.ts';
import {
  CutoverPlan,
  DualWriter,
  PostgresStore,
  PostgresTableAdapter,
  createMedplumClient,
  sqlClientFromPg,
  type PostgresTableRow,
} from '../../src/index.ts';
import { startFhirTestServer, type FhirTestServer } from '../../src/testing/index.ts';
import type { DrainProcessConfig } from './workers/drain-process.ts';
import { DrainWorker } from './workers/drain-worker.ts';
import type { LeaseReport } from './workers/lease-log.ts';
import { copiesByLegacyId, historyOf } from './workers/medplum-copies.ts';

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

interface Scenario {
  readonly name: string;
  readonly records: number;
  readonly versions: number;
  readonly drainer: DrainProcessConfig['drainer'];
  /** Each Medplum request waits this long first. */
  readonly latencyMs: { readonly minMs: number; readonly maxMs: number };
  /** Share of Medplum requests answered 503. */
  readonly unavailable: number;
}

const scenarios: readonly Scenario[] = [
  {
    name: 'leases that outlast every mirror',
    records: 50,
    versions: 20,
    drainer: { concurrency: 4, batchSize: 4, leaseMs: 30_000 },
    latencyMs: { minMs: 1, maxMs: 15 },
    unavailable: 0.05,
  },
  {
    // A worker claims 16 entries and runs them one at a time, each mirror taking 200–400 ms, so
    // its queue outlasts the lease: queued leases must be renewed, and those whose renewal meets
    // a terminated backend expire and are claimed by the other worker. (A lease of 2 s, not
    // shorter: a request's limit is a third of it, and it must outlast the server's latency on a
    // loaded machine, or every request times out and nothing is applied.)
    name: 'leases that expire in a worker’s queue while Medplum is slow',
    records: 40,
    versions: 2,
    drainer: { concurrency: 1, batchSize: 16, leaseMs: 2_000 },
    latencyMs: { minMs: 100, maxMs: 200 },
    unavailable: 0,
  },
];

interface Ctx {
  readonly clinic: string;
}

function rowOf(id: number, version: number): PostgresTableRow {
  return {
    id,
    clinic: 'north',
    first_name: `v${version}`,
    last_name: `Record${id}`,
    notes: `version ${version}`,
  };
}

/** The version a Medplum copy carries in its given name. */
function versionOf(patient: Patient): number {
  return Number(/^v(\d+)$/.exec(patient.name?.[0]?.given?.[0] ?? '')?.[1] ?? Number.NaN);
}

for (const scenario of scenarios) {
  describe(`two drain processes sharing one PostgreSQL journal, with ${scenario.name}`, () => {
    const suffix = `${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
    const schema = `dw_workers_${suffix}`;
    const table = `dw_workers_patients_${suffix}`;
    const system = `https://workers.example.org/${suffix}/patient-id`;
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 8 });
    let server: FhirTestServer;
    let store: PostgresStore;
    let workers: DrainWorker[] = [];
    let copies = new Map<string, Patient[]>();
    /** Each record's versions in its Medplum history, oldest first. */
    const histories = new Map<string, number[]>();
    /** Backends of the drain processes terminated during the run. */
    let terminated = 0;
    let stopTerminating = (): void => undefined;

    beforeAll(async () => {
      const started = Date.now();
      server = await startFhirTestServer({ seed: 42 });
      server.faults
        .latency(scenario.latencyMs)
        .failShare(scenario.unavailable, 503)
        .serializationFailureShare(0.03);
      await pool.query(CLINIC_TABLE_SQL(table));
      const sql = sqlClientFromPg(pool);
      store = await PostgresStore.open({ sql, schema });
      const writer = new DualWriter<Ctx, PostgresTableRow>({
        legacy: new PostgresTableAdapter({ sql, tables: { Patient: { table } } }),
        medplum: createMedplumClient({ baseUrl: server.baseUrl }),
        mappings: [clinicPatientMapping(system)],
        plan: new CutoverPlan<Ctx>({ default: 'dual-write', unitOf: (ctx) => ctx.clinic }),
        store,
        mirror: 'async',
      });
      const ids = Array.from({ length: scenario.records }, (_, i) => i + 1);
      const ctx: Ctx = { clinic: 'north' };

      await Promise.all(ids.map((id) => writer.create('Patient', rowOf(id, 1), ctx)));
      workers = ['worker-a', 'worker-b'].map(
        (workerId) =>
          new DrainWorker({
            workerId,
            databaseUrl: DATABASE_URL,
            schema,
            table,
            baseUrl: server.baseUrl,
            identifierSystem: system,
            drainer: scenario.drainer,
          }),
      );
      await Promise.all(workers.map((worker) => worker.ready));
      // The drainers' PostgreSQL backends are terminated every 250 ms while they work: every
      // statement, transaction and lease renewal may meet a 57P01 or a lost connection, which
      // must be retried, never dead-lettered, and must not crash a drain process.
      const terminating = setInterval(() => {
        void pool
          .query<{ n: number }>(
            `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
             WHERE application_name = $1 AND pid <> pg_backend_pid()`,
            [schema],
          )
          .then(({ rows }) => (terminated += rows[0]?.n ?? 0))
          .catch(() => undefined);
      }, 250);
      stopTerminating = () => clearInterval(terminating);
      for (let version = 2; version <= scenario.versions; version++) {
        await Promise.all(ids.map((id) => writer.update('Patient', String(id), rowOf(id, version), ctx)));
        // Let the workers take some entries between versions, so that some versions are applied
        // and others coalesce.
        await sleep(40);
      }
      // A limit for a hung drain, not a measure of speed: generous, for a loaded machine.
      const deadline = Date.now() + 150_000;
      for (let counts = await store.outboxCounts(); counts.pending + counts.leased > 0;) {
        if (Date.now() > deadline) {
          const { rows: held } = await pool.query(
            `SELECT legacy_id, seq, attempts, lease_owner,
                    round(extract(epoch FROM lease_expires_at - clock_timestamp()))::int AS expires_in_s
               FROM ${schema}.outbox WHERE NOT (lease_expires_at IS NULL OR lease_expires_at <= clock_timestamp())`,
          );
          throw new Error(
            `the workers did not drain the outbox: ${JSON.stringify(counts)}; leased: ${JSON.stringify(held)}; ` +
              workers.map((worker) => `${worker.id} stderr: ${worker.stderr.slice(-2000)}`).join('; '),
          );
        }
        await sleep(50);
        counts = await store.outboxCounts();
      }
      stopTerminating();
      await Promise.all(workers.map((worker) => worker.stop()));
      const last = await writer.drain({ timeoutMs: 30_000 });
      server.faults.clear();

      const medplum = createMedplumClient({ baseUrl: server.baseUrl });
      copies = await copiesByLegacyId(medplum, system);
      for (const [legacyId, [copy]] of copies) {
        histories.set(legacyId, (await historyOf(medplum, copy?.id ?? '')).map(versionOf));
      }
      const leases = workers.flatMap((worker) => worker.leases);
      console.log(
        JSON.stringify({
          scenario: scenario.name,
          records: scenario.records,
          writes: scenario.records * scenario.versions,
          appliedPerWorker: Object.fromEntries(workers.map((worker) => [worker.id, worker.applied.length])),
          leasesPerWorker: Object.fromEntries(workers.map((worker) => [worker.id, worker.leases.length])),
          outcomes: Object.fromEntries(
            ['done', 'requeued', 'fenced'].map((outcome) => [
              outcome,
              leases.filter((l) => l.outcome === outcome).length,
            ]),
          ),
          retried: leases.filter((lease) => lease.finish === 'retryLater').length,
          medplumCopies: [...copies.values()].reduce((sum, list) => sum + list.length, 0),
          medplumVersionsPerRecord:
            [...histories.values()].reduce((sum, list) => sum + list.length, 0) / scenario.records,
          lastDrain: { applied: last.applied, remaining: last.remaining },
          terminatedBackends: terminated,
          deadLetters: (await store.listDeadLetters()).map(({ legacyId, reason }) => ({ legacyId, reason })),
          faults: server.faults.stats.injected,
          seconds: (Date.now() - started) / 1000,
        }),
      );
    }, 240_000);

    afterAll(async () => {
      stopTerminating();
      // Cleanup goes on whatever state the workers are in; their failures were reported above.
      await Promise.allSettled(workers.map((worker) => worker.stop()));
      await pool.query(`drop schema if exists ${schema} cascade`);
      await pool.query(`drop table if exists ${table}`);
      await pool.end();
      await server.close();
    });

    it("terminated the drainers' PostgreSQL backends while they worked", () => {
      expect(terminated).toBeGreaterThan(0);
    });

    it('leaves nothing pending, leased or dead-lettered', async () => {
      expect(await store.outboxCounts()).toEqual({ pending: 0, leased: 0, dead: 0 });
    });

    it('keeps exactly one Medplum copy per record', () => {
      expect(copies.size).toBe(scenario.records);
      expect([...copies].filter(([, list]) => list.length !== 1).map(([id]) => id)).toEqual([]);
    });

    it('ends every copy at the last version written', () => {
      const stale = [...copies].filter(([, list]) =>
        list.some((copy) => versionOf(copy) !== scenario.versions),
      );
      expect(stale.map(([id]) => id)).toEqual([]);
    });

    it("never moves a copy's version backwards in its Medplum history", () => {
      const backwards = [...histories].filter(([, versions]) =>
        versions.some((version, i) => i > 0 && version <= versions[i - 1]!),
      );
      expect(backwards.map(([id, versions]) => `${id}: ${versions.join(', ')}`)).toEqual([]);
    });

    it('applies no entry (id and seq) in both workers', () => {
      const appliedBy = new Map<string, string[]>();
      for (const lease of workers.flatMap((worker) => worker.applied)) {
        const key = `${lease.entryId}:${String(lease.seq)}`;
        appliedBy.set(key, [...(appliedBy.get(key) ?? []), lease.worker]);
      }
      expect([...appliedBy].filter(([, by]) => by.length > 1)).toEqual([]);
    });

    it('never lets the two workers work on one record at the same time', () => {
      // Every lease counts, fenced ones too: a worker whose lease was taken over still ran the
      // mirror it had claimed, unless it checked the lease first.
      const byRecord = new Map<string, LeaseReport[]>();
      for (const lease of workers.flatMap((worker) => worker.leases)) {
        byRecord.set(lease.record, [...(byRecord.get(lease.record) ?? []), lease]);
      }
      const overlaps: string[] = [];
      for (const [record, leases] of byRecord) {
        leases.sort((a, b) => a.claimedAt - b.claimedAt);
        for (let i = 1; i < leases.length; i++) {
          const before = leases[i - 1]!;
          const after = leases[i]!;
          if (after.claimedAt < before.finishingAt) {
            overlaps.push(
              `${record}: ${before.worker} (${before.outcome}) until ${before.finishingAt}, ${after.worker} from ${after.claimedAt}`,
            );
          }
        }
      }
      expect(overlaps).toEqual([]);
    });

    it('shares the work between the two workers', () => {
      for (const worker of workers) expect(worker.applied.length, worker.id).toBeGreaterThan(0);
    });
  });
}

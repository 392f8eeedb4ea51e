/**
 * One reconciliation of the bench in a process of its own (`node reconcile-child.ts <records>
 * <journal>`, forked by `reconcile-compare.ts`, answering one {@link ReconcileRun} over IPC): a
 * PGlite legacy table, the in-process HTTP FHIR test server (its resources put straight into its
 * repository) and a journal holding a link per record at the versions both sides hold, so every
 * record agrees on cheap facts. The journal is a `MemoryStore` (`memory`) or a `PostgresStore` on
 * the server at `DATABASE_URL` in the schema named (its links inserted in bulk): there the process
 * holds none of it, as in production. The rate counts legacy records compared per second of the
 * whole reconciliation (all passes). Forked with `--expose-gc`, so that heap figures follow a
 * full collection.
 */
import { PGlite } from '@electric-sql/pglite';
import { parseSearchRequest } from '@medplum/core';
import type { Patient } from '@medplum/fhirtypes';
import pg from 'pg';
import {
  MemoryStore,
  PostgresStore,
  PostgresTableAdapter,
  createMedplumClient,
  reconcile,
  sqlClientFromPg,
  sqlClientFromPglite,
  type Link,
  type SyncStore,
} from '../src/index.ts';
import { startFhirTestServer } from '../src/testing/index.ts';
import { CLINIC_TABLE_SQL } from '../examples/clinic-mapping.ts';
import { BENCH_SYSTEM, benchMapping } from './clinic-patients.ts';

/** What one run measured. */
export interface ReconcileRun {
  readonly records: number;
  readonly agreed: number;
  readonly seconds: number;
  readonly requests: number;
  /** RSS once both sides and the links were seeded, after a full collection where exposed. */
  readonly seededRss: number;
  /** The highest RSS sampled (every 20 ms) while reconciling. */
  readonly peakRss: number;
  /** The highest V8 heap in use (garbage included) and ArrayBuffer/external memory (PGlite's WebAssembly memory) sampled while reconciling. */
  readonly peakHeap: number;
  readonly peakExternal: number;
  /** ArrayBuffer/external memory once seeded. */
  readonly seededExternal: number;
  /** V8 heap in use once seeded, after a full collection. */
  readonly seededHeap: number;
  /** V8 heap in use after the reconciliation, after a full collection: what it kept. */
  readonly retainedHeap: number;
}

async function run(records: number, journal: string): Promise<ReconcileRun> {
  const server = await startFhirTestServer();
  const db = new PGlite();
  const pool =
    journal === 'memory'
      ? undefined
      : new pg.Pool({
          connectionString: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
          max: 4,
        });
  try {
    await db.exec(CLINIC_TABLE_SQL('patients'));
    await db.query(
      `INSERT INTO patients (clinic, first_name, last_name) SELECT 'north', 'F' || n, 'L' || n FROM generate_series(1, $1) AS n`,
      [records],
    );
    const store: SyncStore =
      pool === undefined
        ? new MemoryStore()
        : await PostgresStore.open({ sql: sqlClientFromPg(pool), schema: journal });
    let links: Link[] = [];
    const saveLinks = async (): Promise<void> => {
      if (pool === undefined) for (const link of links) await store.saveLink(link);
      else await insertLinks(pool, journal, links);
      links = [];
    };
    for (let n = 1; n <= records; n += 1) {
      const patient = await server.repo.createResource<Patient>({
        resourceType: 'Patient',
        identifier: [{ system: BENCH_SYSTEM, value: String(n) }],
        name: [{ given: [`F${n}`], family: `L${n}` }],
        managingOrganization: { display: 'north' },
      });
      links.push({
        resourceType: 'Patient',
        legacyId: String(n),
        medplumId: patient.id,
        legacyVersion: '1',
        medplumVersion: patient.meta?.versionId,
        contentHash: 'bench',
        syncedAt: new Date().toISOString(),
      });
      if (links.length === 5000) await saveLinks();
    }
    await saveLinks();
    const legacy = new PostgresTableAdapter({
      sql: sqlClientFromPglite(db),
      tables: { Patient: { table: 'patients' } },
    });
    // A Medplum server pages `_sort=_lastUpdated` on an index it keeps in PostgreSQL; the test
    // server builds its stand-in on the first such search (a sorted array of every resource: 3
    // MB and 0.3 s at 100,000). Built here, it counts as seeded, not as the reconciliation's.
    await server.repo.search(parseSearchRequest('Patient?_sort=_lastUpdated&_count=1'));
    const gc = (globalThis as { gc?: () => void }).gc;
    if (gc === undefined) throw new Error('run with --expose-gc: heap figures need a full collection');
    gc();
    const seededRss = process.memoryUsage.rss();
    const seededHeap = process.memoryUsage().heapUsed;
    const requestsBefore = server.requests;
    const seededExternal = process.memoryUsage().external;
    let peakRss = seededRss;
    let peakHeap = seededHeap;
    let peakExternal = seededExternal;
    const sampler = setInterval(() => {
      const usage = process.memoryUsage();
      peakRss = Math.max(peakRss, usage.rss);
      peakHeap = Math.max(peakHeap, usage.heapUsed);
      peakExternal = Math.max(peakExternal, usage.external);
    }, 20);
    const started = performance.now();
    const report = await reconcile(
      { store, legacy, medplum: createMedplumClient({ baseUrl: server.baseUrl }), mappings: [benchMapping] },
      { resourceType: 'Patient', unit: 'north', direction: 'to-medplum', pageSize: 1000 },
    );
    const seconds = (performance.now() - started) / 1000;
    clearInterval(sampler);
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
    gc();
    const retainedHeap = process.memoryUsage().heapUsed;
    return {
      records,
      agreed: report.counts.agree ?? 0,
      seconds,
      requests: server.requests - requestsBefore,
      seededRss,
      peakRss,
      peakHeap,
      peakExternal,
      seededExternal,
      seededHeap,
      retainedHeap,
    };
  } finally {
    await db.close();
    await server.close();
    await pool?.end();
  }
}

/** Links straight into the journal's table, 5,000 a statement (`saveLink` takes one each). */
async function insertLinks(pool: pg.Pool, schema: string, links: readonly Link[]): Promise<void> {
  await pool.query(
    `INSERT INTO "${schema}".links (resource_type, legacy_id, medplum_id, legacy_version, medplum_version, content_hash, synced_at)
     SELECT 'Patient', l, m, '1', v, 'bench', now() FROM unnest($1::text[], $2::text[], $3::text[]) AS t(l, m, v)`,
    [
      links.map((link) => link.legacyId),
      links.map((link) => link.medplumId),
      links.map((link) => link.medplumVersion ?? null),
    ],
  );
}

const records = Number(process.argv[2]);
if (!Number.isSafeInteger(records) || records < 1)
  throw new Error(`records: a positive integer, got ${process.argv[2]}`);
const journal = process.argv[3] ?? 'memory';
if (!/^[a-z_][a-z0-9_]*$/.test(journal)) throw new Error('journal: memory, or a schema name');
process.send?.(await run(records, journal));
process.disconnect();

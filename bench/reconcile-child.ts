/**
 * One reconciliation of the bench in a process of its own (`node reconcile-child.ts <records>`,
 * forked by `reconcile-compare.ts`, answering one {@link ReconcileRun} over IPC): a PGlite legacy
 * table, the in-process HTTP FHIR test server (its resources put straight into its repository)
 * and a `MemoryStore` holding a link per record at the versions both sides hold, so every
 * record agrees on cheap facts. The rate counts legacy records compared per second of the whole
 * reconciliation (both passes). Forked with `--expose-gc`, so that heap figures follow a full
 * collection.
 */
import { PGlite } from '@electric-sql/pglite';
import { parseSearchRequest } from '@medplum/core';
import type { Patient } from '@medplum/fhirtypes';
import {
  MemoryStore,
  PostgresTableAdapter,
  createMedplumClient,
  reconcile,
  sqlClientFromPglite,
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
  /** V8 heap in use once seeded, after a full collection. */
  readonly seededHeap: number;
  /** V8 heap in use after the reconciliation, after a full collection: what it kept. */
  readonly retainedHeap: number;
}

async function run(records: number): Promise<ReconcileRun> {
  const server = await startFhirTestServer();
  const db = new PGlite();
  try {
    await db.exec(CLINIC_TABLE_SQL('patients'));
    await db.query(
      `INSERT INTO patients (clinic, first_name, last_name) SELECT 'north', 'F' || n, 'L' || n FROM generate_series(1, $1) AS n`,
      [records],
    );
    const store = new MemoryStore();
    for (let n = 1; n <= records; n += 1) {
      const patient = await server.repo.createResource<Patient>({
        resourceType: 'Patient',
        identifier: [{ system: BENCH_SYSTEM, value: String(n) }],
        name: [{ given: [`F${n}`], family: `L${n}` }],
        managingOrganization: { display: 'north' },
      });
      await store.saveLink({
        resourceType: 'Patient',
        legacyId: String(n),
        medplumId: patient.id,
        legacyVersion: '1',
        medplumVersion: patient.meta?.versionId,
        contentHash: 'bench',
        syncedAt: new Date().toISOString(),
      });
    }
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
    let peakRss = seededRss;
    const sampler = setInterval(() => {
      peakRss = Math.max(peakRss, process.memoryUsage.rss());
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
      seededHeap,
      retainedHeap,
    };
  } finally {
    await db.close();
    await server.close();
  }
}

const records = Number(process.argv[2]);
if (!Number.isSafeInteger(records) || records < 1)
  throw new Error(`records: a positive integer, got ${process.argv[2]}`);
process.send?.(await run(records));
process.disconnect();

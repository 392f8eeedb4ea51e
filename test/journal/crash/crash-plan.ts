/**
 * The crash test's deterministic write plan, rows and mapping, shared by the parent (which
 * checks the end state against the plan) and the writer processes (which run slices of it).
 *
 * The plan is a list of batches. The writes of one batch run concurrently and touch distinct
 * records, and every update targets a record created in an earlier batch. A process killed
 * inside a batch therefore leaves each of that batch's records either at its previous state or
 * at the batch's state, and the next process re-issues the whole batch: a legitimate replay.
 */
import type { Patient } from '@medplum/fhirtypes';
import { clinicPatientMapping } from '../../../examples/clinic-mapping.ts';
import type { PostgresTableRow, ResourceMapping } from '../../../src/index.ts';
import { mulberry32 } from '../../../src/testing/seeded-random.ts';

/** One planned write: the record's id and the version its row carries after the write. */
export interface PlannedWrite {
  readonly kind: 'create' | 'update';
  readonly id: number;
  readonly version: number;
}

/** How big a plan is, and the seed that shapes it. */
export interface CrashPlanOptions {
  readonly seed: number;
  /** Batches in the plan. */
  readonly batches: number;
  /** Concurrent writes per batch, each on a distinct record. */
  readonly batchSize: number;
  /** Records to create (ids 1…records). */
  readonly records: number;
}

/** The whole plan. */
export interface CrashPlan {
  readonly batches: readonly (readonly PlannedWrite[])[];
  /** Every record's final version, by id. */
  readonly finalVersions: ReadonlyMap<number, number>;
  readonly writes: number;
}

/** How many of the first records take half of all updates. */
const HOT_RECORDS = 40;

/** Records whose mapping yields an invalid FHIR value: Medplum answers 400, for good. */
export function isPoisoned(id: number | string): boolean {
  return String(id).endsWith('13');
}

/**
 * Builds the plan from a seed.
 *
 * @param options - Seed, number of batches, writes per batch, and how many records to create.
 * @returns The plan.
 */
export function crashPlan(options: CrashPlanOptions): CrashPlan {
  const random = mulberry32(options.seed);
  const versions = new Map<number, number>();
  const batches: PlannedWrite[][] = [];
  let nextId = 1;
  let writes = 0;
  for (let b = 0; b < options.batches; b++) {
    const existing = [...versions.keys()];
    const batch: PlannedWrite[] = [];
    const touched = new Set<number>();
    // Creates are front-loaded so later batches are mostly updates of existing records.
    const createShare = Math.max(0.15, 1 - b / (options.batches * 0.6));
    for (let slot = 0; slot < options.batchSize; slot++) {
      const create =
        nextId <= options.records && (existing.length < options.batchSize || random() < createShare);
      if (create) {
        const id = nextId++;
        touched.add(id);
        batch.push({ kind: 'create', id, version: 1 });
        continue;
      }
      for (let tries = 0; tries < 10; tries++) {
        // Half the updates go to a few hot records, so that a record is often written again
        // while an earlier mirror of it is still failing, backing off or leased by a dead process.
        const pool = random() < 0.5 ? existing.slice(0, HOT_RECORDS) : existing;
        const id = pool[Math.floor(random() * pool.length)];
        if (id === undefined || touched.has(id)) continue;
        touched.add(id);
        batch.push({ kind: 'update', id, version: (versions.get(id) ?? 0) + 1 });
        break;
      }
    }
    for (const write of batch) versions.set(write.id, write.version);
    writes += batch.length;
    batches.push(batch);
  }
  return { batches, finalVersions: versions, writes };
}

/**
 * The legacy row of a record at a version. The version shows in the given name (mapped) and
 * in the notes (legacy-only); the birth date changes every third version.
 *
 * @param id - The record's id.
 * @param version - The version.
 * @returns The row.
 */
export function rowOf(id: number, version: number): PostgresTableRow {
  const month = String(1 + ((id + Math.floor(version / 3)) % 12)).padStart(2, '0');
  const day = String(1 + (id % 28)).padStart(2, '0');
  return {
    id,
    clinic: id % 3 === 0 ? 'south' : 'north',
    first_name: `Given${id}-v${version}`,
    last_name: `Family${id}`,
    birth_date: `19${String(40 + (id % 60))}-${month}-${day}`,
    notes: `legacy note ${version}`,
  };
}

/**
 * The demo clinic's Patient mapping, except that a poisoned record's birth date becomes
 * `not-a-date`: the server's validation rejects it with a 400, a permanent failure whose dead
 * letters the test can predict.
 *
 * @param identifierSystem - The identifier system of this run.
 * @returns The mapping.
 */
export function crashMapping(identifierSystem: string): ResourceMapping<PostgresTableRow, Patient> {
  const base = clinicPatientMapping(identifierSystem);
  return {
    ...base,
    toFhir: (row, existing) => {
      const patient = base.toFhir(row, existing, {});
      return isPoisoned(String(row.id)) ? { ...patient, birthDate: 'not-a-date' } : patient;
    },
  };
}

/** The table of the legacy system, as in the demo clinic. */
export { CLINIC_TABLE_SQL } from '../../../examples/clinic-mapping.ts';

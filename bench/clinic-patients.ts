import type { Patient } from '@medplum/fhirtypes';
import { clinicPatientMapping } from '../examples/clinic-mapping.ts';
import type { PostgresTableRow, ResourceMapping } from '../src/index.ts';

/** The identifier system the bench's Patients carry their legacy id under. */
export const BENCH_SYSTEM = 'https://clinic.example.org/bench/patient-id';

/** The demo's clinic mapping: the same rows and resources the demo and integration tests use. */
export const benchMapping: ResourceMapping<PostgresTableRow, Patient> = clinicPatientMapping(BENCH_SYSTEM);

const FIRST = ['Ada', 'Grace', 'Katherine', 'Mary', 'Dorothy', 'Hedy', 'Radia', 'Frances'];
const LAST = ['Lovelace', 'Hopper', 'Johnson', 'Jackson', 'Vaughan', 'Lamarr', 'Perlman', 'Allen'];

/**
 * A clinic row with a caller-assigned id, so ours and the baseline insert the same kind of row
 * and the writer journals its intent before the legacy write (the durable path).
 *
 * @param id - The legacy id.
 * @returns The row.
 */
export function patientRow(id: number): PostgresTableRow {
  return {
    id,
    clinic: 'north',
    first_name: FIRST[id % FIRST.length]!,
    last_name: `${LAST[(id * 7) % LAST.length]!}-${id}`,
    birth_date: `19${String(40 + (id % 60)).padStart(2, '0')}-0${1 + (id % 9)}-1${id % 10}`,
    notes: 'registered at the desk',
  };
}

/**
 * The Patient the writer mirrors for a row: the mapping's output carrying the legacy id, which
 * is exactly what a direct Medplum write of the same record sends.
 *
 * @param row - The row (with its id).
 * @returns The resource.
 */
export function patientResource(row: PostgresTableRow): Patient {
  const patient = benchMapping.toFhir(row, undefined, {});
  return { ...patient, identifier: [{ system: BENCH_SYSTEM, value: String(row.id) }] };
}

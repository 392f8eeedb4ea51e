/**
 * The mapping between the demo clinic's `patients` table and FHIR Patient: names, birth date
 * and the clinic as the managing organisation's display. The `notes` column stays legacy-only.
 */
import type { Patient } from '@medplum/fhirtypes';
import { MappingError, type PostgresTableRow, type ResourceMapping } from '../src/index.ts';

/** The table the demo creates in the legacy database. */
export const CLINIC_TABLE_SQL = (table: string): string => `
  create table ${table} (
    id serial primary key,
    clinic text not null,
    first_name text not null,
    last_name text not null,
    birth_date date,
    notes text,
    version integer not null default 1,
    updated_at timestamptz not null default clock_timestamp()
  )`;

/**
 * Builds the Patient mapping for one identifier system (the demo uses a fresh system per run
 * so that repeated runs against one Medplum project never meet each other's records).
 *
 * @param identifierSystem - Where the legacy id lives on the FHIR side.
 * @returns The mapping.
 */
export function clinicPatientMapping(identifierSystem: string): ResourceMapping<PostgresTableRow, Patient> {
  return {
    resourceType: 'Patient',
    identifierSystem,
    legacyId: (row) =>
      typeof row.id === 'number' || typeof row.id === 'string' ? String(row.id) : undefined,
    withLegacyId: (row, id) => ({ ...row, id: Number(id) }),
    toFhir: (row, existing) => {
      if (typeof row.last_name !== 'string' || row.last_name === '')
        throw new MappingError('last_name', 'is required');
      const patient: Patient = {
        ...existing,
        resourceType: 'Patient',
        name: [{ given: [String(row.first_name)], family: row.last_name }],
        managingOrganization: { display: String(row.clinic) },
      };
      if (typeof row.birth_date === 'string') patient.birthDate = row.birth_date;
      else delete patient.birthDate;
      return patient;
    },
    toLegacy: (patient, existing) => ({
      ...existing,
      clinic: patient.managingOrganization?.display ?? existing?.clinic,
      first_name: patient.name?.[0]?.given?.[0] ?? '',
      last_name: patient.name?.[0]?.family ?? '',
      birth_date: patient.birthDate ?? null,
    }),
  };
}

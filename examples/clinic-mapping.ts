/**
 * The mapping between the demo clinic's `patients` table and FHIR Patient: names, birth date
 * and the clinic as the managing organisation's display. The `notes` column stays legacy-only.
 */
import type { Patient } from '@medplum/fhirtypes';
import { MappingError, type ResourceMapping } from '../src/index.ts';
import type { ClinicRow, ClinicTable } from './migration/legacy-database.ts';
import { postgresTableSql } from './migration/legacy-postgres.ts';

/** The clinic's patients (OpenEMR's `patient_data`), declared once for every SQL dialect. */
export const PATIENTS_TABLE: ClinicTable = {
  name: 'patients',
  resourceType: 'Patient',
  columns: {
    clinic: { kind: 'text' },
    first_name: { kind: 'text' },
    last_name: { kind: 'text' },
    birth_date: { kind: 'date', nullable: true },
    notes: { kind: 'text', nullable: true },
  },
};

/** The patients table's `create table` in PostgreSQL. */
export const CLINIC_TABLE_SQL = (table: string): string => postgresTableSql(table, PATIENTS_TABLE);

/**
 * Builds the Patient mapping for one identifier system (the demo uses a fresh system per run
 * so that repeated runs against one Medplum project never meet each other's records).
 *
 * @param identifierSystem - Where the legacy id lives on the FHIR side.
 * @returns The mapping.
 */
export function clinicPatientMapping(identifierSystem: string): ResourceMapping<ClinicRow, Patient> {
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

import type { Patient } from '@medplum/fhirtypes';
import { MappingError, type ResourceMapping } from '../../src/index.ts';

/** A legacy clinic's patient row: `notes` is a legacy-only column no mapping touches. */
export interface PatientRow {
  id?: string;
  first_name: string;
  last_name: string;
  birth_date?: string | null;
  notes?: string | null;
}

export const PATIENT_SYSTEM = 'https://legacy.example.org/patient-id';

/** The mapping used across the suite: names and birth date, nothing else. */
export const patientMapping: ResourceMapping<PatientRow, Patient> = {
  resourceType: 'Patient',
  identifierSystem: PATIENT_SYSTEM,
  legacyId: (row) => row.id,
  withLegacyId: (row, id) => ({ ...row, id }),
  toFhir: (row, existing) => {
    if (typeof row.last_name !== 'string' || row.last_name === '')
      throw new MappingError('last_name', 'is required');
    const patient: Patient = {
      ...existing,
      resourceType: 'Patient',
      name: [{ given: [row.first_name], family: row.last_name }],
    };
    if (row.birth_date) patient.birthDate = row.birth_date;
    else delete patient.birthDate;
    return patient;
  },
  toLegacy: (patient, existing) => ({
    ...existing,
    first_name: patient.name?.[0]?.given?.[0] ?? '',
    last_name: patient.name?.[0]?.family ?? '',
    birth_date: patient.birthDate ?? null,
  }),
};

/**
 * The mappings of the demo clinic's tables: `patients` to FHIR Patient (names, birth date and
 * the clinic as the managing organisation's display; the `notes` column stays legacy-only),
 * `encounters` to Encounter and `vitals` to Observation, each pointing at its patient (and a
 * vital sign at its encounter) by legacy key.
 */
import type { Encounter, Observation, Patient } from '@medplum/fhirtypes';
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

/** The clinic's encounters (OpenEMR's `form_encounter`): one visit of a patient (`pid`). */
export const ENCOUNTERS_TABLE: ClinicTable = {
  name: 'encounters',
  resourceType: 'Encounter',
  columns: {
    clinic: { kind: 'text' },
    pid: { kind: 'integer' },
    date: { kind: 'text' },
    reason: { kind: 'text' },
  },
};

/** The clinic's vitals (OpenEMR's `form_vitals`): one measurement (`pulse` or `weight`) taken at an encounter. */
export const VITALS_TABLE: ClinicTable = {
  name: 'vitals',
  resourceType: 'Observation',
  columns: {
    clinic: { kind: 'text' },
    pid: { kind: 'integer' },
    encounter: { kind: 'integer' },
    kind: { kind: 'text' },
    value: { kind: 'integer' },
  },
};

/** The vital signs the demo records: LOINC code and UCUM unit per legacy `kind`. */
export const VITAL_SIGNS = {
  pulse: { code: '8867-4', display: 'Heart rate', unit: '/min' },
  weight: { code: '29463-7', display: 'Body weight', unit: 'kg' },
} as const;

/**
 * The elements of a vital sign Observation that its mapping writes: the vital-signs category,
 * the LOINC code, the value in its UCUM unit and the clinic as performer. The demo's Medplum
 * app records vitals with the same elements, so that their copies read back equal.
 *
 * @param sign - One of {@link VITAL_SIGNS}.
 * @param value - The measurement.
 * @param clinic - The clinic.
 * @returns The elements.
 * @example
 * const pulse = { resourceType: 'Observation', status: 'final', ...vitalSign(VITAL_SIGNS.pulse, 72, 'north') };
 */
export function vitalSign(
  sign: (typeof VITAL_SIGNS)[keyof typeof VITAL_SIGNS],
  value: number,
  clinic: string,
): Pick<Observation, 'category' | 'code' | 'valueQuantity' | 'performer'> {
  return {
    category: [
      {
        coding: [
          { system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' },
        ],
      },
    ],
    code: { coding: [{ system: 'http://loinc.org', code: sign.code, display: sign.display }] },
    valueQuantity: { value, unit: sign.unit, system: 'http://unitsofmeasure.org', code: sign.unit },
    performer: [{ display: clinic }],
  };
}

const legacyIdOf = (row: ClinicRow): string | undefined =>
  typeof row.id === 'number' || typeof row.id === 'string' ? String(row.id) : undefined;
const keyOf = (value: unknown): string | undefined =>
  typeof value === 'number' || typeof value === 'string' ? String(value) : undefined;

/**
 * Builds the Encounter mapping: `pid` is the patient's legacy key, `Encounter.subject` its
 * Medplum copy (resolved and placed by the library); the clinic is the service provider.
 *
 * @param identifierSystem - Where the encounter's legacy id lives on the FHIR side.
 * @returns The mapping.
 */
export function clinicEncounterMapping(
  identifierSystem: string,
): ResourceMapping<ClinicRow, Encounter, 'subject'> {
  return {
    resourceType: 'Encounter',
    identifierSystem,
    legacyId: legacyIdOf,
    withLegacyId: (row, id) => ({ ...row, id: Number(id) }),
    references: { subject: { resourceType: 'Patient', legacyKey: (row) => keyOf(row.pid) } },
    toFhir: (row, existing) => {
      if (typeof row.date !== 'string') throw new MappingError('date', 'is required');
      return {
        ...existing,
        resourceType: 'Encounter',
        status: 'finished',
        class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
        period: { start: row.date },
        reasonCode: [{ text: String(row.reason) }],
        serviceProvider: { display: String(row.clinic) },
      };
    },
    toLegacy: (encounter, existing, { subject }) => ({
      ...existing,
      clinic: encounter.serviceProvider?.display ?? existing?.clinic,
      pid: Number(subject),
      date: encounter.period?.start?.slice(0, 10) ?? existing?.date,
      reason: encounter.reasonCode?.[0]?.text ?? '',
    }),
  };
}

/**
 * Builds the vital signs mapping: one legacy measurement is one Observation (LOINC code, UCUM
 * unit) whose `subject` is the patient's copy and whose `encounter` is the encounter's.
 *
 * @param identifierSystem - Where the measurement's legacy id lives on the FHIR side.
 * @returns The mapping.
 */
export function clinicVitalsMapping(
  identifierSystem: string,
): ResourceMapping<ClinicRow, Observation, 'subject' | 'encounter'> {
  return {
    resourceType: 'Observation',
    identifierSystem,
    legacyId: legacyIdOf,
    withLegacyId: (row, id) => ({ ...row, id: Number(id) }),
    references: {
      subject: { resourceType: 'Patient', legacyKey: (row) => keyOf(row.pid) },
      encounter: { resourceType: 'Encounter', legacyKey: (row) => keyOf(row.encounter) },
    },
    toFhir: (row, existing) => {
      const sign = VITAL_SIGNS[row.kind as keyof typeof VITAL_SIGNS] as
        (typeof VITAL_SIGNS)[keyof typeof VITAL_SIGNS] | undefined;
      if (sign === undefined) throw new MappingError('kind', 'is not a known vital sign');
      return {
        ...existing,
        resourceType: 'Observation',
        status: 'final',
        ...vitalSign(sign, Number(row.value), String(row.clinic)),
      };
    },
    toLegacy: (observation, existing, { subject, encounter }) => {
      const code = observation.code.coding?.[0]?.code;
      const kind = Object.entries(VITAL_SIGNS).find(([, sign]) => sign.code === code)?.[0];
      return {
        ...existing,
        clinic: observation.performer?.[0]?.display ?? existing?.clinic,
        pid: Number(subject),
        encounter: Number(encounter),
        kind: kind ?? existing?.kind,
        value: observation.valueQuantity?.value ?? existing?.value,
      };
    },
  };
}

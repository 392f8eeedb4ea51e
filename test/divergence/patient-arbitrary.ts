import type { Patient } from '@medplum/fhirtypes';
import fc from 'fast-check';
import type { NormaliseOptions } from '../../src/divergence/normalise.ts';

/** The options a FHIR deployment would plausibly configure; properties run with and without them. */
export const fhirOptions: NormaliseOptions = {
  ignore: ['extension', 'name.period'],
  unordered: ['identifier', 'telecom', 'address', 'name'],
  dateTimePrecision: 'millisecond',
};

/** Every option shape the properties run under. */
export const optionSets: readonly (NormaliseOptions | undefined)[] = [
  undefined,
  fhirOptions,
  { dateTimePrecision: 'second' },
  { unordered: ['name.given', 'telecom'] },
];

/** Writes an instant as FHIR allows: `Z` or an offset, with 0–9 fraction digits or none. */
export function formatInstant(time: number, offsetMinutes: number, fraction: string, zulu: boolean): string {
  const local = new Date(time + offsetMinutes * 60_000).toISOString().slice(0, 19);
  const sign = offsetMinutes < 0 ? '-' : '+';
  const abs = Math.abs(offsetMinutes);
  const zone =
    zulu && offsetMinutes === 0
      ? 'Z'
      : `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
  return `${local}${fraction === '' ? '' : `.${fraction}`}${zone}`;
}

/** A moment and the many strings that write it. */
export const instant = fc.record({
  time: fc.integer({ min: Date.UTC(1900, 0, 1), max: Date.UTC(2100, 0, 1) }),
  offsetMinutes: fc.constantFrom(0, 60, -300, 330, 840, -720),
  fraction: fc.stringMatching(/^\d{0,9}$/),
  zulu: fc.boolean(),
});

const instantString = instant.map(({ time, offsetMinutes, fraction, zulu }) =>
  formatInstant(time, offsetMinutes, fraction, zulu),
);

// Few distinct values, so generated copies often agree on a field and sometimes differ.
const word = fc.constantFrom('', 'Jane', 'Q', 'Doe', 'Smith', 'Ann');
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });

const humanName = fc.record(
  {
    use: fc.constantFrom('official', 'usual', 'maiden'),
    family: word,
    given: fc.array(word, { maxLength: 3 }),
    period: fc.record({ start: instantString }, { requiredKeys: [] }),
  },
  { requiredKeys: [] },
);

const contactPoint = fc.record(
  {
    system: fc.constantFrom('phone', 'email'),
    value: fc.constantFrom('555-0100', '555-0199', 'j@example.org', ''),
    use: fc.constantFrom('home', 'work'),
  },
  { requiredKeys: [] },
);

const address = fc.record(
  {
    line: fc.array(fc.constantFrom('1 Main St', 'Apt 2', ''), { maxLength: 2 }),
    city: fc.constantFrom('Springfield', 'Shelbyville'),
    postalCode: fc.constantFrom('62701', '62702'),
  },
  { requiredKeys: [] },
);

const identifier = fc.record({
  system: fc.constantFrom('urn:legacy', 'http://hl7.org/fhir/sid/us-ssn'),
  value: fc.constantFrom('L1', 'L2', '123-45-6789'),
});

/** FHIR-like Patients: names, telecom, birth date, address, identifiers, bookkeeping, noise. */
export const patient: fc.Arbitrary<Patient> = fc
  .record(
    {
      id: fc.constantFrom('p1', 'p2'),
      meta: fc.record({ versionId: fc.constantFrom('1', '2'), lastUpdated: instantString }),
      text: fc.record({
        status: fc.constantFrom('generated' as const, 'additional' as const),
        div: fc.constant('<div xmlns="http://www.w3.org/1999/xhtml">Jane</div>'),
      }),
      identifier: fc.array(identifier, { maxLength: 3 }),
      active: fc.boolean(),
      name: fc.array(humanName, { maxLength: 3 }),
      telecom: fc.array(contactPoint, { maxLength: 3 }),
      gender: fc.constantFrom('female' as const, 'male' as const, 'other' as const, 'unknown' as const),
      birthDate: fc.constantFrom('1980-05-06', '1980-06-05', '1980', ''),
      deceasedDateTime: instantString,
      address: fc.array(address, { maxLength: 2 }),
      maritalStatus: fc.record(
        {
          coding: fc.array(fc.record({ system: fc.constant('urn:ms'), code: fc.constantFrom('M', 'S') }), {
            maxLength: 1,
          }),
          text: maybe(word),
        },
        { requiredKeys: [] },
      ),
      extension: fc.array(fc.record({ url: fc.constant('urn:x'), valueString: word }), { maxLength: 2 }),
    },
    { requiredKeys: [] },
  )
  .map((fields) => ({ resourceType: 'Patient' as const, ...fields }) as Patient);

/** The top-level fields a Patient from {@link patient} may have, besides `resourceType`. */
export const patientFields = [
  'id',
  'meta',
  'text',
  'identifier',
  'active',
  'name',
  'telecom',
  'gender',
  'birthDate',
  'deceasedDateTime',
  'address',
  'maritalStatus',
  'extension',
] as const;

/**
 * `target` with the listed fields taken from `source` (removed where `source` lacks them).
 *
 * @param target - The resource to start from.
 * @param source - Where the fields come from.
 * @param fields - The fields to take.
 * @returns A new resource.
 */
export function withFields(target: Patient, source: Patient, fields: readonly string[]): Patient {
  const from = source as unknown as Record<string, unknown>;
  const kept = Object.entries(target).filter(([field]) => !fields.includes(field));
  const taken = fields.filter((field) => field in from).map((field) => [field, from[field]] as const);
  const out = Object.fromEntries([...kept, ...taken]);
  return out as unknown as Patient;
}

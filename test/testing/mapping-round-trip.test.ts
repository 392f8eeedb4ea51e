import type { Patient } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import type { ResourceMapping } from '../../src/mapping/resource-mapping.ts';
import { checkMappingRoundTrip } from '../../src/testing/mapping-round-trip.ts';

type Row = Record<string, unknown>;

const faithful: ResourceMapping<Row, Patient> = {
  resourceType: 'Patient',
  identifierSystem: 'https://legacy.example.org/pid',
  legacyId: (row) => (typeof row.pid === 'number' ? String(row.pid) : undefined),
  toFhir: (row, existing) => ({
    ...existing,
    resourceType: 'Patient',
    name: [{ ...existing?.name?.[0], given: [String(row.fname)], family: String(row.lname) }],
    gender: row.sex === 'F' ? 'female' : row.sex === 'M' ? 'male' : 'unknown',
  }),
  toLegacy: (patient, existing) => ({
    ...existing,
    fname: patient.name?.[0]?.given?.[0] ?? '',
    lname: patient.name?.[0]?.family ?? '',
    sex: patient.gender === 'female' ? 'F' : patient.gender === 'male' ? 'M' : 'U',
  }),
};

const row: Row = { pid: 7, fname: 'Ada', lname: 'Lovelace', sex: 'F', ss: '123-45-6789' };
const patient: Patient = {
  resourceType: 'Patient',
  id: 'abc',
  name: [{ given: ['Ada'], family: 'Lovelace' }],
  gender: 'female',
  telecom: [{ system: 'phone', value: '555-0100' }],
};

describe('checkMappingRoundTrip', () => {
  it('passes a mapping that carries its fields both ways and spreads existing', () => {
    const report = checkMappingRoundTrip(faithful, { rows: [row], resources: [patient] });
    expect(report.findings.filter((finding) => !finding.check.endsWith('-unmapped'))).toEqual([]);
    expect(report.ok).toBe(true);
    // Informational: the row's `ss` and the resource's telecom survive only through existing.
    expect(report.findings).toContainEqual({
      sample: 'rows[0]',
      check: 'row-unmapped',
      path: 'ss',
      kind: 'removed',
    });
    expect(report.findings).toContainEqual(
      expect.objectContaining({ sample: 'resources[0]', check: 'resource-unmapped', path: 'telecom' }),
    );
  });

  it('flags a mapping that sets a field the row does not carry (always name.use)', () => {
    const always: ResourceMapping<Row, Patient> = {
      ...faithful,
      toFhir: (r, existing) => {
        const fhir = faithful.toFhir(r, existing, {});
        return { ...fhir, name: (fhir.name ?? []).map((name) => ({ ...name, use: 'official' as const })) };
      },
    };
    const report = checkMappingRoundTrip(always, { resources: [patient] });
    expect(report.ok).toBe(false);
    expect(report.findings).toContainEqual({
      sample: 'resources[0]',
      check: 'resource-round-trip',
      path: 'name[0].use',
      kind: 'added',
    });
  });

  it("flags a value rewritten on the way ('F' read as other, written back as 'U')", () => {
    const lossy: ResourceMapping<Row, Patient> = {
      ...faithful,
      toFhir: (r, existing) => ({
        ...faithful.toFhir(r, existing, {}),
        gender: r.sex === 'M' ? 'male' : 'other',
      }),
    };
    const report = checkMappingRoundTrip(lossy, { rows: [row] });
    expect(report.findings).toContainEqual({
      sample: 'rows[0]',
      check: 'row-round-trip',
      path: 'sex',
      kind: 'changed',
    });
  });

  it('flags what a mirror would wipe when the mapping does not spread existing', () => {
    const wiping: ResourceMapping<Row, Patient> = {
      ...faithful,
      toFhir: (r) => faithful.toFhir(r, undefined, {}),
      toLegacy: (p) => faithful.toLegacy(p, undefined, {}),
    };
    const report = checkMappingRoundTrip(wiping, { rows: [row], resources: [patient] });
    expect(report.ok).toBe(false);
    const paths = (check: string) =>
      report.findings.filter((finding) => finding.check === check).map((finding) => finding.path);
    expect(paths('wipes-existing-resource')).toEqual(expect.arrayContaining(['telecom', 'extension']));
    expect(paths('wipes-existing-row')).toEqual(expect.arrayContaining(['pid', 'ss']));
  });

  it("takes a field the mapping writes, cleared for an empty column (a NULL DOB), for the mapping's to clear, not a wipe", () => {
    const withBirthDate: ResourceMapping<Row, Patient> = {
      ...faithful,
      toFhir: (r, existing) => {
        const { birthDate: _cleared, ...fhir } = faithful.toFhir(r, existing, {});
        return typeof r.DOB === 'string' ? { ...fhir, birthDate: r.DOB } : fhir;
      },
      toLegacy: (p, existing) => ({ ...faithful.toLegacy(p, existing, {}), DOB: p.birthDate ?? null }),
    };
    const samples = {
      rows: [
        { ...row, DOB: '1815-12-10' },
        { ...row, pid: 8, DOB: null },
      ],
      resources: [
        {
          ...patient,
          birthDate: '1815-12-10',
          name: [{ use: 'official' as const, given: ['Ada'], family: 'L' }],
        },
        { ...patient, id: 'def' },
      ],
    };
    const report = checkMappingRoundTrip(withBirthDate, samples);
    expect(report.findings.filter((finding) => finding.check.startsWith('wipes-'))).toEqual([]);
    expect(report.ok).toBe(true);
    // What it writes is its own to clear; what it does not write (name.use) is still a wipe.
    const rebuildsName: ResourceMapping<Row, Patient> = {
      ...withBirthDate,
      toFhir: (r, existing) => ({
        ...withBirthDate.toFhir(r, existing, {}),
        name: [{ given: [String(r.fname)], family: String(r.lname) }],
      }),
    };
    expect(checkMappingRoundTrip(rebuildsName, samples).findings).toContainEqual({
      sample: 'rows[1]',
      check: 'wipes-existing-resource',
      path: 'name[0].use',
      kind: 'removed',
    });
  });

  it('flags a row without a legacy id', () => {
    const report = checkMappingRoundTrip(faithful, { rows: [{ fname: 'Ada', lname: 'L', sex: 'F' }] });
    expect(report.findings).toContainEqual({
      sample: 'rows[0]',
      check: 'missing-legacy-id',
      path: '',
      kind: 'removed',
    });
  });

  it('reports paths, never values', () => {
    const wiping: ResourceMapping<Row, Patient> = {
      ...faithful,
      toFhir: (r) => faithful.toFhir(r, undefined, {}),
    };
    const text = JSON.stringify(checkMappingRoundTrip(wiping, { rows: [row], resources: [patient] }));
    for (const value of ['Lovelace', '555-0100', '123-45-6789', 'Ada']) expect(text).not.toContain(value);
  });
});

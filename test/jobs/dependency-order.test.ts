import type { Encounter, Observation } from '@medplum/fhirtypes';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryStore, backfillInOrder, dependencyOrder, type ResourceMapping } from '../../src/index.ts';
import {
  ENCOUNTER_SYSTEM,
  PATIENT_SYSTEM,
  VITALS_SYSTEM,
  copyOf,
  encounters,
  patients,
  startClinic,
  vitals,
  type Clinic,
  type ClinicRow,
} from '../references/clinic-fixture.ts';

let clinic: Clinic | undefined;
afterEach(async () => {
  await clinic?.close();
  clinic = undefined;
});

const mappings = [vitals, encounters, patients] as unknown as readonly ResourceMapping<ClinicRow>[];

describe('dependency order', () => {
  it('puts every type after the types its references point at, otherwise in the order given', () => {
    expect(dependencyOrder(mappings)).toEqual(['Patient', 'Encounter', 'Observation']);
    expect(dependencyOrder(mappings.slice(1))).toEqual(['Patient', 'Encounter']);
  });

  it('ignores a type that points at itself, and refuses a cycle between types, naming them', () => {
    const organisations = {
      ...patients,
      resourceType: 'Organization',
      references: { partOf: { resourceType: 'Organization', legacyKey: () => undefined } },
    } as unknown as ResourceMapping<ClinicRow>;
    expect(dependencyOrder([organisations, ...mappings])).toEqual([
      'Organization',
      'Patient',
      'Encounter',
      'Observation',
    ]);
    const cyclicPatients = {
      ...patients,
      references: { generalPractitioner: { resourceType: 'Encounter', legacyKey: () => undefined } },
    } as unknown as ResourceMapping<ClinicRow>;
    expect(() => dependencyOrder([vitals, encounters, cyclicPatients] as never)).toThrow(
      /references form a cycle among Observation, Encounter, Patient/,
    );
  });

  it('puts a record part right after its owner, and the group after every type any of them points at', () => {
    // A Coverage drawn from the patient rows' insurance columns, pointing at its payor.
    const payors = { ...patients, resourceType: 'Organization' } as unknown as ResourceMapping<ClinicRow>;
    const coverage = {
      ...patients,
      resourceType: 'Coverage',
      partOf: 'Patient',
      references: {
        beneficiary: { resourceType: 'Patient', legacyKey: () => undefined },
        payor: { resourceType: 'Organization', legacyKey: () => undefined },
      },
    } as unknown as ResourceMapping<ClinicRow>;
    // A part that declares no reference to its owner follows it all the same.
    const guardians = {
      ...patients,
      resourceType: 'RelatedPerson',
      partOf: 'Patient',
    } as unknown as ResourceMapping<ClinicRow>;
    // The parts given first, the payors last: the owner waits for its part's payor, the parts
    // follow their owner before anything else, the Encounter points at the patient group.
    expect(dependencyOrder([guardians, coverage, vitals, encounters, patients, payors] as never)).toEqual([
      'Organization',
      'Patient',
      'RelatedPerson',
      'Coverage',
      'Encounter',
      'Observation',
    ]);
    // A type that points at a part comes after the part's owner (and so after the part).
    const consent = {
      ...patients,
      resourceType: 'Consent',
      references: { performer: { resourceType: 'RelatedPerson', legacyKey: () => undefined } },
    } as unknown as ResourceMapping<ClinicRow>;
    expect(dependencyOrder([consent, guardians, patients] as never)).toEqual([
      'Patient',
      'RelatedPerson',
      'Consent',
    ]);
    // A part whose references lead back to its owner's group through another type is a cycle.
    const cyclicCoverage = {
      ...coverage,
      references: { payor: { resourceType: 'Encounter', legacyKey: () => undefined } },
    } as unknown as ResourceMapping<ClinicRow>;
    expect(() => dependencyOrder([patients, cyclicCoverage, encounters] as never)).toThrow(
      /references form a cycle among Patient, Coverage, Encounter/,
    );
  });

  it('backfillInOrder without types backfills the mapped types in that order: every reference lands on its linked copy', async () => {
    const store = new MemoryStore();
    clinic = await startClinic(store);
    const c = clinic;
    for (let i = 0; i < 3; i += 1) {
      await c.legacy.create('Patient', { id: `p${i}`, name: `Name${i}` });
      await c.legacy.create('Encounter', {
        id: `e${i}`,
        patient_id: `p${i}`,
        date: '2024-05-0' + String(i + 1),
      });
      await c.legacy.create('Observation', {
        id: `v${i}`,
        patient_id: `p${i}`,
        encounter_id: `e${i}`,
        pulse: 60 + i,
      });
    }
    const jobs = await backfillInOrder(
      { store, legacy: c.legacy, medplum: c.direct, mappings },
      { unit: 'north', direction: 'to-medplum', drain: () => c.writer.drain() },
    );
    expect(jobs.map((job) => [job.resourceType, job.state, job.counts.created])).toEqual([
      ['Patient', 'done', 3],
      ['Encounter', 'done', 3],
      ['Observation', 'done', 3],
    ]);
    // Each type was mirrored after the types it points at: nothing had to wait for a link.
    const mirrored = c.events.flatMap((event) =>
      event.type === 'drained' && event.outcome === 'applied' ? [event.resourceType] : [],
    );
    const thrice = (type: string): string[] => [type, type, type];
    expect(mirrored).toEqual([...thrice('Patient'), ...thrice('Encounter'), ...thrice('Observation')]);
    expect(await c.writer.deadLetters()).toEqual([]);
    for (let i = 0; i < 3; i += 1) {
      const patient = await copyOf(c.direct, 'Patient', PATIENT_SYSTEM, `p${i}`);
      const encounter = await copyOf<Encounter>(c.direct, 'Encounter', ENCOUNTER_SYSTEM, `e${i}`);
      const observation = await copyOf<Observation>(c.direct, 'Observation', VITALS_SYSTEM, `v${i}`);
      expect(encounter?.subject?.reference).toBe(`Patient/${patient?.id ?? ''}`);
      expect(observation?.subject?.reference).toBe(`Patient/${patient?.id ?? ''}`);
      expect(observation?.encounter?.reference).toBe(`Encounter/${encounter?.id ?? ''}`);
    }
  });
});

import type { DiagnosticReport, Encounter, Observation, Practitioner } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import type { ResourceMapping, Stage } from '../../src/index.ts';
import {
  ENCOUNTER_SYSTEM,
  PATIENT_SYSTEM,
  VITALS_SYSTEM,
  copyOf,
  journalBackends,
  patients,
  vitals,
  useSystems,
  type PatientRow,
  type Systems,
  type VitalsRow,
} from './clinic-fixture.ts';

/*
 * References in lists and nested elements: an encounter's providers
 * (`Encounter.participant[].individual`, nested) and a report's results
 * (`DiagnosticReport.result[]`, a list), each row keeping the keys as a list.
 */

interface ProviderRow {
  id?: string;
  name: string;
}
interface VisitRow {
  id?: string;
  patient_id: string;
  provider_ids: string[];
  date: string;
}
interface ReportRow {
  id?: string;
  patient_id: string;
  result_ids: string[];
}
type Row = PatientRow | VitalsRow | ProviderRow | VisitRow | ReportRow;

const PROVIDER_SYSTEM = 'https://clinic.example.org/provider';
const REPORT_SYSTEM = 'https://clinic.example.org/report';
const AMB = { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' };

const providers: ResourceMapping<ProviderRow, Practitioner> = {
  resourceType: 'Practitioner',
  identifierSystem: PROVIDER_SYSTEM,
  legacyId: (row) => row.id,
  withLegacyId: (row, id) => ({ ...row, id }),
  toFhir: (row, existing) => ({ ...existing, resourceType: 'Practitioner', name: [{ family: row.name }] }),
  toLegacy: (practitioner, existing) => ({ ...existing, name: practitioner.name?.[0]?.family ?? '' }),
};

const visits: ResourceMapping<VisitRow, Encounter, 'subject' | 'participant.individual'> = {
  resourceType: 'Encounter',
  identifierSystem: ENCOUNTER_SYSTEM,
  legacyId: (row) => row.id,
  withLegacyId: (row, id) => ({ ...row, id }),
  references: {
    subject: { resourceType: 'Patient', legacyKey: (row) => row.patient_id },
    'participant.individual': { resourceType: 'Practitioner', legacyKey: (row) => row.provider_ids },
  },
  // A nested path is placed by the mapping, from the references it receives, in the row's order.
  toFhir: (row, existing, references) => ({
    ...existing,
    resourceType: 'Encounter',
    status: 'finished',
    class: AMB,
    period: { start: row.date },
    participant: references['participant.individual'].map((individual) => ({ individual })),
  }),
  toLegacy: (encounter, existing, keys) => ({
    ...existing,
    patient_id: keys.subject ?? '',
    provider_ids: [...keys['participant.individual']],
    date: encounter.period?.start ?? '',
  }),
};

const reports: ResourceMapping<ReportRow, DiagnosticReport, 'subject' | 'result'> = {
  resourceType: 'DiagnosticReport',
  identifierSystem: REPORT_SYSTEM,
  legacyId: (row) => row.id,
  withLegacyId: (row, id) => ({ ...row, id }),
  references: {
    subject: { resourceType: 'Patient', legacyKey: (row) => row.patient_id },
    result: { resourceType: 'Observation', legacyKey: (row) => row.result_ids },
  },
  // A top-level list is placed by the library, like a single reference.
  toFhir: (row, existing) => ({
    ...existing,
    resourceType: 'DiagnosticReport',
    status: 'final',
    code: { text: 'vitals' },
  }),
  toLegacy: (_report, existing, keys) => ({
    ...existing,
    patient_id: keys.subject ?? '',
    result_ids: [...(keys.result ?? [])],
  }),
};

const north = { unit: 'north' };

for (const backend of journalBackends) {
  describe(`references in lists and nested elements, with a PostgresStore on ${backend.name}`, () => {
    const journal = useSystems<Row>(backend);
    let clinic: Systems<Row>;
    const startClinic = async (
      _store: unknown,
      stage: Stage = 'dual-write',
      encounterMapping: ResourceMapping<VisitRow, Encounter, 'subject' | 'participant.individual'> = visits,
    ): Promise<Systems<Row>> =>
      (clinic = await journal.start(
        [patients, providers, encounterMapping, vitals, reports] as ResourceMapping<Row>[],
        {
          stage,
        },
      ));

    /** A patient, two providers and two vitals, created in legacy. */
    async function people(c: Systems<Row>): Promise<void> {
      await c.writer.create('Patient', { id: 'p1', name: 'Lovelace' }, north);
      await c.writer.create('Practitioner', { id: 'd1', name: 'Blackwell' }, north);
      await c.writer.create('Practitioner', { id: 'd2', name: 'Apgar' }, north);
      for (const id of ['v1', 'v2'])
        await c.writer.create('Observation', { id, patient_id: 'p1', encounter_id: '', pulse: 70 }, north);
    }

    it('mirrors nested and listed references from the row’s keys, in order, to the linked Medplum copies', async () => {
      clinic = await startClinic(journal.store);
      const { writer, direct } = clinic;
      await people(clinic);
      await writer.create(
        'Encounter',
        { id: 'e1', patient_id: 'p1', provider_ids: ['d2', 'd1'], date: '2026-12-01' },
        north,
      );
      await writer.create(
        'DiagnosticReport',
        { id: 'r1', patient_id: 'p1', result_ids: ['v1', 'v2'] },
        north,
      );
      expect(await writer.drain({ timeoutMs: 10_000 })).toMatchObject({ deadLettered: 0, timedOut: false });

      const d1 = await copyOf<Practitioner>(direct, 'Practitioner', PROVIDER_SYSTEM, 'd1');
      const d2 = await copyOf<Practitioner>(direct, 'Practitioner', PROVIDER_SYSTEM, 'd2');
      const v1 = await copyOf<Observation>(direct, 'Observation', VITALS_SYSTEM, 'v1');
      const v2 = await copyOf<Observation>(direct, 'Observation', VITALS_SYSTEM, 'v2');
      const encounter = await copyOf<Encounter>(direct, 'Encounter', ENCOUNTER_SYSTEM, 'e1');
      expect(encounter?.participant).toEqual([
        { individual: { reference: `Practitioner/${d2?.id}` } },
        { individual: { reference: `Practitioner/${d1?.id}` } },
      ]);
      const report = await copyOf<DiagnosticReport>(direct, 'DiagnosticReport', REPORT_SYSTEM, 'r1');
      expect(report?.result).toEqual([
        { reference: `Observation/${v1?.id}` },
        { reference: `Observation/${v2?.id}` },
      ]);
      await writer.settled();
      expect(clinic.events.filter((event) => event.type === 'divergence')).toEqual([]);
    });

    it('waits for the one provider of a list that has no Medplum copy yet, then writes them all', async () => {
      clinic = await startClinic(journal.store);
      const { writer, direct } = clinic;
      await writer.create('Patient', { id: 'p1', name: 'Lovelace' }, north);
      await writer.create('Practitioner', { id: 'd1', name: 'Blackwell' }, north);
      await writer.create(
        'Encounter',
        { id: 'e1', patient_id: 'p1', provider_ids: ['d1', 'd2'], date: '2026-12-01' },
        north,
      );
      await writer.drain({ timeoutMs: 5_000 });
      const [waiting] = await journal.store.listOutbox();
      expect(waiting).toMatchObject({
        resourceType: 'Encounter',
        waitingFor: 'Practitioner/d2',
        attempts: 0,
      });
      expect(waiting?.lastError?.message).toMatch(/participant\.individual references Practitioner\/d2/);
      expect(await copyOf(direct, 'Encounter', ENCOUNTER_SYSTEM, 'e1')).toBeUndefined();

      await writer.create('Practitioner', { id: 'd2', name: 'Apgar' }, north);
      expect(await writer.drain({ timeoutMs: 10_000 })).toMatchObject({ deadLettered: 0, timedOut: false });
      const encounter = await copyOf<Encounter>(direct, 'Encounter', ENCOUNTER_SYSTEM, 'e1');
      expect(encounter?.participant?.map((p) => p.individual?.reference)).toEqual([
        `Practitioner/${(await writer.linkOf('Practitioner', 'd1'))?.medplumId}`,
        `Practitioner/${(await writer.linkOf('Practitioner', 'd2'))?.medplumId}`,
      ]);
    });

    it('mirrors a report and an encounter written in Medplum (live) to rows with the keys in document order', async () => {
      clinic = await startClinic(journal.store, 'live');
      const { writer } = clinic;
      const id = async (type: 'Practitioner' | 'Observation', key: string): Promise<string | undefined> =>
        (await writer.linkOf(type, key))?.medplumId;
      await writer.create('Patient', { id: 'p1', name: 'Lovelace' }, north);
      await writer.create('Practitioner', { id: 'd1', name: 'Blackwell' }, north);
      await writer.create('Practitioner', { id: 'd2', name: 'Apgar' }, north);
      for (const key of ['v1', 'v2'])
        await writer.create('Observation', { id: key, patient_id: 'p1', encounter_id: '', pulse: 70 }, north);
      expect(await writer.drain({ timeoutMs: 10_000 })).toMatchObject({ deadLettered: 0, timedOut: false });

      await writer.createResource<Encounter>(
        {
          resourceType: 'Encounter',
          identifier: [{ system: ENCOUNTER_SYSTEM, value: 'e1' }],
          status: 'finished',
          class: AMB,
          subject: { identifier: { system: PATIENT_SYSTEM, value: 'p1' } },
          period: { start: '2026-12-02' },
          participant: [
            { individual: { reference: `Practitioner/${await id('Practitioner', 'd2')}` } },
            // By identifier: a legacy key already.
            { individual: { identifier: { system: PROVIDER_SYSTEM, value: 'd1' } } },
          ],
        },
        north,
      );
      await writer.createResource<DiagnosticReport>(
        {
          resourceType: 'DiagnosticReport',
          identifier: [{ system: REPORT_SYSTEM, value: 'r1' }],
          status: 'final',
          code: { text: 'vitals' },
          subject: { identifier: { system: PATIENT_SYSTEM, value: 'p1' } },
          result: [
            { reference: `Observation/${await id('Observation', 'v2')}` },
            { reference: `Observation/${await id('Observation', 'v1')}` },
          ],
        },
        north,
      );
      expect(await writer.drain({ timeoutMs: 10_000 })).toMatchObject({ deadLettered: 0, timedOut: false });
      expect((await clinic.legacy.read('Encounter', 'e1'))?.row).toMatchObject({
        patient_id: 'p1',
        provider_ids: ['d2', 'd1'],
      });
      expect((await clinic.legacy.read('DiagnosticReport', 'r1'))?.row).toMatchObject({
        patient_id: 'p1',
        result_ids: ['v2', 'v1'],
      });
      // Read back and compared: the references written by id and by identifier are no divergence.
      await writer.settled();
      expect(clinic.events.filter((event) => event.type === 'divergence')).toEqual([]);
    });

    it('refuses a write whose mapping places a nested reference the library did not resolve, naming the path', async () => {
      const stray: typeof visits = {
        ...visits,
        toFhir: (row, existing, references) => ({
          ...visits.toFhir(row, existing, references),
          participant: [{ individual: { reference: 'Practitioner/made-up' } }],
        }),
      };
      clinic = await startClinic(journal.store, 'dual-write', stray);
      await people(clinic);
      expect(await clinic.writer.drain({ timeoutMs: 10_000 })).toMatchObject({
        deadLettered: 0,
        timedOut: false,
      });
      // Mapped before anything is written: the call is refused, neither side changes.
      await expect(
        clinic.writer.create(
          'Encounter',
          { id: 'e1', patient_id: 'p1', provider_ids: ['d1'], date: '2026-12-01' },
          north,
        ),
      ).rejects.toMatchObject({ name: 'MappingError', field: 'participant.individual' });
      expect(await clinic.legacy.read('Encounter', 'e1')).toBeUndefined();
      expect(await copyOf(clinic.direct, 'Encounter', ENCOUNTER_SYSTEM, 'e1')).toBeUndefined();
    });
  });
}

import type { Patient, RelatedPerson } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import {
  ConfigurationError,
  CutoverPlan,
  DualWriter,
  InvalidInputError,
  createMedplumClient,
  type ResourceMapping,
  type Stage,
} from '../../src/index.ts';
import { MemoryLegacyAdapter, startFhirTestServer } from '../../src/testing/index.ts';
import { copyOf, journalBackends, useSystems, type Systems } from './clinic-fixture.ts';

/*
 * One legacy record, several resources: an OpenEMR-style `patient_data` row holds a patient and,
 * in its guardian columns, a RelatedPerson. The Patient mapping owns the record; the guardian
 * mapping is a part of it, with its own link, identifier, conflicts and divergence checks.
 */

interface PatientDataRow {
  pid?: string;
  lname: string;
  guardian_name: string;
  guardian_relation: string;
}

const PID = 'https://emr.example.org/pid';
const GUARDIAN = 'https://emr.example.org/pid/guardian';

const patients: ResourceMapping<PatientDataRow, Patient> = {
  resourceType: 'Patient',
  identifierSystem: PID,
  legacyId: (row) => row.pid,
  withLegacyId: (row, pid) => ({ ...row, pid }),
  toFhir: (row, existing) => ({ ...existing, resourceType: 'Patient', name: [{ family: row.lname }] }),
  toLegacy: (patient, existing) => ({
    guardian_name: '',
    guardian_relation: '',
    ...existing,
    lname: patient.name?.[0]?.family ?? '',
  }),
};

const guardians: ResourceMapping<PatientDataRow, RelatedPerson, 'patient'> = {
  resourceType: 'RelatedPerson',
  partOf: 'Patient',
  identifierSystem: GUARDIAN,
  legacyId: (row) => row.pid,
  present: (row) => row.guardian_name !== '',
  references: { patient: { resourceType: 'Patient', legacyKey: (row) => row.pid } },
  toFhir: (row, existing, { patient }) => ({
    ...existing,
    resourceType: 'RelatedPerson',
    patient: patient ?? {}, // resolved through the Patient's link; the library sets it anyway
    name: [{ text: row.guardian_name }],
    relationship: [{ text: row.guardian_relation }],
  }),
  toLegacy: (person, existing) => ({
    lname: '',
    ...existing,
    guardian_name: person.name?.[0]?.text ?? '',
    guardian_relation: person.relationship?.[0]?.text ?? '',
  }),
};

const north = { unit: 'north' };

const WITH_GUARDIAN: PatientDataRow = {
  pid: '42',
  lname: 'Lovelace',
  guardian_name: 'Annabella Byron',
  guardian_relation: 'mother',
};

for (const backend of journalBackends) {
  describe(`one legacy record, several resources, with a PostgresStore on ${backend.name}`, () => {
    const systems = useSystems<PatientDataRow>(backend);
    let chart: Systems<PatientDataRow>;
    const startChart = async (
      _store: unknown,
      stage: Stage = 'dual-write',
    ): Promise<Systems<PatientDataRow>> =>
      (chart = await systems.start([patients, guardians] as ResourceMapping<PatientDataRow>[], {
        stage,
        idField: 'pid',
      }));
    const journal = systems;

    async function drained(c: Systems<PatientDataRow>): Promise<void> {
      expect(await c.writer.drain({ timeoutMs: 10_000 })).toMatchObject({ deadLettered: 0, timedOut: false });
    }

    it('mirrors a patient_data row as a Patient and a RelatedPerson pointing at it, each with its own link and identifier', async () => {
      chart = await startChart(journal.store);
      await chart.writer.create('Patient', WITH_GUARDIAN, north);
      await drained(chart);
      const patient = await copyOf<Patient>(chart.direct, 'Patient', PID, '42');
      const guardian = await copyOf<RelatedPerson>(chart.direct, 'RelatedPerson', GUARDIAN, '42');
      expect(patient?.name).toEqual([{ family: 'Lovelace' }]);
      expect(guardian).toMatchObject({
        patient: { reference: `Patient/${patient?.id}` },
        name: [{ text: 'Annabella Byron' }],
        relationship: [{ text: 'mother' }],
        identifier: [{ system: GUARDIAN, value: '42' }],
      });
      expect((await chart.writer.linkOf('Patient', '42'))?.medplumId).toBe(patient?.id);
      expect((await chart.writer.linkOf('RelatedPerson', '42'))?.medplumId).toBe(guardian?.id);
      // Each copy was read back and compared with its own mapping of the one row.
      await chart.writer.settled();
      expect(chart.events.filter((event) => event.type === 'divergence')).toEqual([]);
      expect(await journal.store.outboxCounts()).toEqual({ pending: 0, leased: 0, dead: 0 });
    });

    it('gives a row without a guardian no RelatedPerson, creates it once the columns are filled, and deletes it once they are cleared', async () => {
      chart = await startChart(journal.store);
      const { writer, direct } = chart;
      await writer.create('Patient', { ...WITH_GUARDIAN, guardian_name: '', guardian_relation: '' }, north);
      await drained(chart);
      expect(await copyOf(direct, 'Patient', PID, '42')).toBeDefined();
      expect(await copyOf(direct, 'RelatedPerson', GUARDIAN, '42')).toBeUndefined();

      await writer.update('Patient', '42', WITH_GUARDIAN, north);
      await drained(chart);
      expect((await copyOf<RelatedPerson>(direct, 'RelatedPerson', GUARDIAN, '42'))?.name).toEqual([
        { text: 'Annabella Byron' },
      ]);

      await writer.update('Patient', '42', { ...WITH_GUARDIAN, guardian_name: '' }, north);
      await drained(chart);
      expect(await copyOf(direct, 'RelatedPerson', GUARDIAN, '42')).toBeUndefined();
      expect(await writer.linkOf('RelatedPerson', '42')).toBeUndefined();
      expect(await copyOf(direct, 'Patient', PID, '42')).toBeDefined();
      await writer.settled();
      expect(chart.events.filter((event) => event.type === 'divergence')).toEqual([]);
    });

    it('deletes every resource a record produced when the record is deleted', async () => {
      chart = await startChart(journal.store);
      await chart.writer.create('Patient', WITH_GUARDIAN, north);
      await drained(chart);
      await chart.writer.delete('Patient', '42', north);
      await drained(chart);
      expect(await copyOf(chart.direct, 'Patient', PID, '42')).toBeUndefined();
      expect(await copyOf(chart.direct, 'RelatedPerson', GUARDIAN, '42')).toBeUndefined();
      expect(await chart.writer.linkOf('Patient', '42')).toBeUndefined();
      expect(await chart.writer.linkOf('RelatedPerson', '42')).toBeUndefined();
    });

    it('mirrors no part before its owner: a dead-lettered Patient leaves the RelatedPerson unwritten until it is retried', async () => {
      chart = await startChart(journal.store);
      chart.server.faults.failNext(1, 400, { methods: ['POST'], path: /^Patient$/ });
      await chart.writer.create('Patient', WITH_GUARDIAN, north);
      expect(await chart.writer.drain({ timeoutMs: 10_000 })).toMatchObject({
        deadLettered: 1,
        timedOut: false,
      });
      expect(await copyOf(chart.direct, 'RelatedPerson', GUARDIAN, '42')).toBeUndefined();
      const [letter] = await chart.writer.deadLetters();
      expect(letter).toMatchObject({ resourceType: 'Patient', legacyId: '42' });

      await chart.writer.retryDeadLetter(letter!.id);
      await drained(chart);
      const patient = await copyOf<Patient>(chart.direct, 'Patient', PID, '42');
      expect((await copyOf<RelatedPerson>(chart.direct, 'RelatedPerson', GUARDIAN, '42'))?.patient).toEqual({
        reference: `Patient/${patient?.id}`,
      });
    });

    it('fails one part on its own: a RelatedPerson rejected by Medplum is dead-lettered while the Patient is mirrored', async () => {
      chart = await startChart(journal.store);
      // The create itself (`RelatedPerson/_search` is a POST too).
      chart.server.faults.failNext(1, 400, { methods: ['POST'], path: /^RelatedPerson$/ });
      await chart.writer.create('Patient', WITH_GUARDIAN, north);
      expect(await chart.writer.drain({ timeoutMs: 10_000 })).toMatchObject({
        deadLettered: 1,
        timedOut: false,
      });
      expect(await copyOf(chart.direct, 'Patient', PID, '42')).toBeDefined();
      const [letter] = await chart.writer.deadLetters();
      expect(letter).toMatchObject({ resourceType: 'RelatedPerson', legacyId: '42' });
      await chart.writer.retryDeadLetter(letter!.id);
      await drained(chart);
      expect(await copyOf(chart.direct, 'RelatedPerson', GUARDIAN, '42')).toBeDefined();
    });

    it('mirrors edits made in Medplum (live) to their own columns of the one row, without a conflict between the parts', async () => {
      chart = await startChart(journal.store, 'live');
      const { writer, legacy } = chart;
      const patient = await writer.createResource<Patient>(
        {
          resourceType: 'Patient',
          identifier: [{ system: PID, value: '42' }],
          name: [{ family: 'Lovelace' }],
        },
        north,
      );
      await drained(chart);
      const guardian = await writer.createResource<RelatedPerson>(
        {
          resourceType: 'RelatedPerson',
          identifier: [{ system: GUARDIAN, value: '42' }],
          patient: { reference: `Patient/${patient.medplumId}` },
          name: [{ text: 'Annabella Byron' }],
          relationship: [{ text: 'mother' }],
        },
        north,
      );
      await drained(chart);
      expect((await legacy.read('Patient', '42'))?.row).toMatchObject(WITH_GUARDIAN);

      // Each part's next edit finds the row rewritten by the other: no conflict for it.
      await writer.updateResource<Patient>(
        {
          resourceType: 'Patient',
          id: patient.medplumId!,
          identifier: [{ system: PID, value: '42' }],
          name: [{ family: 'King' }],
        },
        north,
      );
      await drained(chart);
      await writer.updateResource<RelatedPerson>(
        {
          resourceType: 'RelatedPerson',
          id: guardian.medplumId!,
          identifier: [{ system: GUARDIAN, value: '42' }],
          patient: { reference: `Patient/${patient.medplumId}` },
          name: [{ text: 'Annabella Milbanke' }],
          relationship: [{ text: 'mother' }],
        },
        north,
      );
      await drained(chart);
      expect((await legacy.read('Patient', '42'))?.row).toMatchObject({
        pid: '42',
        lname: 'King',
        guardian_name: 'Annabella Milbanke',
      });
      await writer.settled();
      expect(
        chart.events.filter((event) => event.type === 'conflict' || event.type === 'divergence'),
      ).toEqual([]);
    });

    it('reconciles a part over its owner records: a record without it is not missing, a copy it no longer holds is divergent and repaired', async () => {
      chart = await startChart(journal.store);
      const { writer, legacy, direct } = chart;
      await writer.create('Patient', WITH_GUARDIAN, north);
      await writer.create(
        'Patient',
        { ...WITH_GUARDIAN, pid: '43', guardian_name: '', guardian_relation: '' },
        north,
      );
      await writer.create('Patient', { ...WITH_GUARDIAN, pid: '44' }, north);
      await drained(chart);
      // Behind the writer's back: 42's surname (its version moves, so the guardian's copy is
      // compared by content, its reference by what it points at), 44's guardian cleared.
      const edit = async (pid: string, change: Partial<PatientDataRow>): Promise<void> => {
        const record = await legacy.read('Patient', pid);
        await legacy.update(
          'Patient',
          pid,
          { ...record!.row, ...change },
          { expectedVersion: record!.version },
        );
      };
      await edit('42', { lname: 'King' });
      await edit('44', { guardian_name: '', guardian_relation: '' });

      const report = await writer.reconcile({
        resourceType: 'RelatedPerson',
        unit: 'north',
        direction: 'to-medplum',
      });
      expect(report.counts).toEqual({
        scanned: 3,
        scannedMedplum: 2,
        agree: 1,
        skipped: 1,
        divergent: 1,
        'path:': 1,
      });
      expect(report.samples).toMatchObject({ agree: ['42'], skipped: ['43'], divergent: ['44'] });

      await writer.reconcile({
        resourceType: 'RelatedPerson',
        unit: 'north',
        direction: 'to-medplum',
        repair: 'queue',
      });
      await drained(chart);
      expect(await copyOf(direct, 'RelatedPerson', GUARDIAN, '44')).toBeUndefined();
      expect(await copyOf(direct, 'RelatedPerson', GUARDIAN, '42')).toBeDefined();
      const again = await writer.reconcile({
        resourceType: 'RelatedPerson',
        unit: 'north',
        direction: 'to-medplum',
      });
      expect(again.counts).toEqual({ scanned: 3, scannedMedplum: 1, agree: 1, skipped: 2 });
      // The limit only ends a run that never finishes (41 s at a load of 20).
    }, 180_000);

    it('backfills a part over its owner records: a record without it is skipped, nothing queued for it', async () => {
      chart = await startChart(journal.store);
      const { writer, legacy, direct } = chart;
      // Records that existed before the writer: none of them is mirrored yet.
      await legacy.create('Patient', WITH_GUARDIAN);
      await legacy.create('Patient', {
        ...WITH_GUARDIAN,
        pid: '43',
        guardian_name: '',
        guardian_relation: '',
      });
      const owners = await writer.backfill({
        resourceType: 'Patient',
        unit: 'north',
        direction: 'to-medplum',
      });
      expect(owners.counts).toEqual({ scanned: 2, created: 2 });
      await drained(chart);

      const parts = await writer.backfill({
        resourceType: 'RelatedPerson',
        unit: 'north',
        direction: 'to-medplum',
      });
      // The owners' mirrors wrote their parts: 42's guardian is linked, 43 holds none.
      expect(parts.counts).toEqual({ scanned: 2, unchanged: 1, skipped: 1 });
      expect(parts.samples).toMatchObject({ unchanged: ['42'], skipped: ['43'] });
      expect(await journal.store.outboxCounts()).toEqual({ pending: 0, leased: 0, dead: 0 });
      expect(await copyOf(direct, 'RelatedPerson', GUARDIAN, '42')).toBeDefined();
      expect(await copyOf(direct, 'RelatedPerson', GUARDIAN, '43')).toBeUndefined();

      // A copy of a part the record does not hold, found by identifier, is queued: its mirror
      // deletes it (as reconcile's repair of a `divergent` at '' does).
      const owner = await copyOf<Patient>(direct, 'Patient', PID, '43');
      await direct.createResource<RelatedPerson>({
        resourceType: 'RelatedPerson',
        patient: { reference: `Patient/${owner?.id}` },
        identifier: [{ system: GUARDIAN, value: '43' }],
        name: [{ text: 'Stale guardian' }],
      });
      const again = await writer.backfill({
        resourceType: 'RelatedPerson',
        unit: 'north',
        direction: 'to-medplum',
      });
      expect(again.counts).toEqual({ scanned: 2, unchanged: 1, deleted: 1 });
      await drained(chart);
      expect(await copyOf(direct, 'RelatedPerson', GUARDIAN, '43')).toBeUndefined();
    }, 180_000);

    it('refuses a legacy row written through a part while the legacy system is the authority, writing nothing', async () => {
      chart = await startChart(journal.store);
      await expect(chart.writer.create('RelatedPerson', WITH_GUARDIAN, north)).rejects.toMatchObject({
        name: InvalidInputError.name,
        field: 'resourceType',
      });
      expect(await chart.legacy.read('Patient', '42')).toBeUndefined();
      expect(await journal.store.outboxCounts()).toEqual({ pending: 0, leased: 0, dead: 0 });
    });
  });
}

describe('parts in the writer options', () => {
  it('refuses a part of a type without a mapping, naming the field', async () => {
    const server = await startFhirTestServer();
    try {
      expect(
        () =>
          new DualWriter({
            legacy: new MemoryLegacyAdapter<PatientDataRow>(),
            medplum: createMedplumClient({ baseUrl: server.baseUrl }),
            mappings: [patients, { ...guardians, partOf: 'Person' }],
            plan: new CutoverPlan({ default: 'dual-write', unitOf: () => 'north' }),
          }),
      ).toThrow(
        expect.objectContaining({ name: ConfigurationError.name, field: 'mappings[1].partOf' }) as Error,
      );
    } finally {
      await server.close();
    }
  });
});

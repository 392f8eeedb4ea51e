import type { Encounter, Observation, Patient } from '@medplum/fhirtypes';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PostgresStore } from '../../src/index.ts';
import {
  ENCOUNTER_SYSTEM,
  PATIENT_SYSTEM,
  VITALS_SYSTEM,
  copyOf,
  journalBackends,
  north,
  startClinic,
  type Clinic,
  type EncounterRow,
  type VitalsRow,
} from './clinic-fixture.ts';

for (const backend of journalBackends) {
  describe(`references between records, with a PostgresStore on ${backend.name}`, () => {
    let journal: { store: PostgresStore; close: () => Promise<void> };
    let clinic: Clinic | undefined;
    beforeEach(async () => {
      journal = await backend.open();
    });
    afterEach(async () => {
      await clinic?.close();
      clinic = undefined;
      await journal.close();
    });

    /** Writes a patient, an encounter and its vitals in legacy, in that order. */
    async function chart(c: Clinic, id = '1'): Promise<void> {
      await c.writer.create('Patient', { id: `p${id}`, name: 'Lovelace' }, north);
      await c.writer.create('Encounter', { id: `e${id}`, patient_id: `p${id}`, date: '2026-12-01' }, north);
      await c.writer.create(
        'Observation',
        { id: `v${id}`, patient_id: `p${id}`, encounter_id: `e${id}`, pulse: 72 },
        north,
      );
    }

    /** Asserts Medplum holds the chart with every reference pointing at the linked copy. */
    async function expectChartInMedplum(c: Clinic, id = '1'): Promise<void> {
      const patient = await copyOf<Patient>(c.direct, 'Patient', PATIENT_SYSTEM, `p${id}`);
      const encounter = await copyOf<Encounter>(c.direct, 'Encounter', ENCOUNTER_SYSTEM, `e${id}`);
      const observation = await copyOf<Observation>(c.direct, 'Observation', VITALS_SYSTEM, `v${id}`);
      expect(encounter?.subject).toEqual({ reference: `Patient/${patient?.id}` });
      expect(observation?.subject).toEqual({ reference: `Patient/${patient?.id}` });
      expect(observation?.encounter).toEqual({ reference: `Encounter/${encounter?.id}` });
      expect((await c.writer.linkOf('Encounter', `e${id}`))?.medplumId).toBe(encounter?.id);
    }

    it('mirrors a patient, an encounter and vitals created in legacy, each reference to the linked Medplum copy', async () => {
      clinic = await startClinic(journal.store);
      await chart(clinic);
      const report = await clinic.writer.drain({ timeoutMs: 10_000 });
      expect(report).toMatchObject({ deadLettered: 0, timedOut: false });
      await expectChartInMedplum(clinic);
      expect(await journal.store.outboxCounts()).toEqual({ pending: 0, leased: 0, dead: 0 });
      // Every mirror was read back and compared, references included: no divergence.
      await clinic.writer.settled();
      expect(clinic.events.filter((event) => event.type === 'divergence')).toEqual([]);
    });

    it('mirrors a chart created in Medplum (live) to legacy with the right keys', async () => {
      clinic = await startClinic(journal.store, { stage: 'live' });
      const { writer } = clinic;
      const patient = await writer.createResource<Patient>(
        {
          resourceType: 'Patient',
          identifier: [{ system: PATIENT_SYSTEM, value: 'p7' }],
          name: [{ family: 'Hopper' }],
        },
        north,
      );
      const encounter = await writer.createResource<Encounter>(
        {
          resourceType: 'Encounter',
          identifier: [{ system: ENCOUNTER_SYSTEM, value: 'e7' }],
          status: 'finished',
          class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
          subject: { reference: `Patient/${patient.medplumId}` },
          period: { start: '2026-12-02' },
        },
        north,
      );
      await writer.createResource<Observation>(
        {
          resourceType: 'Observation',
          identifier: [{ system: VITALS_SYSTEM, value: 'v7' }],
          status: 'final',
          code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] },
          // One by identifier, one by id: both name the same kind of record.
          subject: { identifier: { system: PATIENT_SYSTEM, value: 'p7' } },
          encounter: { reference: `Encounter/${encounter.medplumId}` },
          valueQuantity: { value: 64, unit: '/min' },
        },
        north,
      );
      expect(await writer.drain({ timeoutMs: 10_000 })).toMatchObject({ deadLettered: 0, timedOut: false });
      expect((await clinic.legacy.read('Encounter', 'e7'))?.row).toMatchObject({
        patient_id: 'p7',
        date: '2026-12-02',
      });
      expect((await clinic.legacy.read('Observation', 'v7'))?.row).toMatchObject({
        patient_id: 'p7',
        encounter_id: 'e7',
        pulse: 64,
      });
      // Read back and compared: `Patient/<id>` against the legacy key's link is no divergence,
      // nor is the vitals' subject written by identifier.
      await writer.settled();
      expect(JSON.stringify(clinic.events.filter((event) => event.type === 'divergence'))).toEqual('[]');
    });

    it('waits, without a dead letter, for a patient whose mirror failed twice with 503, then writes the chart correctly', async () => {
      clinic = await startClinic(journal.store);
      const deferred: string[] = [];
      const defer = journal.store.defer.bind(journal.store);
      journal.store.defer = (lease, waitingFor, error, delayMs) => {
        deferred.push(`${lease.entry.resourceType}->${waitingFor}`);
        return defer(lease, waitingFor, error, delayMs);
      };
      clinic.server.faults.failNext(2, 503, { methods: ['POST'], path: 'Patient' });
      await chart(clinic);
      const report = await clinic.writer.drain({ timeoutMs: 10_000 });
      expect(report).toMatchObject({ deadLettered: 0, timedOut: false });
      expect(report.retried).toBeGreaterThanOrEqual(1);
      // The encounter and the vitals ran while the patient was failing: they waited for it.
      expect(deferred).toContain('Encounter->Patient/p1');
      await expectChartInMedplum(clinic);
      expect(await clinic.writer.deadLetters()).toEqual([]);
    });

    it('returns an inline mirror that must wait as pending, not failed, and applies it once the patient lands', async () => {
      clinic = await startClinic(journal.store, { writer: { mirror: 'sync' } });
      // The patient's inline mirror gives up after its retries (Medplum down): left to the drainer.
      clinic.server.faults.failNext(3, 503, { methods: ['POST'], path: 'Patient' });
      const patient = await clinic.writer.create('Patient', { id: 'p1', name: 'Lovelace' }, north);
      expect(patient.mirror).toBe('pending');
      const encounter = await clinic.writer.create(
        'Encounter',
        { id: 'e1', patient_id: 'p1', date: '2026-12-01' },
        north,
      );
      expect(encounter).toMatchObject({ mirror: 'pending', legacy: { action: 'created' } });
      expect((await journal.store.listOutbox()).find((entry) => entry.legacyId === 'e1')).toMatchObject({
        waitingFor: 'Patient/p1',
        attempts: 0,
      });
      await clinic.writer.create(
        'Observation',
        { id: 'v1', patient_id: 'p1', encounter_id: 'e1', pulse: 72 },
        north,
      );
      expect(await clinic.writer.drain({ timeoutMs: 10_000 })).toMatchObject({
        deadLettered: 0,
        timedOut: false,
      });
      await expectChartInMedplum(clinic);
    });

    it('holds dependents of a dead-lettered patient with a visible reason, and retrying the patient releases them', async () => {
      clinic = await startClinic(journal.store);
      clinic.server.faults.failNext(1, 400, { methods: ['POST'], path: 'Patient' });
      await chart(clinic);
      const first = await clinic.writer.drain({ timeoutMs: 10_000 });
      expect(first).toMatchObject({ deadLettered: 1, timedOut: false });
      const [letter] = await clinic.writer.deadLetters();
      expect(letter).toMatchObject({ resourceType: 'Patient', legacyId: 'p1' });
      const held = await journal.store.listOutbox();
      expect(held.map((entry) => [entry.resourceType, entry.waitingFor, entry.attempts])).toEqual(
        expect.arrayContaining([
          ['Encounter', 'Patient/p1', 0],
          ['Observation', expect.stringMatching(/^(Patient\/p1|Encounter\/e1)$/), 0],
        ]),
      );
      const encounter = held.find((entry) => entry.resourceType === 'Encounter');
      expect(encounter?.lastError).toMatchObject({ name: 'DependencyError' });
      expect(encounter?.lastError?.message).toMatch(/Patient\/p1.*dead-lettered/);
      expect(await journal.store.outboxCounts()).toEqual({ pending: 0, waiting: 2, leased: 0, dead: 1 });

      await clinic.writer.retryDeadLetter(letter!.id);
      expect(await clinic.writer.drain({ timeoutMs: 10_000 })).toMatchObject({
        deadLettered: 0,
        timedOut: false,
      });
      await expectChartInMedplum(clinic);
      expect(await journal.store.outboxCounts()).toEqual({ pending: 0, leased: 0, dead: 0 });
    });

    it('holds an encounter whose patient belongs to a legacy-only unit, and releases it once that patient is mirrored', async () => {
      clinic = await startClinic(journal.store);
      await clinic.plan.set('east', 'legacy-only', { force: true });
      await clinic.writer.create('Patient', { id: 'p9', name: 'Noether' }, { unit: 'east' });
      const encounter: EncounterRow = { id: 'e9', patient_id: 'p9', date: '2026-12-03' };
      await clinic.writer.create('Encounter', encounter, north);
      expect(await clinic.writer.drain({ timeoutMs: 5_000 })).toMatchObject({
        deadLettered: 0,
        timedOut: false,
      });
      const [entry] = await journal.store.listOutbox();
      expect(entry).toMatchObject({ resourceType: 'Encounter', legacyId: 'e9', waitingFor: 'Patient/p9' });
      expect(entry?.lastError?.message).toMatch(/nothing mirrors it/);
      expect(await copyOf(clinic.direct, 'Encounter', ENCOUNTER_SYSTEM, 'e9')).toBeUndefined();

      // The unit moves on: the patient's next write is mirrored, and with its link the encounter.
      await clinic.plan.set('east', 'dual-write', { force: true });
      await clinic.writer.update('Patient', 'p9', { id: 'p9', name: 'Noether' }, { unit: 'east' });
      expect(await clinic.writer.drain({ timeoutMs: 10_000 })).toMatchObject({
        deadLettered: 0,
        timedOut: false,
      });
      const patient = await copyOf<Patient>(clinic.direct, 'Patient', PATIENT_SYSTEM, 'p9');
      expect((await copyOf<Encounter>(clinic.direct, 'Encounter', ENCOUNTER_SYSTEM, 'e9'))?.subject).toEqual({
        reference: `Patient/${patient?.id}`,
      });
    });

    it('ends correct when the writer crashes between writing the patient to Medplum and saving its link', async () => {
      const drainer = { leaseMs: 400, pollIntervalMs: 20, backoff: { minMs: 10, maxMs: 50 } };
      clinic = await startClinic(journal.store, { writer: { drainer } });
      // The process dies once the patient's copy is in Medplum, before its link is recorded:
      // from then on nothing of it reaches the journal.
      const complete = journal.store.complete.bind(journal.store);
      let crashed = false;
      journal.store.complete = (lease, link) => {
        if (crashed || lease.entry.resourceType === 'Patient') {
          crashed = true;
          return Promise.reject(new Error('process gone'));
        }
        return complete(lease, link);
      };
      await chart(clinic);
      await clinic.writer.drain({ timeoutMs: 2_000 }).catch(() => undefined);
      expect(crashed).toBe(true);
      expect(await journal.store.getLink('Patient', 'p1')).toBeUndefined();
      expect(await copyOf(clinic.direct, 'Patient', PATIENT_SYSTEM, 'p1')).toBeDefined();

      // A new instance over the same journal and systems, once the dead one's leases lapse.
      delete (journal.store as Partial<PostgresStore>).complete;
      await clinic.writer.stop();
      const writer = clinic.restart();
      await new Promise((resolve) => setTimeout(resolve, drainer.leaseMs + 100));
      expect(await writer.drain({ timeoutMs: 10_000 })).toMatchObject({ deadLettered: 0, timedOut: false });
      // One copy of each (copyOf refuses two), every reference to the one patient.
      await expectChartInMedplum(clinic);
    });

    it('mirrors an Encounter created directly in Medplum for a legacy patient with its key, and holds one whose patient is unknown', async () => {
      clinic = await startClinic(journal.store, { writer: { feeds: { unitOf: () => 'north' } } });
      const { writer, direct } = clinic;
      await writer.create('Patient', { id: 'p3', name: 'Curie' }, north);
      await writer.drain({ timeoutMs: 5_000 });
      await writer.pollFeeds();
      const patient = await copyOf<Patient>(direct, 'Patient', PATIENT_SYSTEM, 'p3');
      await direct.createResource<Encounter>({
        resourceType: 'Encounter',
        identifier: [{ system: ENCOUNTER_SYSTEM, value: 'e3' }],
        status: 'finished',
        class: { code: 'AMB' },
        subject: { reference: `Patient/${patient?.id}` },
        period: { start: '2026-12-04' },
      });
      const stranger = await direct.createResource<Patient>({
        resourceType: 'Patient',
        name: [{ family: 'Unknown' }],
      });
      await direct.createResource<Encounter>({
        resourceType: 'Encounter',
        identifier: [{ system: ENCOUNTER_SYSTEM, value: 'e4' }],
        status: 'finished',
        class: { code: 'AMB' },
        subject: { reference: `Patient/${stranger.id}` },
      });
      await writer.pollFeeds();
      await writer.drain({ timeoutMs: 5_000 });
      expect((await clinic.legacy.read('Encounter', 'e3'))?.row).toMatchObject({
        patient_id: 'p3',
        date: '2026-12-04',
      });
      expect(await clinic.legacy.read('Encounter', 'e4')).toBeUndefined();
      const waiting = (await journal.store.listOutbox()).find((entry) => entry.legacyId === 'e4');
      expect(waiting).toMatchObject({ target: 'legacy', waitingFor: `Patient#${stranger.id}` });
      expect(await writer.deadLetters()).toEqual([]);
    });
  });
}

describe('references in mappings', () => {
  it('refuses at construction a reference to a type without a mapping, naming the field', async () => {
    const { ConfigurationError } = await import('../../src/index.ts');
    const { MemoryStore } = await import('../../src/index.ts');
    const clinic = await startClinic(new MemoryStore());
    try {
      const { DualWriter, CutoverPlan, createMedplumClient } = await import('../../src/index.ts');
      const { encounters } = await import('./clinic-fixture.ts');
      expect(
        () =>
          new DualWriter({
            legacy: clinic.legacy,
            medplum: createMedplumClient({ baseUrl: clinic.server.baseUrl }),
            mappings: [encounters],
            plan: new CutoverPlan({ default: 'dual-write', unitOf: () => 'north' }),
          }),
      ).toThrow(
        expect.objectContaining({
          name: ConfigurationError.name,
          field: 'mappings[0].references.subject.resourceType',
        }) as Error,
      );
    } finally {
      await clinic.close();
    }
  });

  it('does not compile a reference on an element that holds no Reference', () => {
    const vitalsRow: VitalsRow = { patient_id: '1', encounter_id: '2', pulse: 60 };
    // @ts-expect-error: Observation.status is no Reference element
    const wrong: import('../../src/index.ts').ResourceMapping<VitalsRow, Observation, 'status'> | undefined =
      undefined;
    expect(wrong).toBeUndefined();
    expect(vitalsRow.pulse).toBe(60);
  });
});

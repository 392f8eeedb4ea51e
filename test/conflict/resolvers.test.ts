import type { Patient } from '@medplum/fhirtypes';
import { afterEach, describe, expect, it } from 'vitest';
import {
  authorityWins,
  byResourceType,
  lastWriterWins,
  legacyWins,
  manualReview,
  medplumWins,
  MirrorError,
  REVIEW_TASK_SYSTEM,
  ReviewRequiredError,
  threeWayMerge,
  type ConflictContext,
  type ConflictResolver,
  type DualWriteEvent,
  type MemoryStore,
} from '../../src/index.ts';
import type { MemoryLegacyAdapter } from '../../src/testing/index.ts';
import type { PatientRow } from '../harness/patient-fixture.ts';
import { medplumCopies, north, startWriterFixture, type WriterFixture } from '../harness/writer-fixture.ts';

/*
 * One patient, edited on both sides between two syncs: in Medplum someone adds a birth date
 * and a phone number; in the legacy screens (through the writer, the legacy system being the
 * authority in `dual-write`) someone changes the family name. The mirror of the legacy edit
 * finds Medplum changed since the last sync: a conflict, which the resolver decides.
 */
const ada: PatientRow = { id: 'p-1', first_name: 'Ada', last_name: 'Lovelace' };
const phone = { system: 'phone' as const, value: '555-0100' };

let fixture: WriterFixture<MemoryLegacyAdapter<PatientRow>> | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

async function conflictWith(
  resolver: ConflictResolver,
  medplumEdit: (patient: Patient) => Patient = (p) => ({ ...p, birthDate: '1815-12-10', telecom: [phone] }),
  legacyEdit: PatientRow = { ...ada, last_name: 'King' },
) {
  fixture = await startWriterFixture({ stage: 'dual-write', writer: { resolver } });
  const { writer, direct } = fixture;
  const created = await writer.create('Patient', ada, north);
  const copy = await direct.readResource('Patient', created.medplumId ?? '', { cache: 'no-cache' });
  await direct.updateResource(medplumEdit(copy));
  const outcome = await writer.update('Patient', 'p-1', legacyEdit, north).catch((err: unknown) => err);
  return { fixture, outcome };
}

async function bothSides(f: WriterFixture<MemoryLegacyAdapter<PatientRow>>) {
  const row = (await f.legacy.read('Patient', 'p-1'))?.row;
  const copies = await medplumCopies(f.direct, 'p-1');
  expect(copies).toHaveLength(1);
  return { row, patient: copies[0]! };
}

function eventsOf(events: readonly DualWriteEvent[], type: DualWriteEvent['type']) {
  return events.filter((event) => event.type === type);
}

describe('each built-in resolver, on one patient edited on both sides between syncs', () => {
  it('authorityWins: the legacy copy (the authority in dual-write) overwrites Medplum’s mapped fields', async () => {
    const { fixture: f } = await conflictWith(authorityWins);
    const { row, patient } = await bothSides(f);
    expect(row?.last_name).toBe('King');
    expect(row?.birth_date ?? null).toBeNull();
    expect(patient.name).toEqual([{ given: ['Ada'], family: 'King' }]);
    expect(patient.birthDate).toBeUndefined(); // mapped: the authority has none
    expect(patient.telecom).toEqual([phone]); // not mapped: kept
    expect(eventsOf(f.events, 'conflict')).toMatchObject([
      {
        resolvedBy: 'authority-wins',
        resolution: 'legacy',
        authority: 'legacy',
        target: 'medplum',
        stage: 'dual-write',
      },
    ]);
    expect(eventsOf(f.events, 'resolved')).toMatchObject([
      { resolvedBy: 'authority-wins', resolution: 'legacy' },
    ]);
    expect(await f.store.listEvents({ type: 'resolved' })).toMatchObject([
      { legacyId: 'p-1', data: { resolution: 'legacy' } },
    ]);
  });

  it('legacyWins: the legacy copy wins', async () => {
    const { fixture: f } = await conflictWith(legacyWins);
    const { row, patient } = await bothSides(f);
    expect(row?.last_name).toBe('King');
    expect(patient).toMatchObject({ name: [{ family: 'King' }] });
    expect(patient.birthDate).toBeUndefined();
    expect(eventsOf(f.events, 'resolved')).toMatchObject([
      { resolvedBy: 'legacy-wins', resolution: 'legacy' },
    ]);
  });

  it('medplumWins: Medplum’s copy is written back to the legacy system, against the authority', async () => {
    const { fixture: f, outcome } = await conflictWith(medplumWins);
    expect(outcome).toMatchObject({ mirror: 'applied' });
    const { row, patient } = await bothSides(f);
    expect(patient).toMatchObject({
      name: [{ family: 'Lovelace' }],
      birthDate: '1815-12-10',
      telecom: [phone],
    });
    expect(row).toMatchObject({ last_name: 'Lovelace', birth_date: '1815-12-10' });
    expect(eventsOf(f.events, 'resolved')).toMatchObject([
      { resolvedBy: 'medplum-wins', resolution: 'medplum' },
    ]);
  });

  it('lastWriterWins: the side changed last wins (here the legacy edit, made after Medplum’s)', async () => {
    const { fixture: f } = await conflictWith(lastWriterWins);
    const { row, patient } = await bothSides(f);
    expect(row?.last_name).toBe('King');
    expect(patient.name?.[0]?.family).toBe('King');
    expect(eventsOf(f.events, 'resolved')).toMatchObject([
      { resolvedBy: 'last-writer-wins', resolution: 'legacy' },
    ]);
  });

  it('threeWayMerge: disjoint edits both survive, on both sides', async () => {
    const { fixture: f } = await conflictWith(threeWayMerge());
    const { row, patient } = await bothSides(f);
    expect(patient).toMatchObject({
      name: [{ given: ['Ada'], family: 'King' }],
      birthDate: '1815-12-10',
      telecom: [phone],
    });
    expect(row).toMatchObject({ last_name: 'King', birth_date: '1815-12-10' });
    const [conflict] = eventsOf(f.events, 'conflict');
    expect(conflict).toMatchObject({ resolvedBy: 'three-way-merge', resolution: 'merged' });
    if (conflict?.type !== 'conflict') throw new Error('no conflict event');
    expect(conflict.changes.legacy?.map((c) => c.path)).toEqual(['name[0].family']);
    expect(conflict.changes.medplum?.map((c) => c.path).sort()).toEqual(['birthDate', 'telecom']);
    // A later sync starts from the merged content: the next legacy edit mirrors without conflict.
    await f.writer.update('Patient', 'p-1', { ...row!, first_name: 'Augusta' }, north);
    expect(eventsOf(f.events, 'conflict')).toHaveLength(1);
    expect((await bothSides(f)).patient).toMatchObject({
      name: [{ given: ['Augusta'] }],
      birthDate: '1815-12-10',
    });
  });

  it("threeWayMerge({ onCollision: 'manual' }): the same field changed differently waits for an operator", async () => {
    const { fixture: f, outcome } = await conflictWith(threeWayMerge({ onCollision: 'manual' }), (p) => ({
      ...p,
      name: [{ given: ['Ada'], family: 'Byron' }],
    }));
    expect(outcome).toBeInstanceOf(MirrorError);
    expect((outcome as MirrorError).cause).toBeInstanceOf(ReviewRequiredError);
    const { row, patient } = await bothSides(f);
    expect(row?.last_name).toBe('King');
    expect(patient.name?.[0]?.family).toBe('Byron');
    const [letter] = await f.writer.deadLetters();
    expect(letter).toMatchObject({ legacyId: 'p-1', reason: { name: 'ReviewRequiredError' } });
    expect(eventsOf(f.events, 'conflict')).toMatchObject([
      { resolution: 'manual', resolvedBy: 'three-way-merge' },
    ]);
    expect(eventsOf(f.events, 'resolved')).toEqual([]);
  });

  it("threeWayMerge({ onCollision: 'authority' }) takes the authority's value where both changed a field", async () => {
    const { fixture: f } = await conflictWith(threeWayMerge({ onCollision: 'authority' }), (p) => ({
      ...p,
      name: [{ given: ['Ada'], family: 'Byron' }],
      telecom: [phone],
    }));
    const { row, patient } = await bothSides(f);
    expect(patient).toMatchObject({ name: [{ family: 'King' }], telecom: [phone] });
    expect(row?.last_name).toBe('King');
  });

  it('manualReview({ task: true }): nothing is overwritten, a Task points at the resource, and an operator decides', async () => {
    const { fixture: f, outcome } = await conflictWith(manualReview({ task: true }));
    expect((outcome as MirrorError).cause).toBeInstanceOf(ReviewRequiredError);
    let sides = await bothSides(f);
    expect(sides.row?.last_name).toBe('King');
    expect(sides.patient).toMatchObject({ name: [{ family: 'Lovelace' }], birthDate: '1815-12-10' });
    const tasks = await f.direct.searchResources(
      'Task',
      { identifier: `${REVIEW_TASK_SYSTEM}|` },
      { cache: 'no-cache' },
    );
    expect(tasks).toHaveLength(1);
    expect(tasks[0]).toMatchObject({
      status: 'requested',
      focus: { reference: `Patient/${sides.patient.id}` },
    });

    const [letter] = await f.writer.deadLetters();
    expect(
      await f.writer.resolveDeadLetter(letter!.id, { winner: 'medplum' }, 'confirmed with the patient'),
    ).toBe(true);
    sides = await bothSides(f);
    expect(sides.row).toMatchObject({ last_name: 'Lovelace', birth_date: '1815-12-10' });
    expect(sides.patient).toMatchObject({ name: [{ family: 'Lovelace' }], birthDate: '1815-12-10' });
    expect(await f.writer.deadLetters()).toEqual([]);
    expect(await f.writer.deadLetters({ status: 'resolved' })).toMatchObject([
      { note: 'confirmed with the patient', resolution: 'medplum' },
    ]);
    expect(await f.writer.deadLetters({ status: 'discarded' })).toEqual([]);
    expect(eventsOf(f.events, 'resolved')).toMatchObject([{ resolvedBy: 'operator', resolution: 'medplum' }]);
    // Linked again: the next write mirrors without a conflict.
    await f.writer.update('Patient', 'p-1', { ...sides.row!, first_name: 'Augusta' }, north);
    expect(eventsOf(f.events, 'conflict')).toHaveLength(1);
  });

  it('byResourceType: the resolver of the record’s type decides', async () => {
    const { fixture: f } = await conflictWith(byResourceType({ Patient: medplumWins }, legacyWins));
    const { row } = await bothSides(f);
    expect(row?.last_name).toBe('Lovelace');
    expect(eventsOf(f.events, 'resolved')).toMatchObject([{ resolvedBy: 'medplum-wins' }]);
  });

  it('a resolver of your own sees base, both copies, the incoming write and the stage, and may merge', async () => {
    const seen: ConflictContext[] = [];
    const { fixture: f } = await conflictWith((ctx) => {
      seen.push(ctx);
      const legacy = ctx.legacy as Patient;
      return {
        merged: { ...(ctx.medplum as Patient), name: legacy.name ?? [] },
        by: 'keep-medplum-but-names',
      };
    });
    expect(seen).toHaveLength(1);
    const ctx = seen[0]!;
    expect(ctx).toMatchObject({
      resourceType: 'Patient',
      legacyId: 'p-1',
      unit: 'north',
      stage: 'dual-write',
      authority: 'legacy',
      base: { name: [{ family: 'Lovelace' }] },
      legacy: { name: [{ family: 'King' }] },
      medplum: { name: [{ family: 'Lovelace' }], birthDate: '1815-12-10' },
    });
    expect(ctx.incoming).toBe(ctx.legacy);
    expect(ctx.updatedAt.legacy).toBeDefined();
    expect(ctx.updatedAt.medplum).toBeDefined();
    const { row, patient } = await bothSides(f);
    expect(patient).toMatchObject({ name: [{ family: 'King' }], birthDate: '1815-12-10', telecom: [phone] });
    expect(row).toMatchObject({ last_name: 'King', birth_date: '1815-12-10' });
    expect(eventsOf(f.events, 'resolved')).toMatchObject([
      { resolvedBy: 'keep-medplum-but-names', resolution: 'merged' },
    ]);
  });

  it('records a conflict whose entry a newer write requeued while it was being resolved', async () => {
    const journal: { store?: MemoryStore } = {};
    let bumped = false;
    const resolver: ConflictResolver = async (ctx) => {
      if (!bumped && journal.store !== undefined) {
        bumped = true;
        // A newer write of the record arrives meanwhile: the lease will complete as requeued.
        await journal.store.intend(
          { resourceType: 'Patient', legacyId: 'p-1', target: 'medplum', unit: 'north', kind: 'upsert' },
          0,
        );
      }
      return authorityWins(ctx);
    };
    fixture = await startWriterFixture({ stage: 'dual-write', writer: { mirror: 'async', resolver } });
    const f = fixture;
    journal.store = f.store;
    await f.writer.create('Patient', ada, north);
    await f.writer.drain({ timeoutMs: 5_000 });
    const [copy] = await medplumCopies(f.direct, 'p-1');
    await f.direct.updateResource<Patient>({ ...copy!, birthDate: '1815-12-10' });
    await f.writer.update('Patient', 'p-1', { ...ada, last_name: 'King' }, north);
    await f.writer.drain({ timeoutMs: 5_000 });
    expect(bumped).toBe(true);
    expect(eventsOf(f.events, 'conflict')).toMatchObject([{ legacyId: 'p-1', resolvedBy: 'authority-wins' }]);
    expect(await f.store.listEvents({ type: 'conflict' })).toHaveLength(1);
    expect((await bothSides(f)).patient.name?.[0]?.family).toBe('King');
  });

  it('a resolver that throws or returns nonsense dead-letters the entry and writes nothing more', async () => {
    const { fixture: f, outcome } = await conflictWith(() => ({ pick: 'legacy' }) as never);
    expect((outcome as MirrorError).cause).toMatchObject({ name: 'RejectedError' });
    expect(String((outcome as MirrorError).cause)).toMatch(/must return/);
    const { patient } = await bothSides(f);
    expect(patient.name?.[0]?.family).toBe('Lovelace');
    expect(await f.writer.deadLetters()).toHaveLength(1);
  });

  it("without a base snapshot (baseSnapshot: 'hash-only') a three-way merge cannot merge, and its policy decides the whole record", async () => {
    fixture = await startWriterFixture({
      stage: 'dual-write',
      writer: { resolver: threeWayMerge({ onCollision: 'manual' }), baseSnapshot: 'hash-only' },
    });
    const { writer, direct, store } = fixture;
    const created = await writer.create('Patient', ada, north);
    expect((await store.getLink('Patient', 'p-1'))?.base).toBeUndefined();
    const copy = await direct.readResource('Patient', created.medplumId ?? '', { cache: 'no-cache' });
    await direct.updateResource({ ...copy, birthDate: '1815-12-10' });
    const outcome = await writer
      .update('Patient', 'p-1', { ...ada, last_name: 'King' }, north)
      .catch((e: unknown) => e);
    expect((outcome as MirrorError).cause).toMatchObject({
      name: 'ReviewRequiredError',
      reason: 'no base snapshot to merge against',
    });
  });

  it('resolveDeadLetter refuses a resolution that decides nothing, and an unknown id', async () => {
    const { fixture: f } = await conflictWith(manualReview());
    const [letter] = await f.writer.deadLetters();
    await expect(f.writer.resolveDeadLetter(letter!.id, { manual: 'later' })).rejects.toMatchObject({
      name: 'InvalidInputError',
      field: 'resolution',
    });
    await expect(f.writer.resolveDeadLetter(letter!.id, { winner: 'both' } as never)).rejects.toMatchObject({
      name: 'InvalidInputError',
    });
    await expect(
      f.writer.resolveDeadLetter(letter!.id, {
        merged: { resourceType: 'Observation', status: 'final', code: {} },
      }),
    ).rejects.toMatchObject({ name: 'InvalidInputError', field: 'resolution.merged.resourceType' });
    await expect(f.writer.resolveDeadLetter(letter!.id, { winner: 'legacy' }, '')).rejects.toMatchObject({
      field: 'note',
    });
    await expect(f.writer.resolveDeadLetter('999999', { winner: 'legacy' })).rejects.toMatchObject({
      name: 'DeadLetterNotFoundError',
    });
    expect(await f.writer.deadLetters()).toHaveLength(1);
  });
});

import type { Patient } from '@medplum/fhirtypes';
import { afterEach, describe, expect, it } from 'vitest';
import { ConflictError, manualReview, MirrorError, ReviewRequiredError } from '../../src/index.ts';
import { MedplumSide } from '../../src/sides/medplum-side.ts';
import type { MemoryLegacyAdapter } from '../../src/testing/index.ts';
import type { PatientRow } from '../harness/patient-fixture.ts';
import { medplumCopies, north, startWriterFixture, type WriterFixture } from '../harness/writer-fixture.ts';

const ada: PatientRow = { id: 'p-1', first_name: 'Ada', last_name: 'Lovelace' };

let fixture: WriterFixture<MemoryLegacyAdapter<PatientRow>> | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

describe('conflicts', () => {
  it('a stale If-Match is answered 412 and surfaces as a ConflictError', async () => {
    fixture = await startWriterFixture();
    const side = new MedplumSide(fixture.medplum);
    const created = await fixture.direct.createResource<Patient>({
      resourceType: 'Patient',
      name: [{ family: 'A' }],
    });
    await fixture.direct.updateResource({ ...created, name: [{ family: 'B' }] });
    const error = await side
      .update({ ...created, name: [{ family: 'C' }] }, created.meta?.versionId, { resourceType: 'Patient' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConflictError);
    expect(error).toMatchObject({ status: 412, retryable: false, side: 'medplum' });
    expect(
      (await fixture.direct.readResource('Patient', created.id, { cache: 'no-cache' })).name?.[0]?.family,
    ).toBe('B');
  });

  it('with manualReview(), a Medplum copy edited since the last sync is not overwritten by a mirror', async () => {
    fixture = await startWriterFixture({ stage: 'dual-write', writer: { resolver: manualReview() } });
    const { writer, direct, legacy } = fixture;
    const created = await writer.create('Patient', ada, north);
    const copy = await direct.readResource('Patient', created.medplumId ?? '', { cache: 'no-cache' });
    await direct.updateResource({ ...copy, gender: 'female' });

    const error = await writer
      .update('Patient', 'p-1', { ...ada, last_name: 'King' }, north)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MirrorError);
    expect((error as MirrorError).cause).toBeInstanceOf(ReviewRequiredError);
    expect((error as MirrorError).cause).toMatchObject({
      report: { expectedVersion: created.medplum.version, target: 'medplum', resolution: 'manual' },
      side: 'medplum',
    });
    // The authority took the write; the edited Medplum copy was left alone for an operator.
    expect((await legacy.read('Patient', 'p-1'))?.row.last_name).toBe('King');
    const [after] = await medplumCopies(direct, 'p-1');
    expect(after).toMatchObject({ gender: 'female', name: [{ family: 'Lovelace' }] });
    expect(await writer.deadLetters()).toMatchObject([
      { legacyId: 'p-1', reason: { name: 'ReviewRequiredError' } },
    ]);
  });

  it('by default the authority wins a conflict: the mirror overwrites the mapped fields and the conflict is recorded', async () => {
    fixture = await startWriterFixture({ stage: 'dual-write' });
    const { writer, direct, store, events } = fixture;
    const created = await writer.create('Patient', ada, north);
    const copy = await direct.readResource('Patient', created.medplumId ?? '', { cache: 'no-cache' });
    const edited = await direct.updateResource({
      ...copy,
      gender: 'female',
      name: [{ family: 'EditedInMedplum' }],
    });

    const result = await writer.update('Patient', 'p-1', { ...ada, last_name: 'King' }, north);
    expect(result.mirror).toBe('applied');
    const [after] = await medplumCopies(direct, 'p-1');
    // The mapping owns the name, so the authority's name wins; gender is not mapped and stays.
    expect(after).toMatchObject({ gender: 'female', name: [{ family: 'King' }] });
    const conflict = { type: 'conflict', resourceType: 'Patient', legacyId: 'p-1', target: 'medplum' };
    expect(events).toContainEqual(
      expect.objectContaining({
        ...conflict,
        expectedVersion: created.medplum.version,
        actualVersion: edited.meta?.versionId,
      }),
    );
    expect(await store.listEvents({ type: 'conflict' })).toMatchObject([
      {
        legacyId: 'p-1',
        unit: 'north',
        data: { target: 'medplum', resolvedBy: 'authority-wins', resolution: 'legacy' },
      },
    ]);
    expect(await writer.deadLetters()).toEqual([]);
  });

  it('with manualReview(), a legacy row edited since the last sync is not overwritten by a mirror from Medplum', async () => {
    fixture = await startWriterFixture({ stage: 'live', writer: { resolver: manualReview() } });
    const { writer, legacy } = fixture;
    await writer.create('Patient', ada, north);
    const current = await legacy.read('Patient', 'p-1');
    await legacy.update(
      'Patient',
      'p-1',
      { ...ada, notes: 'edited in the legacy screens' },
      { expectedVersion: current?.version },
    );

    const error = await writer
      .update('Patient', 'p-1', { ...ada, last_name: 'King' }, north)
      .catch((e: unknown) => e);
    expect((error as MirrorError).cause).toMatchObject({ name: 'ReviewRequiredError', side: 'legacy' });
    expect((await legacy.read('Patient', 'p-1'))?.row).toMatchObject({
      last_name: 'Lovelace',
      notes: 'edited in the legacy screens',
    });
  });

  it('a stale expectedVersion on the authority fails before anything is written', async () => {
    fixture = await startWriterFixture({ stage: 'dual-write' });
    const { writer, legacy, direct } = fixture;
    const created = await writer.create('Patient', ada, north);
    await writer.update('Patient', 'p-1', { ...ada, last_name: 'Second' }, north);
    const error = await writer
      .update('Patient', 'p-1', { ...ada, last_name: 'Third' }, north, {
        expectedVersion: created.legacy.version,
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConflictError);
    expect(error).toMatchObject({ side: 'legacy', expectedVersion: created.legacy.version });
    expect((await legacy.read('Patient', 'p-1'))?.row.last_name).toBe('Second');
    expect((await medplumCopies(direct, 'p-1'))[0]?.name?.[0]?.family).toBe('Second');
  });

  it('a create of a record that exists with other content is a conflict, not an overwrite', async () => {
    fixture = await startWriterFixture({ stage: 'dual-write' });
    const { writer, legacy } = fixture;
    await writer.create('Patient', ada, north);
    await expect(writer.create('Patient', { ...ada, last_name: 'Other' }, north)).rejects.toBeInstanceOf(
      ConflictError,
    );
    expect((await legacy.read('Patient', 'p-1'))?.row.last_name).toBe('Lovelace');
  });
});

describe('fields a mapping does not own survive a mirror', () => {
  it('Medplum fields outside the mapping survive a mirror of a legacy update', async () => {
    fixture = await startWriterFixture({ stage: 'dual-write' });
    const { writer, direct } = fixture;
    await writer.createResource(
      {
        resourceType: 'Patient',
        identifier: [{ system: 'https://legacy.example.org/patient-id', value: 'p-9' }],
        name: [{ given: ['Ada'], family: 'Lovelace' }],
        telecom: [{ system: 'phone', value: '555-0100' }],
      },
      north,
    );
    await writer.update('Patient', 'p-9', { id: 'p-9', first_name: 'Ada', last_name: 'King' }, north);
    const [copy] = await medplumCopies(direct, 'p-9');
    expect(copy).toMatchObject({
      name: [{ family: 'King' }],
      telecom: [{ system: 'phone', value: '555-0100' }],
    });
  });

  it('legacy columns outside the mapping survive a mirror of a Medplum update', async () => {
    fixture = await startWriterFixture({ stage: 'live' });
    const { writer, legacy } = fixture;
    const created = await writer.create('Patient', { ...ada, notes: 'allergic to penicillin' }, north);
    const patient = created.resource as Patient | undefined;
    if (patient === undefined) throw new Error('no resource');
    await writer.updateResource({ ...patient, name: [{ given: ['Ada'], family: 'King' }] }, north);
    expect((await legacy.read('Patient', 'p-1'))?.row).toMatchObject({
      last_name: 'King',
      notes: 'allergic to penicillin',
    });
  });
});

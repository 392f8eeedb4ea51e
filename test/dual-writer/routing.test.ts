import { afterEach, describe, expect, it } from 'vitest';
import { STAGES, routeOf } from '../../src/index.ts';
import type { PatientRow } from '../harness/patient-fixture.ts';
import { medplumCopies, startWriterFixture, type WriterFixture } from '../harness/writer-fixture.ts';
import type { MemoryLegacyAdapter } from '../../src/testing/index.ts';

const ada: PatientRow = { id: 'p-1', first_name: 'Ada', last_name: 'Lovelace', birth_date: '1815-12-10' };

let fixture: WriterFixture<MemoryLegacyAdapter<PatientRow>> | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

describe('routing by stage', () => {
  for (const stage of STAGES) {
    const route = routeOf(stage);
    const writesLegacy = route.authority === 'legacy' || route.mirrorTo === 'legacy';
    const writesMedplum = route.authority === 'medplum' || route.mirrorTo === 'medplum';

    it(`${stage}: a create reaches ${[writesLegacy && 'legacy', writesMedplum && 'Medplum'].filter(Boolean).join(' and ')}, authority ${route.authority} first`, async () => {
      fixture = await startWriterFixture({ stage });
      const { writer, legacy, direct } = fixture;
      const result = await writer.create('Patient', ada, { unit: 'any' });

      expect(result).toMatchObject({ stage, authority: route.authority, legacyId: 'p-1' });
      expect(result.legacy.action).toBe(writesLegacy ? 'created' : 'skipped');
      expect(result.medplum.action).toBe(writesMedplum ? 'created' : 'skipped');
      expect(result.mirror).toBe(route.mirrorTo === undefined ? 'not-required' : 'applied');
      expect((await legacy.read('Patient', 'p-1'))?.row.last_name).toBe(
        writesLegacy ? 'Lovelace' : undefined,
      );
      const copies = await medplumCopies(direct, 'p-1');
      expect(copies.map((p) => p.name?.[0]?.family)).toEqual(writesMedplum ? ['Lovelace'] : []);
      if (route.mirrorTo !== undefined) {
        expect(await writer.linkOf('Patient', 'p-1')).toMatchObject({
          legacyId: 'p-1',
          medplumId: copies[0]?.id,
        });
      }
    });

    it(`${stage}: reads come from ${route.readFrom}`, async () => {
      fixture = await startWriterFixture({ stage });
      const { writer, legacy, direct } = fixture;
      // Put different content on each side so the read tells which side answered.
      await legacy.create('Patient', { id: 'p-2', first_name: 'Grace', last_name: 'FromLegacy' });
      const resource = await direct.createResource({
        resourceType: 'Patient',
        identifier: [{ system: 'https://legacy.example.org/patient-id', value: 'p-2' }],
        name: [{ given: ['Grace'], family: 'FromMedplum' }],
      });
      const row = await writer.read('Patient', 'p-2', { unit: 'any' });
      expect(row?.last_name).toBe(route.readFrom === 'legacy' ? 'FromLegacy' : 'FromMedplum');
      expect(row?.id).toBe('p-2');
      if (route.readFrom === 'medplum') {
        const read = await writer.readResource('Patient', resource.id, { unit: 'any' });
        expect(read?.name?.[0]?.family).toBe('FromMedplum');
      }
    });
  }

  it('routes each unit by its own stage in one writer', async () => {
    fixture = await startWriterFixture({ stage: 'legacy-only' });
    const { writer, plan, legacy, direct } = fixture;
    await plan.set('north', 'dual-write');
    await plan.set('south', 'live', { force: true });
    const n = await writer.create(
      'Patient',
      { id: 'n-1', first_name: 'N', last_name: 'North' },
      { unit: 'north' },
    );
    const s = await writer.create(
      'Patient',
      { id: 's-1', first_name: 'S', last_name: 'South' },
      { unit: 'south' },
    );
    const e = await writer.create(
      'Patient',
      { id: 'e-1', first_name: 'E', last_name: 'East' },
      { unit: 'east' },
    );
    expect([n.authority, s.authority, e.authority]).toEqual(['legacy', 'medplum', 'legacy']);
    expect(await medplumCopies(direct, 'e-1')).toHaveLength(0);
    expect(await medplumCopies(direct, 'n-1')).toHaveLength(1);
    expect(await legacy.read('Patient', 's-1')).toBeDefined();
  });

  it('mirrors updates and deletes in the direction of the stage', async () => {
    fixture = await startWriterFixture({ stage: 'live' });
    const { writer, legacy, direct } = fixture;
    const created = await writer.create('Patient', ada, { unit: 'any' });
    const updated = await writer.update('Patient', 'p-1', { ...ada, last_name: 'King' }, { unit: 'any' });
    expect(updated).toMatchObject({ authority: 'medplum', mirror: 'applied' });
    expect(updated.medplum).toMatchObject({ action: 'updated', id: created.medplumId });
    expect((await legacy.read('Patient', 'p-1'))?.row.last_name).toBe('King');

    const deleted = await writer.delete('Patient', 'p-1', { unit: 'any' });
    expect(deleted.medplum.action).toBe('deleted');
    expect(deleted.legacy.action).toBe('deleted');
    expect(await legacy.read('Patient', 'p-1')).toBeUndefined();
    expect(await medplumCopies(direct, 'p-1')).toHaveLength(0);
    expect(await writer.linkOf('Patient', 'p-1')).toBeUndefined();
  });

  it('starts a record in Medplum with a FHIR-shaped create and mirrors it to legacy', async () => {
    fixture = await startWriterFixture({ stage: 'live' });
    const { writer, legacy } = fixture;
    const result = await writer.createResource(
      {
        resourceType: 'Patient',
        identifier: [{ system: 'https://legacy.example.org/patient-id', value: 'm-1' }],
        name: [{ given: ['Katherine'], family: 'Johnson' }],
      },
      { unit: 'any' },
    );
    expect(result).toMatchObject({ authority: 'medplum', legacyId: 'm-1', mirror: 'applied' });
    expect((await legacy.read('Patient', 'm-1'))?.row).toMatchObject({
      id: 'm-1',
      first_name: 'Katherine',
      last_name: 'Johnson',
    });
  });

  it('lets the legacy system assign the id of a FHIR-shaped create while it is the authority', async () => {
    fixture = await startWriterFixture({ stage: 'dual-write' });
    const { writer, direct } = fixture;
    const result = await writer.createResource(
      { resourceType: 'Patient', name: [{ given: ['Mary'], family: 'Jackson' }] },
      { unit: 'any' },
    );
    expect(result.legacyId).toMatch(/.+/);
    const copies = await medplumCopies(direct, result.legacyId);
    expect(copies).toHaveLength(1);
    expect(copies[0]?.id).toBe(result.medplumId);
  });
});

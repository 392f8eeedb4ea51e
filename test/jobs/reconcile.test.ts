import type { Patient } from '@medplum/fhirtypes';
import { afterEach, describe, expect, it } from 'vitest';
import { reconcile } from '../../src/jobs/reconcile.ts';
import { CutoverPlan } from '../../src/index.ts';
import type { MemoryLegacyAdapter } from '../../src/testing/index.ts';
import { PATIENT_SYSTEM, patientMapping, type PatientRow } from '../harness/patient-fixture.ts';
import { medplumCopies, north, startWriterFixture, type WriterFixture } from '../harness/writer-fixture.ts';

let fixture: WriterFixture<MemoryLegacyAdapter<PatientRow>> | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

const copy = (id: string, family: string): Patient => ({
  resourceType: 'Patient',
  identifier: [{ system: PATIENT_SYSTEM, value: id }],
  name: [{ given: ['F'], family }],
});

/** 20 records mirrored and linked, then one of each class seeded behind the writer's back. */
async function seeded(
  writer: { readonly mirror?: 'sync' | 'async' } = {},
): Promise<WriterFixture<MemoryLegacyAdapter<PatientRow>>> {
  const f = await startWriterFixture({ stage: 'dual-write', writer });
  for (let i = 0; i < 20; i += 1)
    await f.legacy.create('Patient', { id: String(1000 + i), first_name: 'F', last_name: `L${i}` });
  await f.writer.backfill({ resourceType: 'Patient', unit: 'north', direction: 'to-medplum' });
  await f.writer.drain();
  const linked = async (id: string) => {
    const link = await f.store.getLink('Patient', id);
    return f.direct.readResource('Patient', link?.medplumId ?? '', { cache: 'no-cache' });
  };
  // missing in Medplum: a row written straight into the legacy system.
  await f.legacy.create('Patient', { id: '2000', first_name: 'F', last_name: 'OnlyLegacy' });
  // missing in legacy: a resource created straight in Medplum.
  await f.direct.createResource(copy('3000', 'OnlyMedplum'));
  // duplicate: a second copy of a linked record.
  await f.direct.createResource(copy('1001', 'L1'));
  // orphan link: the linked Medplum copy deleted.
  await f.direct.deleteResource('Patient', (await linked('1002')).id);
  // divergent, linked: the Medplum copy edited directly.
  await f.direct.updateResource({ ...(await linked('1003')), name: [{ given: ['F'], family: 'Edited' }] });
  // divergent, unlinked: a legacy row and a different copy that were never synced.
  await f.legacy.create('Patient', { id: '2001', first_name: 'F', last_name: 'Legacy' });
  await f.direct.createResource(copy('2001', 'Other'));
  return f;
}

describe('reconcile', () => {
  it('classifies each seeded record exactly, and stores a report of counts and ids, never values', async () => {
    fixture = await seeded();
    const report = await fixture.writer.reconcile({ resourceType: 'Patient', unit: 'north', pageSize: 7 });
    expect(report).toMatchObject({ kind: 'reconcile', state: 'done', direction: 'to-medplum' });
    expect(report.counts).toEqual({
      scanned: 22,
      scannedMedplum: 22,
      agree: 18,
      missingInMedplum: 1,
      missingInLegacy: 1,
      duplicate: 1,
      orphanLink: 1,
      divergent: 2,
      'path:name[0].family': 2,
    });
    expect(report.samples).toMatchObject({
      missingInMedplum: ['2000'],
      missingInLegacy: ['3000'],
      duplicate: ['1001'],
      orphanLink: ['1002'],
      divergent: ['1003', '2001'],
    });
    const stored = await fixture.store.getJob(report.id);
    expect(stored?.counts).toEqual(report.counts);
    expect(JSON.stringify(stored)).not.toMatch(/Edited|Other|OnlyLegacy|OnlyMedplum/);
    // Report only: nothing queued.
    expect((await fixture.writer.outbox()).pending).toBe(0);
  });

  it('reads content only where the cheap facts disagree', async () => {
    fixture = await startWriterFixture({
      stage: 'dual-write',
      writer: { divergence: { verifySampleRate: 0 } },
    });
    for (let i = 0; i < 30; i += 1)
      await fixture.legacy.create('Patient', { id: String(1000 + i), first_name: 'F', last_name: `L${i}` });
    await fixture.writer.backfill({ resourceType: 'Patient', unit: 'north', direction: 'to-medplum' });
    await fixture.writer.drain();
    const before = fixture.server.requests;
    const report = await fixture.writer.reconcile({ resourceType: 'Patient', unit: 'north', pageSize: 100 });
    expect(report.counts).toMatchObject({ scanned: 30, agree: 30 });
    // One `_id&_elements` search for the legacy page, one search for the Medplum page.
    expect(fixture.server.requests - before).toBe(2);
  });

  it('repairs: mirrors queued per the reference side, duplicates removed under the policy, and a second reconcile all agrees', async () => {
    fixture = await seeded();
    const first = await fixture.writer.reconcile({
      resourceType: 'Patient',
      unit: 'north',
      repair: 'queue',
      duplicates: 'remove-unlinked',
    });
    expect(first.counts.agree).toBe(18);
    await fixture.writer.drain();
    expect(await fixture.writer.deadLetters()).toEqual([]);
    const second = await fixture.writer.reconcile({ resourceType: 'Patient', unit: 'north' });
    expect(second.counts).toEqual({ scanned: 23, scannedMedplum: 23, agree: 23 });
    expect(await medplumCopies(fixture.direct, '1001')).toHaveLength(1);
    expect((await medplumCopies(fixture.direct, '1003'))[0]?.name?.[0]?.family).toBe('L3');
    expect((await fixture.legacy.read('Patient', '3000'))?.row.last_name).toBe('OnlyMedplum');
  });

  it('sends duplicates to review by default', async () => {
    fixture = await seeded();
    await fixture.writer.reconcile({ resourceType: 'Patient', unit: 'north', repair: 'queue' });
    const letters = await fixture.writer.deadLetters();
    expect(letters.map((letter) => [letter.legacyId, letter.reason.name])).toEqual([
      ['1001', 'ReconcileReviewError'],
    ]);
    expect(await medplumCopies(fixture.direct, '1001')).toHaveLength(2);
  });

  it('holds a duplicate for review once, however often reconciliations find it', async () => {
    fixture = await seeded();
    await fixture.writer.reconcile({ resourceType: 'Patient', unit: 'north', repair: 'queue' });
    await fixture.writer.drain();
    await fixture.writer.reconcile({ resourceType: 'Patient', unit: 'north', repair: 'queue' });
    const letters = await fixture.writer.deadLetters();
    expect(letters.map((letter) => [letter.legacyId, letter.target, letter.reason.name])).toEqual([
      ['1001', 'medplum', 'ReconcileReviewError'],
    ]);
    // Decided by a person: retried, the letter mirrors the record to its target and closes.
    await fixture.store.retryDeadLetter(letters[0]?.id ?? '');
    const drained = await fixture.writer.drain();
    expect(drained.remaining).toMatchObject({ pending: 0, dead: 0 });
    expect(await fixture.writer.deadLetters()).toEqual([]);
  });

  it('holds a record for review beside its pending mirror, which still applies', async () => {
    fixture = await seeded({ mirror: 'async' });
    const row = { id: '1001', first_name: 'F', last_name: 'L1-corrected' };
    await fixture.writer.update('Patient', '1001', row, { unit: 'north' });
    await fixture.writer.reconcile({ resourceType: 'Patient', unit: 'north', repair: 'queue' });
    const letters = await fixture.writer.deadLetters();
    expect(letters.map((letter) => [letter.legacyId, letter.reason.name])).toEqual([
      ['1001', 'ReconcileReviewError'],
    ]);
    await fixture.writer.drain();
    const link = await fixture.store.getLink('Patient', '1001');
    const linked = await fixture.direct.readResource('Patient', link?.medplumId ?? '', { cache: 'no-cache' });
    expect(linked.name?.[0]?.family).toBe('L1-corrected');
  });

  it("retries its Medplum requests as the writer's retry option says", async () => {
    // Eight retries: seven 503s in a row are outlasted, where the library's five would fail the job.
    fixture = await startWriterFixture({
      stage: 'dual-write',
      writer: { retry: { retries: 8, minTimeoutMs: 1, maxTimeoutMs: 2 } },
    });
    for (let i = 0; i < 3; i += 1)
      await fixture.writer.create(
        'Patient',
        { id: String(1000 + i), first_name: 'F', last_name: `L${i}` },
        north,
      );
    fixture.server.faults.failNext(7, 503, { methods: ['GET'] });
    const report = await fixture.writer.reconcile({ resourceType: 'Patient', unit: 'north' });
    expect(fixture.server.faults.stats.injected.status).toBe(7);
    expect(report).toMatchObject({ state: 'done', counts: { scanned: 3, scannedMedplum: 3, agree: 3 } });
  });

  it("without feeds.unitOf, refuses a unit's reconcile while the plan has other units, rather than take their records for its own", async () => {
    const units = { north: 'dual-write', south: 'legacy-only' } as const;
    fixture = await startWriterFixture({
      writer: {
        plan: new CutoverPlan<{ unit: string }>({ default: 'legacy-only', units, unitOf: (ctx) => ctx.unit }),
      },
    });
    await fixture.writer.create('Patient', { id: '1000', first_name: 'F', last_name: 'North' }, north);
    await fixture.writer.create(
      'Patient',
      { id: '2000', first_name: 'F', last_name: 'South' },
      { unit: 'south' },
    );
    await expect(
      fixture.writer.reconcile({ resourceType: 'Patient', unit: 'north', repair: 'queue' }),
    ).rejects.toMatchObject({ name: 'InvalidInputError', field: 'unit' });
    await expect(
      fixture.writer.backfill({ resourceType: 'Patient', unit: 'north', direction: 'to-medplum' }),
    ).rejects.toMatchObject({ name: 'InvalidInputError', field: 'unit' });
    // Nothing was queued: south's record, legacy-only, never reaches Medplum under north's stage.
    expect(await fixture.writer.outbox()).toMatchObject({ pending: 0 });
    expect(await medplumCopies(fixture.direct, '2000')).toHaveLength(0);
  });

  it('with a unitOf, counts the records of other units as skipped', async () => {
    const units = { north: 'dual-write', south: 'legacy-only' } as const;
    fixture = await startWriterFixture({
      writer: {
        plan: new CutoverPlan<{ unit: string }>({ default: 'legacy-only', units, unitOf: (ctx) => ctx.unit }),
        feeds: { unitOf: (record) => (record.legacyId.startsWith('2') ? 'south' : 'north') },
      },
    });
    await fixture.writer.create('Patient', { id: '1000', first_name: 'F', last_name: 'North' }, north);
    await fixture.writer.create(
      'Patient',
      { id: '2000', first_name: 'F', last_name: 'South' },
      { unit: 'south' },
    );
    const report = await fixture.writer.reconcile({
      resourceType: 'Patient',
      unit: 'north',
      repair: 'queue',
    });
    expect(report.counts).toEqual({ scanned: 2, skipped: 1, scannedMedplum: 1, agree: 1 });
    expect(await fixture.writer.outbox()).toMatchObject({ pending: 0 });
  });

  it('works without a writer, over the store, the two clients and the mappings', async () => {
    fixture = await seeded();
    const report = await reconcile(
      { store: fixture.store, legacy: fixture.legacy, medplum: fixture.medplum, mappings: [patientMapping] },
      { resourceType: 'Patient', unit: 'north', direction: 'to-medplum', sampleSize: 1 },
    );
    expect(report.counts.divergent).toBe(2);
    expect(report.samples.divergent).toEqual(['1003']);
  });
});

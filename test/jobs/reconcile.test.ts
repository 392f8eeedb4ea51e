import type { Patient } from '@medplum/fhirtypes';
import { afterEach, describe, expect, it, vi } from 'vitest';
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
    const reads = vi.spyOn(fixture.legacy, 'readMany');
    const report = await fixture.writer.reconcile({ resourceType: 'Patient', unit: 'north', pageSize: 100 });
    expect(report.counts).toEqual({ scanned: 30, scannedMedplum: 30, agree: 30 });
    // Each side read once: one search for the Medplum page (whose copies the legacy pass takes
    // from the journal, with no `_id` search of its own), the legacy side by its scan only.
    expect(fixture.server.requests - before).toBe(1);
    expect(reads).not.toHaveBeenCalled();
    // What joined the passes is gone with the job.
    expect(await fixture.store.listSeenCopies(report.id, { limit: 10 })).toEqual([]);
  });

  it('finds a link whose legacy record is gone after both passes, from the copies no record took', async () => {
    fixture = await startWriterFixture({ stage: 'dual-write' });
    for (let i = 0; i < 5; i += 1)
      await fixture.writer.create(
        'Patient',
        { id: String(1000 + i), first_name: 'F', last_name: `L${i}` },
        north,
      );
    // Deleted straight in the legacy system: its link and its Medplum copy remain.
    await fixture.legacy.delete('Patient', '1002');
    const report = await fixture.writer.reconcile({
      resourceType: 'Patient',
      unit: 'north',
      pageSize: 2,
      repair: 'queue',
    });
    expect(report.counts).toEqual({ scanned: 4, scannedMedplum: 5, agree: 4, orphanLink: 1 });
    expect(report.samples.orphanLink).toEqual(['1002']);
    // The legacy side is the reference (to-medplum) and lost the record: a person decides.
    const letters = await fixture.writer.deadLetters();
    expect(letters.map((letter) => [letter.legacyId, letter.reason.name])).toEqual([
      ['1002', 'ReconcileReviewError'],
    ]);
  });

  it('resumed by a fresh worker in either pass, counts every record once', async () => {
    fixture = await seeded();
    const whole = await fixture.writer.reconcile({ resourceType: 'Patient', unit: 'north', pageSize: 7 });
    // Stopped after its 2nd page (in the Medplum pass) and then after its 5th (in the legacy
    // pass), each time resumed from the journal by a worker of its own.
    const stopAfter = async (pages: number, jobId?: string) => {
      const stop = new AbortController();
      return fixture!.writer.reconcile({
        resourceType: 'Patient',
        unit: 'north',
        pageSize: 7,
        jobId,
        signal: stop.signal,
        onProgress: ({ job }) => {
          if (job.pagesDone >= pages) stop.abort();
        },
      });
    };
    const first = await stopAfter(2);
    expect(first).toMatchObject({ state: 'running', pagesDone: 2 });
    expect(first.counts).not.toHaveProperty('scanned');
    const second = await stopAfter(5, first.id);
    expect(second).toMatchObject({ state: 'running', pagesDone: 5 });
    const resumed = await fixture.writer.reconcile({
      resourceType: 'Patient',
      unit: 'north',
      pageSize: 7,
      jobId: first.id,
    });
    expect(resumed.state).toBe('done');
    expect(resumed.counts).toEqual(whole.counts);
  });

  it('refuses to resume a reconciliation whose cursor an earlier version wrote', async () => {
    fixture = await seeded();
    const job = await fixture.store.createJob({
      kind: 'reconcile',
      resourceType: 'Patient',
      unit: 'north',
      direction: 'to-medplum',
    });
    const lease = await fixture.store.leaseJobPage(job.id, 'old', 60_000);
    await fixture.store.endJobPage(lease!, JSON.stringify({ side: 'legacy', after: '1006' }));
    await fixture.store.completeJobPage(lease!, { counts: { scanned: 7, agree: 7 } });
    await expect(
      fixture.writer.reconcile({ resourceType: 'Patient', unit: 'north', jobId: job.id }),
    ).rejects.toMatchObject({ name: 'InvalidInputError', field: 'cursor' });
    expect(await fixture.store.getJob(job.id)).toMatchObject({ state: 'failed' });
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
    // South's copy, made in Medplum by someone else: read by the Medplum pass, and south's.
    await fixture.direct.createResource(copy('2001', 'South'));
    const report = await fixture.writer.reconcile({
      resourceType: 'Patient',
      unit: 'north',
      repair: 'queue',
    });
    expect(report.counts).toEqual({
      scanned: 2,
      skipped: 1,
      scannedMedplum: 2,
      skippedMedplum: 1,
      agree: 1,
    });
    expect(report.samples.skippedMedplum).toEqual(['2001']);
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

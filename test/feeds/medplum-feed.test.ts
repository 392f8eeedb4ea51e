import { setTimeout as sleep } from 'node:timers/promises';
import type { Patient, Resource } from '@medplum/fhirtypes';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { medplumCursorName } from '../../src/feeds/medplum-feed.ts';
import { MedplumSide } from '../../src/sides/medplum-side.ts';
import { PATIENT_SYSTEM, type PatientRow } from '../harness/patient-fixture.ts';
import { medplumCopies, north, startWriterFixture, type WriterFixture } from '../harness/writer-fixture.ts';
import type { MemoryLegacyAdapter } from '../../src/testing/index.ts';
import { allocatingMapping, feedsOver, patient } from './feeds-fixture.ts';

describe('Medplum change feed', () => {
  let fx: WriterFixture<MemoryLegacyAdapter<PatientRow>>;
  beforeEach(async () => {
    fx = await startWriterFixture({ stage: 'dual-write' });
  });
  afterEach(async () => {
    await fx.close();
  });

  async function linkedPatient(id: string, family: string): Promise<Patient> {
    await fx.writer.create('Patient', { id, first_name: 'Ada', last_name: family }, north);
    const [copy] = await medplumCopies(fx.direct, id);
    if (copy === undefined) throw new Error('no Medplum copy');
    return copy;
  }

  it('mirrors a direct Medplum edit to the legacy system through the outbox', async () => {
    const copy = await linkedPatient('p-1', 'Lovelace');
    const feeds = feedsOver(fx);
    await feeds.pollOnce();
    await fx.direct.updateResource({ ...copy, name: [{ given: ['Ada'], family: 'King' }] });
    const report = await feeds.pollOnce();
    expect(report).toMatchObject({ queued: 1, errors: 0 });
    expect(await fx.store.outboxCounts()).toMatchObject({ pending: 1 });
    await fx.writer.drain();
    expect((await fx.legacy.read('Patient', 'p-1'))?.row.last_name).toBe('King');
  });

  it('does not ping-pong: after the mirror, both feeds queue nothing and versions stop moving', async () => {
    const copy = await linkedPatient('p-1', 'Lovelace');
    const feeds = feedsOver(fx);
    await fx.direct.updateResource({ ...copy, name: [{ given: ['Ada'], family: 'King' }] });
    await feeds.pollOnce();
    await fx.writer.drain();
    const legacyVersion = (await fx.legacy.read('Patient', 'p-1'))?.version;
    const medplumVersion = (await medplumCopies(fx.direct, 'p-1'))[0]?.meta?.versionId;
    const echoesBefore = feeds.counts.echoes;
    for (let pass = 0; pass < 3; pass += 1) {
      expect(await feeds.pollOnce()).toMatchObject({ queued: 0, errors: 0 });
      await fx.writer.drain();
    }
    expect(feeds.counts.echoes).toBeGreaterThan(echoesBefore);
    expect(await fx.store.outboxCounts()).toMatchObject({ pending: 0, leased: 0 });
    expect((await fx.legacy.read('Patient', 'p-1'))?.version).toBe(legacyVersion);
    expect((await medplumCopies(fx.direct, 'p-1'))[0]?.meta?.versionId).toBe(medplumVersion);
  });

  it('stamps a legacy id on a resource created directly in Medplum, then creates its legacy row', async () => {
    const feeds = feedsOver(fx, {}, { mapping: allocatingMapping() });
    const created = await fx.direct.createResource(patient('Grace', 'Hopper'));
    expect(await feeds.pollOnce()).toMatchObject({ queued: 1, skippedWithoutLegacyId: 0 });
    const stamped = await fx.direct.readResource('Patient', created.id, { cache: 'no-cache' });
    expect(stamped.identifier).toEqual([{ system: PATIENT_SYSTEM, value: 'mp-1' }]);
    await fx.writer.drain();
    expect((await fx.legacy.read('Patient', 'mp-1'))?.row).toMatchObject({ last_name: 'Hopper' });
    await feeds.pollOnce();
    await fx.writer.drain();
    expect(await feeds.pollOnce()).toMatchObject({ queued: 0 });
    expect(await medplumCopies(fx.direct, 'mp-1')).toHaveLength(1);
  });

  it('counts and skips a resource without identifier when the mapping cannot allocate one', async () => {
    const feeds = feedsOver(fx);
    await fx.direct.createResource(patient('Grace', 'Hopper'));
    expect(await feeds.pollOnce()).toMatchObject({ queued: 0, skippedWithoutLegacyId: 1 });
  });

  it('does not miss a resource stamped in the millisecond of the cursor (the overlap re-reads it)', async () => {
    const first = await fx.direct.createResource(patient('Ada', 'Lovelace', 'p-1'));
    const feeds = feedsOver(fx);
    expect(await feeds.pollOnce()).toMatchObject({ queued: 1 });
    await fx.writer.drain();
    // Committed late, with the timestamp of the one already read (and one a little earlier).
    const at = first.meta?.lastUpdated ?? '';
    for (const [id, lastUpdated] of [
      ['p-2', at],
      ['p-3', new Date(Date.parse(at) - 500).toISOString()],
    ] as const) {
      await fx.server.repo.withSeeding(() =>
        fx.server.repo.createResource({ ...patient('Late', id, id), meta: { lastUpdated } }),
      );
    }
    expect(await fx.store.getCursor(medplumCursorName('Patient'))).toBe(at);
    expect(await feeds.pollOnce()).toMatchObject({ queued: 2 });
    await fx.writer.drain();
    for (const id of ['p-1', 'p-2', 'p-3']) expect(await fx.legacy.read('Patient', id)).toBeDefined();
  });

  it('starts at medplumSince when no cursor is stored: resources last updated before it are not read', async () => {
    const oldAt = Date.parse(
      (await fx.direct.createResource(patient('Old', 'Record', 'p-old'))).meta?.lastUpdated ?? '',
    );
    // The next resource must be stamped in a later millisecond.
    while (Date.now() <= oldAt) await sleep(1);
    const since =
      (await fx.direct.createResource(patient('Boundary', 'Record', 'p-at'))).meta?.lastUpdated ?? '';
    await fx.direct.createResource(patient('New', 'Record', 'p-new'));
    const feeds = feedsOver(fx, { medplumSince: since });
    expect(await feeds.pollOnce()).toMatchObject({ seen: 2, queued: 2, errors: 0 });
    await fx.writer.drain();
    expect(await fx.legacy.read('Patient', 'p-old')).toBeUndefined();
    expect((await fx.legacy.read('Patient', 'p-at'))?.row.first_name).toBe('Boundary');
    expect((await fx.legacy.read('Patient', 'p-new'))?.row.first_name).toBe('New');
    // Once a cursor is stored, it decides: an edit of the old record is read.
    const [old] = await medplumCopies(fx.direct, 'p-old');
    await fx.direct.updateResource({ ...old!, name: [{ given: ['Old'], family: 'Edited' }] });
    expect(await feeds.pollOnce()).toMatchObject({ queued: 1 });
  });

  it('skips units whose stage mirrors nothing', async () => {
    await fx.plan.set('north', 'legacy-only');
    const feeds = feedsOver(fx);
    await fx.direct.createResource(patient('Ada', 'Lovelace', 'p-1'));
    expect(await feeds.pollOnce()).toMatchObject({ queued: 0, skippedByStage: 1 });
    expect(await fx.store.outboxCounts()).toMatchObject({ pending: 0 });
  });

  it('counts a record whose unit is unknown and skips it', async () => {
    const feeds = feedsOver(fx, {}, { unitOf: () => undefined });
    await fx.direct.createResource(patient('Ada', 'Lovelace', 'p-1'));
    expect(await feeds.pollOnce()).toMatchObject({ queued: 0, skippedWithoutUnit: 1 });
  });

  it('survives Medplum being down: the failure is reported, the cursor stays, the next pass catches up', async () => {
    const feeds = feedsOver(fx, { pageSize: 2 });
    for (let i = 1; i <= 5; i += 1) await fx.direct.createResource(patient('P', `F${i}`, `p-${i}`));
    fx.server.faults.failNext(100, 503);
    const down = await feeds.pollOnce();
    expect(down.errors).toBeGreaterThan(0);
    expect(down.failures[0]).toMatchObject({ feed: 'medplum:Patient' });
    expect(await fx.store.getCursor(medplumCursorName('Patient'))).toBeUndefined();
    fx.server.faults.clear();
    expect(await feeds.pollOnce()).toMatchObject({ queued: 5, errors: 0 });
  });

  it('restarts after a fault on the second page without applying any change twice', async () => {
    for (let i = 1; i <= 5; i += 1) await fx.direct.createResource(patient('P', `F${i}`, `p-${i}`));
    // A real 503 from the server, armed once the first page has been answered.
    class FailingAfterFirstPage extends MedplumSide {
      override async searchPage<R extends Resource>(type: string, query: URLSearchParams | URL) {
        const page = await super.searchPage<R>(type, query);
        fx.server.faults.failNext(1, 503);
        return page;
      }
    }
    const crashing = feedsOver(fx, { pageSize: 2 }, { medplum: new FailingAfterFirstPage(fx.medplum) });
    expect(await crashing.pollOnce()).toMatchObject({ queued: 2, errors: 1 });
    await fx.writer.drain();
    const restarted = feedsOver(fx, { pageSize: 2 });
    await restarted.pollOnce();
    await fx.writer.drain();
    await restarted.pollOnce();
    await fx.writer.drain();
    expect(fx.legacy.calls.create).toBe(5);
    expect(fx.legacy.calls.update).toBe(0);
    for (let i = 1; i <= 5; i += 1) expect((await fx.legacy.read('Patient', `p-${i}`))?.version).toBe('1');
    expect(await fx.store.outboxCounts()).toMatchObject({ pending: 0, dead: 0 });
  });

  it('resumes from the stored cursor when a pass stops after its first page', async () => {
    for (let i = 1; i <= 5; i += 1) await fx.direct.createResource(patient('P', `F${i}`, `p-${i}`));
    expect(await feedsOver(fx, { pageSize: 2, maxPagesPerPoll: 1 }).pollOnce()).toMatchObject({ queued: 2 });
    await fx.writer.drain();
    const restarted = feedsOver(fx, { pageSize: 2 });
    const report = await restarted.pollOnce();
    expect(report.queued).toBe(3);
    await fx.writer.drain();
    expect(fx.legacy.calls.create).toBe(5);
    expect(fx.legacy.calls.update).toBe(0);
  });
});

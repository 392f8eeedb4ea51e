import type { Patient } from '@medplum/fhirtypes';
import { afterEach, describe, expect, it } from 'vitest';
import { backfill, backfillInOrder } from '../../src/jobs/backfill.ts';
import { createMedplumClient } from '../../src/index.ts';
import type { JobContext } from '../../src/jobs/job-context.ts';
import type { JobProgress } from '../../src/jobs/job-worker.ts';
import { medplumCopies, north, startWriterFixture, type WriterFixture } from '../harness/writer-fixture.ts';
import { PATIENT_SYSTEM, patientMapping, type PatientRow } from '../harness/patient-fixture.ts';
import type { MemoryLegacyAdapter } from '../../src/testing/index.ts';

let fixture: WriterFixture<MemoryLegacyAdapter<PatientRow>> | undefined;
afterEach(async () => {
  await fixture?.writer.stop();
  await fixture?.close();
  fixture = undefined;
});

async function seedLegacy(f: WriterFixture<MemoryLegacyAdapter<PatientRow>>, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i += 1) {
    const id = String(1000 + i);
    await f.legacy.create('Patient', { id, first_name: `F${i}`, last_name: `L${i}` });
    ids.push(id);
  }
  return ids;
}

function contextOf(f: WriterFixture<MemoryLegacyAdapter<PatientRow>>): JobContext<PatientRow> {
  return { store: f.store, legacy: f.legacy, medplum: f.medplum, mappings: [patientMapping] };
}

async function expectOneEqualCopyEach(
  f: WriterFixture<MemoryLegacyAdapter<PatientRow>>,
  ids: readonly string[],
): Promise<void> {
  for (const id of ids) {
    const copies = await medplumCopies(f.direct, id);
    expect(copies, id).toHaveLength(1);
    const record = await f.legacy.read('Patient', id);
    expect(copies[0]?.name?.[0]?.family, id).toBe(record?.row.last_name);
    expect((await f.store.getLink('Patient', id))?.medplumId, id).toBe(copies[0]?.id);
  }
}

describe('backfill legacy → Medplum', () => {
  it('queues every existing record once, and the drain leaves one equal, linked copy of each', async () => {
    fixture = await startWriterFixture({ stage: 'dual-write' });
    const ids = await seedLegacy(fixture, 45);
    const progress: JobProgress[] = [];
    const job = await fixture.writer.backfill({
      resourceType: 'Patient',
      unit: 'north',
      direction: 'to-medplum',
      pageSize: 10,
      total: 45,
      onProgress: (p) => progress.push(p),
    });
    expect(job).toMatchObject({ state: 'done', pages: 5, pagesDone: 5, scanComplete: true });
    expect(job.counts).toEqual({ scanned: 45, created: 45 });
    expect(job.samples.created).toHaveLength(10);
    expect(progress).toHaveLength(5);
    expect(progress.at(-1)?.etaMs).toBe(0);
    expect(progress[0]?.etaMs).toEqual(expect.any(Number));
    await fixture.writer.drain();
    await expectOneEqualCopyEach(fixture, ids);
  });

  it('queues each page in one journal call, never a call per record', async () => {
    fixture = await startWriterFixture({ stage: 'dual-write' });
    const ids = await seedLegacy(fixture, 45);
    const store = fixture.store;
    const calls: string[] = [];
    // Counts the store's queueing calls; everything else goes to the store as is.
    const counting = new Proxy(store, {
      get(target, prop) {
        const value: unknown = Reflect.get(target, prop, target);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]): unknown => {
          if (prop === 'intend') calls.push('intend');
          if (prop === 'intendMany') calls.push(`intendMany ${(args[0] as unknown[]).length}`);
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    const job = await backfill(
      { ...contextOf(fixture), store: counting },
      { resourceType: 'Patient', unit: 'north', direction: 'to-medplum', pageSize: 10 },
    );
    expect(job.counts).toEqual({ scanned: 45, created: 45 });
    expect(calls).toEqual([
      'intendMany 10',
      'intendMany 10',
      'intendMany 10',
      'intendMany 10',
      'intendMany 5',
    ]);
    await fixture.writer.drain();
    await expectOneEqualCopyEach(fixture, ids);
  });

  it('skips linked, equal records: a second backfill queues nothing', async () => {
    fixture = await startWriterFixture({ stage: 'dual-write' });
    await seedLegacy(fixture, 12);
    await fixture.writer.backfill({ resourceType: 'Patient', unit: 'north', direction: 'to-medplum' });
    expect(await fixture.writer.drain()).toMatchObject({ applied: 12, timedOut: false });
    // The second backfill's own requests, on a client of its own: the writer's sampled
    // read-backs, or a batch read its drain gave up waiting for, cannot be counted with them.
    const requests: string[] = [];
    const medplum = createMedplumClient({
      baseUrl: fixture.server.baseUrl,
      fetch: (url: string, init?: RequestInit) => {
        requests.push(`${init?.method ?? 'GET'} ${new URL(url).search}`);
        return fetch(url, init);
      },
    });
    const again = await backfill(
      { ...contextOf(fixture), medplum },
      { resourceType: 'Patient', unit: 'north', direction: 'to-medplum' },
    );
    expect(again.counts).toEqual({ scanned: 12, unchanged: 12 });
    expect((await fixture.writer.outbox()).pending).toBe(0);
    // Cheap facts only: one search for the page's versions, no reads, no writes.
    expect(requests).toEqual([expect.stringMatching(/^GET \?_id=[^&]+&_elements=id%2Cmeta&_count=12$/)]);
  });

  it('links an equal copy found by identifier, hands a different one to the resolver, and dead-letters a duplicated one', async () => {
    fixture = await startWriterFixture({ stage: 'dual-write' });
    const ids = await seedLegacy(fixture, 6);
    const copy = (id: string, family: string): Patient => ({
      resourceType: 'Patient',
      identifier: [{ system: PATIENT_SYSTEM, value: id }],
      name: [{ given: [`F${Number(id) - 1000}`], family }],
    });
    const equal = await fixture.direct.createResource(copy('1000', 'L0'));
    const different = await fixture.direct.createResource(copy('1001', 'Changed'));
    await fixture.direct.createResource(copy('1002', 'L2'));
    await fixture.direct.createResource(copy('1002', 'L2'));
    const job = await fixture.writer.backfill({
      resourceType: 'Patient',
      unit: 'north',
      direction: 'to-medplum',
    });
    expect(job.counts).toEqual({ scanned: 6, linked: 1, conflicts: 1, duplicates: 1, created: 3 });
    expect(job.samples).toMatchObject({ linked: ['1000'], conflicts: ['1001'], duplicates: ['1002'] });
    await fixture.writer.drain();
    // The equal copy is linked as it is: not rewritten.
    expect(
      (await fixture.direct.readResource('Patient', equal.id, { cache: 'no-cache' })).meta?.versionId,
    ).toBe(equal.meta?.versionId);
    // The different one went to the resolver (authority wins: the legacy row's name).
    expect(fixture.events.filter((e) => e.type === 'conflict').map((e) => e.legacyId)).toEqual(['1001']);
    expect(
      (await fixture.direct.readResource('Patient', different.id, { cache: 'no-cache' })).name?.[0]?.family,
    ).toBe('L1');
    // The duplicated one waits for review; nothing was created for it.
    expect((await fixture.writer.deadLetters()).map((letter) => letter.legacyId)).toEqual(['1002']);
    expect(await medplumCopies(fixture.direct, '1002')).toHaveLength(2);
    await expectOneEqualCopyEach(
      fixture,
      ids.filter((id) => id !== '1002'),
    );
  });

  it('only queues: a record changed after its page was read reaches Medplum in its newest state', async () => {
    fixture = await startWriterFixture({ stage: 'dual-write' });
    await seedLegacy(fixture, 3);
    const job = await backfill(contextOf(fixture), {
      resourceType: 'Patient',
      unit: 'north',
      direction: 'to-medplum',
      maxQueued: 100,
    });
    expect(job.counts.created).toBe(3);
    // Changed directly in the legacy system after the scan, before any mirror ran.
    await fixture.legacy.update('Patient', '1001', { id: '1001', first_name: 'F1', last_name: 'Newer' });
    await fixture.writer.drain();
    expect((await medplumCopies(fixture.direct, '1001'))[0]?.name?.[0]?.family).toBe('Newer');
    expect((await fixture.legacy.read('Patient', '1000'))?.version).toBe('1');
  });

  it('keeps to its unit, and counts records of other units as skipped', async () => {
    fixture = await startWriterFixture({ stage: 'dual-write' });
    await seedLegacy(fixture, 4);
    const ctx: JobContext<PatientRow> = {
      ...contextOf(fixture),
      unitOf: (record) => (Number(record.legacyId) % 2 === 0 ? 'north' : 'south'),
    };
    const job = await backfill(ctx, { resourceType: 'Patient', unit: 'north', direction: 'to-medplum' });
    expect(job.counts).toEqual({ scanned: 4, created: 2, skipped: 2 });
    expect(job.samples.created).toEqual(['1000', '1002']);
  });

  it('two workers on one job share its pages: each record counted and queued once', async () => {
    fixture = await startWriterFixture({ stage: 'dual-write' });
    const ids = await seedLegacy(fixture, 60);
    const ctx = contextOf(fixture);
    const job = await fixture.store.createJob({
      kind: 'backfill',
      resourceType: 'Patient',
      unit: 'north',
      direction: 'to-medplum',
    });
    const run = (workerId: string) =>
      backfill(ctx, {
        resourceType: 'Patient',
        direction: 'to-medplum',
        jobId: job.id,
        workerId,
        pageSize: 5,
        pollIntervalMs: 5,
      });
    const [a, b] = await Promise.all([run('a'), run('b')]);
    expect(a.state).toBe('done');
    expect(b.state).toBe('done');
    const done = await fixture.store.getJob(job.id);
    expect(done?.counts).toEqual({ scanned: 60, created: 60 });
    expect(done?.pages).toBe(12);
    await fixture.writer.drain();
    await expectOneEqualCopyEach(fixture, ids);
  });

  it('pauses, resumes from its cursor, and cancels', async () => {
    fixture = await startWriterFixture({ stage: 'dual-write' });
    await seedLegacy(fixture, 20);
    const ctx = contextOf(fixture);
    const store = fixture.store;
    let jobId = '';
    const paused = await backfill(ctx, {
      resourceType: 'Patient',
      unit: 'north',
      direction: 'to-medplum',
      pageSize: 5,
      onProgress: ({ job }) => {
        jobId = job.id;
        if (job.pagesDone === 2) void store.setJobState(job.id, 'paused', { from: ['running'] });
      },
    });
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect((await store.getJob(jobId))?.state).toBe('paused');
    expect(paused.counts.scanned).toBeLessThan(20);
    await store.setJobState(jobId, 'running', { from: ['paused'] });
    const resumed = await backfill(ctx, {
      resourceType: 'Patient',
      direction: 'to-medplum',
      jobId,
      unit: 'north',
    });
    expect(resumed).toMatchObject({ state: 'done', counts: { scanned: 20, created: 20 } });
    const other = await store.createJob({
      kind: 'backfill',
      resourceType: 'Patient',
      unit: 'north',
      direction: 'to-medplum',
    });
    await store.setJobState(other.id, 'cancelled', { reason: 'not needed' });
    const cancelled = await backfill(ctx, {
      resourceType: 'Patient',
      direction: 'to-medplum',
      jobId: other.id,
      unit: 'north',
    });
    expect(cancelled).toMatchObject({ state: 'cancelled', pages: 0 });
  });

  it('stops this worker when its signal aborts, leaving the job running for another', async () => {
    fixture = await startWriterFixture({ stage: 'dual-write' });
    await seedLegacy(fixture, 20);
    const controller = new AbortController();
    const stopped = await backfill(contextOf(fixture), {
      resourceType: 'Patient',
      unit: 'north',
      direction: 'to-medplum',
      pageSize: 5,
      signal: controller.signal,
      onProgress: () => controller.abort(),
    });
    expect(stopped).toMatchObject({ state: 'running', pagesDone: 1 });
    const finished = await backfill(contextOf(fixture), {
      resourceType: 'Patient',
      direction: 'to-medplum',
      jobId: stopped.id,
      unit: 'north',
    });
    expect(finished.counts).toEqual({ scanned: 20, created: 20 });
  });

  it("retries its Medplum requests as the writer's retry option says", async () => {
    // Eight retries: seven 503s in a row are outlasted, where the library's five would fail the job.
    fixture = await startWriterFixture({
      stage: 'dual-write',
      writer: { retry: { retries: 8, minTimeoutMs: 1, maxTimeoutMs: 2 } },
    });
    await seedLegacy(fixture, 3);
    fixture.server.faults.failNext(7, 503, { methods: ['GET'] });
    const job = await fixture.writer.backfill({
      resourceType: 'Patient',
      unit: 'north',
      direction: 'to-medplum',
    });
    expect(fixture.server.faults.stats.injected.status).toBe(7);
    expect(job).toMatchObject({ state: 'done', counts: { scanned: 3, created: 3 } });

    // No retries: the first 503 fails the job.
    const strict = await startWriterFixture({ stage: 'dual-write', writer: { retry: { retries: 0 } } });
    try {
      await seedLegacy(strict, 3);
      strict.server.faults.failNext(1, 503, { methods: ['GET'] });
      await expect(
        strict.writer.backfill({ resourceType: 'Patient', unit: 'north', direction: 'to-medplum' }),
      ).rejects.toMatchObject({ name: 'UnavailableError', status: 503 });
      expect((await strict.store.listJobs({ kind: 'backfill' }))[0]).toMatchObject({ state: 'failed' });
    } finally {
      await strict.close();
    }
  });

  it('refuses options it does not know or lacks, naming them', async () => {
    fixture = await startWriterFixture({ stage: 'dual-write' });
    const ctx = contextOf(fixture);
    await expect(backfill(ctx, { resourceType: 'Patient', direction: 'to-medplum' })).rejects.toMatchObject({
      name: 'InvalidInputError',
      field: 'unit',
    });
    await expect(
      backfill(ctx, { resourceType: 'Patient', unit: 'north', direction: 'sideways' as 'to-medplum' }),
    ).rejects.toMatchObject({ name: 'InvalidInputError', field: 'direction' });
    await expect(
      backfill(ctx, {
        resourceType: 'Patient',
        unit: 'north',
        direction: 'to-medplum',
        pagesize: 3,
      } as never),
    ).rejects.toMatchObject({ name: 'InvalidInputError', field: 'pagesize' });
    await expect(
      backfill(ctx, { resourceType: 'Observation', unit: 'north', direction: 'to-medplum' }),
    ).rejects.toMatchObject({ field: 'resourceType' });
    await expect(
      backfill(ctx, { resourceType: 'Patient', unit: 'north', direction: 'to-medplum', jobId: '404' }),
    ).rejects.toMatchObject({ field: 'jobId' });
  });
});

describe('backfillInOrder', () => {
  it('runs each type in the order given, the queue drained between them', async () => {
    fixture = await startWriterFixture({ stage: 'dual-write' });
    const f = fixture;
    await seedLegacy(f, 5);
    const drained: number[] = [];
    const jobs = await backfillInOrder(contextOf(f), {
      resourceTypes: ['Patient'],
      unit: 'north',
      direction: 'to-medplum',
      drain: async () => {
        drained.push((await f.writer.drain()).remaining.pending);
      },
    });
    expect(jobs.map((job) => [job.resourceType, job.state, job.counts.created])).toEqual([
      ['Patient', 'done', 5],
    ]);
    expect(drained.at(-1)).toBe(0);
    expect((await f.writer.outbox()).pending).toBe(0);
    await expect(
      backfillInOrder(contextOf(f), { resourceTypes: [], unit: 'north', direction: 'to-medplum' }),
    ).rejects.toMatchObject({ field: 'resourceTypes' });
    await expect(
      backfillInOrder(contextOf(f), {
        resourceTypes: ['Patient', 'Encounter'],
        unit: 'north',
        direction: 'to-medplum',
      }),
    ).rejects.toMatchObject({ field: 'resourceType' });
  });
});

describe('backfill Medplum → legacy', () => {
  it('after a stint in medplum-only, stepping back to rampdown loses nothing', async () => {
    fixture = await startWriterFixture({ stage: 'live' });
    const before = await fixture.writer.createResource(
      {
        resourceType: 'Patient',
        identifier: [{ system: PATIENT_SYSTEM, value: '500' }],
        name: [{ given: ['A'], family: 'Live' }],
      },
      north,
    );
    await fixture.plan.set('north', 'rampdown', { force: true });
    await fixture.plan.set('north', 'medplum-only', { force: true });
    const created = [];
    for (let i = 0; i < 7; i += 1) {
      created.push(
        await fixture.writer.createResource(
          {
            resourceType: 'Patient',
            identifier: [{ system: PATIENT_SYSTEM, value: String(600 + i) }],
            name: [{ given: ['M'], family: `Only${i}` }],
          },
          north,
        ),
      );
    }
    await fixture.writer.updateResource(
      { ...(before.resource as Patient), name: [{ given: ['A'], family: 'Edited' }] },
      north,
    );
    expect(await fixture.legacy.read('Patient', '600')).toBeUndefined();
    await fixture.plan.set('north', 'rampdown', { reason: 'step back' });
    const job = await fixture.writer.backfill({
      resourceType: 'Patient',
      unit: 'north',
      direction: 'to-legacy',
    });
    expect(job.counts).toEqual({ scanned: 8, created: 7, updated: 1 });
    await fixture.writer.drain();
    for (let i = 0; i < 7; i += 1)
      expect((await fixture.legacy.read('Patient', String(600 + i)))?.row.last_name).toBe(`Only${i}`);
    expect((await fixture.legacy.read('Patient', '500'))?.row.last_name).toBe('Edited');
    const again = await fixture.writer.backfill({
      resourceType: 'Patient',
      unit: 'north',
      direction: 'to-legacy',
    });
    expect(again.counts).toEqual({ scanned: 8, unchanged: 8 });
  });
});

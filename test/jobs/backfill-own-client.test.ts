/**
 * Issue 12, the quota: a backfill given a Medplum client of its own (another client application,
 * so another user and quota) has its searches and its writes sent through that client, while live
 * mirrors stay on the writer's; a lane it no longer holds is applied by the writer's drainers, so
 * nothing is stranded.
 */
import type { FetchLike } from '@medplum/core';
import { afterEach, describe, expect, it } from 'vitest';
import { backfill } from '../../src/jobs/backfill.ts';
import { createMedplumClient, InvalidInputError, QuotaPacer } from '../../src/index.ts';
import type { MemoryLegacyAdapter } from '../../src/testing/index.ts';
import { medplumCopies, north, startWriterFixture, type WriterFixture } from '../harness/writer-fixture.ts';
import { patientMapping, type PatientRow } from '../harness/patient-fixture.ts';

let fixture: WriterFixture<MemoryLegacyAdapter<PatientRow>> | undefined;
afterEach(async () => {
  await fixture?.writer.stop();
  await fixture?.close();
  fixture = undefined;
});

/** The requests one client sent: writes (POST, PUT, DELETE, batches included) and searches. */
interface Sent {
  writes: number;
  searches: number;
}

function counting(sent: Sent): (fetch: FetchLike) => FetchLike {
  return (fetch) => (url: string, init?: RequestInit) => {
    const method = init?.method ?? 'GET';
    if (method === 'GET') sent.searches += new URL(url).search === '' ? 0 : 1;
    else sent.writes += 1;
    return fetch(url, init);
  };
}

async function seedLegacy(f: WriterFixture<MemoryLegacyAdapter<PatientRow>>, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i += 1) {
    const id = String(1000 + i);
    await f.legacy.create('Patient', { id, first_name: `F${i}`, last_name: `L${i}` });
    ids.push(id);
  }
  return ids;
}

async function expectOneLinkedCopyEach(
  f: WriterFixture<MemoryLegacyAdapter<PatientRow>>,
  ids: readonly string[],
): Promise<void> {
  for (const id of ids) {
    const copies = await medplumCopies(f.direct, id);
    expect(copies, id).toHaveLength(1);
    expect((await f.store.getLink('Patient', id))?.medplumId, id).toBe(copies[0]?.id);
  }
}

const scope = { resourceType: 'Patient', unit: 'north', direction: 'to-medplum' } as const;

describe('a backfill on a Medplum client of its own', () => {
  it("sends its searches and its writes through its own client; a live write meanwhile goes through the writer's, applied inline", async () => {
    const writerSent: Sent = { writes: 0, searches: 0 };
    fixture = await startWriterFixture({ stage: 'dual-write', fetch: counting(writerSent) });
    const f = fixture;
    const ids = await seedLegacy(f, 40);
    const ownSent: Sent = { writes: 0, searches: 0 };
    const own = createMedplumClient({
      baseUrl: f.server.baseUrl,
      fetch: counting(ownSent)(globalThis.fetch),
    });
    const pacer = new QuotaPacer({ reserve: 0 });
    let live: Awaited<ReturnType<typeof f.writer.create>> | undefined;
    const job = await f.writer.backfill({
      ...scope,
      ownClient: { medplum: own, pacer },
      pageSize: 10,
      maxQueued: 15,
      onProgress: ({ job: at }) => {
        if (at.pagesDone === 1 && live === undefined)
          void f.writer
            .create('Patient', { id: 'live-1', first_name: 'Ada', last_name: 'Lovelace' }, north)
            .then((result) => (live = result));
      },
    });
    expect(job).toMatchObject({ state: 'done', scanComplete: true });
    expect(job.counts.scanned).toBeGreaterThanOrEqual(40);
    // The backfill returned once its lane was applied: nothing left, nothing held.
    expect(await f.store.outboxCounts()).toMatchObject({ pending: 0, leased: 0, dead: 0 });
    expect(await f.store.laneCount(`backfill:${job.id}`)).toBe(0);
    await expectOneLinkedCopyEach(f, [...ids, 'live-1']);
    expect(live).toMatchObject({ mirror: 'applied' });
    // The writer's client sent the live write only (a conditional create: one request).
    expect(writerSent).toEqual({ writes: 1, searches: 0 });
    expect(ownSent.writes).toBeGreaterThan(0);
    expect(ownSent.searches).toBeGreaterThan(0);
  });

  it('a job stopped mid-way and resumed with its jobId on a client of its own leaves the writer’s client unused', async () => {
    const writerSent: Sent = { writes: 0, searches: 0 };
    fixture = await startWriterFixture({ stage: 'dual-write', fetch: counting(writerSent) });
    const f = fixture;
    const ids = await seedLegacy(f, 30);
    const own = createMedplumClient({ baseUrl: f.server.baseUrl });
    const stop = new AbortController();
    const first = await f.writer.backfill({
      ...scope,
      ownClient: { medplum: own },
      pageSize: 10,
      signal: stop.signal,
      onProgress: () => stop.abort(),
    });
    expect(first).toMatchObject({ state: 'running', pagesDone: 1 });
    const resumed = await f.writer.backfill({
      ...scope,
      jobId: first.id,
      ownClient: { medplum: own },
      pageSize: 10,
    });
    expect(resumed).toMatchObject({ id: first.id, state: 'done' });
    expect(await f.store.outboxCounts()).toMatchObject({ pending: 0, leased: 0, dead: 0 });
    await expectOneLinkedCopyEach(f, ids);
    expect(writerSent).toEqual({ writes: 0, searches: 0 });
  });

  it("a lane whose holder died is applied by the writer's drainer once the hold lapses: nothing stranded", async () => {
    const writerSent: Sent = { writes: 0, searches: 0 };
    fixture = await startWriterFixture({ stage: 'dual-write', fetch: counting(writerSent) });
    const f = fixture;
    const ids = await seedLegacy(f, 3);
    const lane = 'backfill:dead-job';
    for (const id of ids)
      await f.store.intend(
        { resourceType: 'Patient', legacyId: id, target: 'medplum', unit: 'north', kind: 'upsert', lane },
        0,
      );
    // The backfill's process held the lane and was killed: its hold lapses after 300 ms.
    await f.store.holdLane(lane, 'killed-worker', 300);
    const report = await f.writer.drain({ timeoutMs: 10_000 });
    expect(report).toMatchObject({ applied: 3, deadLettered: 0, timedOut: false });
    await expectOneLinkedCopyEach(f, ids);
    expect(writerSent.writes).toBeGreaterThan(0);
  });

  it('is refused without a writer or an operator to apply its writes, and with a client that is not one, naming the option', async () => {
    fixture = await startWriterFixture({ stage: 'dual-write' });
    const f = fixture;
    const ctx = { store: f.store, legacy: f.legacy, medplum: f.medplum, mappings: [patientMapping] };
    const bare = backfill(ctx, { ...scope, ownClient: { medplum: f.medplum } });
    await expect(bare).rejects.toBeInstanceOf(InvalidInputError);
    await expect(bare).rejects.toMatchObject({ field: 'ownClient' });
    const notAClient = f.writer.backfill({ ...scope, ownClient: { medplum: {} as never } });
    await expect(notAClient).rejects.toMatchObject({ name: 'InvalidInputError', field: 'ownClient.medplum' });
    expect(await f.store.listJobs({ kind: 'backfill' })).toEqual([]);
  });
});

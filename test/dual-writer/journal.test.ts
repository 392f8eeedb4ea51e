import { afterEach, describe, expect, it } from 'vitest';
import { MirrorError } from '../../src/index.ts';
import type { MemoryLegacyAdapter } from '../../src/testing/index.ts';
import type { PatientRow } from '../harness/patient-fixture.ts';
import { medplumCopies, north, startWriterFixture, type WriterFixture } from '../harness/writer-fixture.ts';

const ada: PatientRow = { id: 'p-1', first_name: 'Ada', last_name: 'Lovelace' };
const fastDrainer = { pollIntervalMs: 10, backoff: { minMs: 5, maxMs: 20 } };

let fixture: WriterFixture<MemoryLegacyAdapter<PatientRow>> | undefined;
afterEach(async () => {
  await fixture?.writer.stop();
  await fixture?.close();
  fixture = undefined;
});

describe('asynchronous mirroring', () => {
  it('returns after the authority write with the mirror pending in the outbox; a drain applies it', async () => {
    fixture = await startWriterFixture({ writer: { mirror: 'async', drainer: fastDrainer } });
    const { writer, direct, legacy } = fixture;
    const result = await writer.create('Patient', ada, north);
    expect(result).toMatchObject({
      mirror: 'pending',
      legacy: { action: 'created' },
      medplum: { action: 'pending' },
    });
    expect(await legacy.read('Patient', 'p-1')).toBeDefined();
    expect(await medplumCopies(direct, 'p-1')).toHaveLength(0);
    expect(await writer.outbox()).toEqual({ pending: 1, leased: 0, dead: 0 });

    expect(await writer.drain({ timeoutMs: 5000 })).toMatchObject({
      applied: 1,
      deadLettered: 0,
      timedOut: false,
    });
    expect(await medplumCopies(direct, 'p-1')).toHaveLength(1);
    expect(await writer.linkOf('Patient', 'p-1')).toBeDefined();
    expect(await writer.outbox()).toEqual({ pending: 0, leased: 0, dead: 0 });
  });

  it('coalesces pending writes of one record into one entry, and mirrors only the newest state', async () => {
    fixture = await startWriterFixture({ writer: { mirror: 'async', drainer: fastDrainer } });
    const { writer, direct, server } = fixture;
    await writer.create('Patient', ada, north);
    for (let i = 1; i <= 5; i++)
      await writer.update('Patient', 'p-1', { ...ada, last_name: `Name${i}` }, north);
    expect(await writer.outbox()).toMatchObject({ pending: 1 });
    const writesBefore = (server.faults.stats.byMethod.POST ?? 0) + (server.faults.stats.byMethod.PUT ?? 0);
    await writer.drain({ timeoutMs: 5000 });
    const writesAfter = (server.faults.stats.byMethod.POST ?? 0) + (server.faults.stats.byMethod.PUT ?? 0);
    expect(writesAfter - writesBefore).toBe(1);
    const [copy] = await medplumCopies(direct, 'p-1');
    expect(copy?.name?.[0]?.family).toBe('Name5');
  });

  it('mirrors a delete through the outbox', async () => {
    fixture = await startWriterFixture({ writer: { mirror: 'async', drainer: fastDrainer } });
    const { writer, direct } = fixture;
    await writer.create('Patient', ada, north);
    await writer.drain({ timeoutMs: 5000 });
    await writer.delete('Patient', 'p-1', north);
    await writer.drain({ timeoutMs: 5000 });
    expect(await medplumCopies(direct, 'p-1')).toHaveLength(0);
    expect(await writer.linkOf('Patient', 'p-1')).toBeUndefined();
  });

  it('the background drainer applies entries as they are committed, and stops cleanly', async () => {
    fixture = await startWriterFixture({ writer: { mirror: 'async', drainer: fastDrainer } });
    const { writer, direct } = fixture;
    writer.start();
    for (let i = 0; i < 10; i++)
      await writer.create('Patient', { id: `b-${i}`, first_name: 'B', last_name: `N${i}` }, north);
    await writer.drain({ timeoutMs: 5000 });
    await writer.stop();
    for (let i = 0; i < 10; i++) expect(await medplumCopies(direct, `b-${i}`)).toHaveLength(1);
  });

  it('a stop in the middle of a stream leaves no entry leased: what was claimed ahead is applied first', async () => {
    fixture = await startWriterFixture({
      writer: { mirror: 'async', drainer: { ...fastDrainer, concurrency: 2, batchSize: 8 } },
    });
    const { writer, server } = fixture;
    // Slow mirrors, so that the drainer has claimed ahead when it is told to stop.
    server.faults.latency(20, { methods: ['POST'] });
    for (let i = 0; i < 12; i++)
      await writer.create('Patient', { id: `m-${i}`, first_name: 'M', last_name: `N${i}` }, north);
    writer.start();
    await new Promise((resolve) => setTimeout(resolve, 30));
    await writer.stop();
    const outbox = await writer.outbox();
    expect(outbox.leased).toBe(0);
    expect(outbox.pending).toBeGreaterThan(0);
    expect(await writer.drain({ timeoutMs: 5000 })).toMatchObject({ timedOut: false });
  });

  it('drains after the background drainer was stopped, and can start again', async () => {
    fixture = await startWriterFixture({ writer: { mirror: 'async', drainer: fastDrainer } });
    const { writer, direct } = fixture;
    writer.start();
    await writer.stop();
    await writer.create('Patient', { id: 's-1', first_name: 'S', last_name: 'One' }, north);
    expect(await writer.drain({ timeoutMs: 5000 })).toMatchObject({ applied: 1, timedOut: false });
    writer.start();
    await writer.create('Patient', { id: 's-2', first_name: 'S', last_name: 'Two' }, north);
    await writer.drain({ timeoutMs: 5000 });
    await writer.stop();
    expect(await medplumCopies(direct, 's-1')).toHaveLength(1);
    expect(await medplumCopies(direct, 's-2')).toHaveLength(1);
  });

  it('rejects a drain time limit that is not a number of milliseconds, naming it', async () => {
    fixture = await startWriterFixture({ writer: { mirror: 'async', drainer: fastDrainer } });
    await expect(fixture.writer.drain({ timeoutMs: -1 })).rejects.toMatchObject({
      name: 'InvalidInputError',
      field: 'timeoutMs',
    });
    await expect(fixture.writer.drain({ timeoutMs: Number.NaN })).rejects.toMatchObject({
      field: 'timeoutMs',
    });
  });

  it('a paused drainer claims nothing until resumed', async () => {
    fixture = await startWriterFixture({ writer: { mirror: 'async', drainer: fastDrainer } });
    const { writer, direct } = fixture;
    writer.start();
    writer.pause();
    await writer.create('Patient', ada, north);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await medplumCopies(direct, 'p-1')).toHaveLength(0);
    writer.resume();
    await writer.drain({ timeoutMs: 5000 });
    expect(await medplumCopies(direct, 'p-1')).toHaveLength(1);
  });
});

describe('write-ahead intent', () => {
  it('an intent whose authority write never happened (a crash) completes with nothing written', async () => {
    fixture = await startWriterFixture({ writer: { drainer: fastDrainer } });
    const { writer, store, direct, server } = fixture;
    await store.intend(
      { resourceType: 'Patient', legacyId: 'ghost', target: 'medplum', unit: 'north', kind: 'upsert' },
      1,
    );
    await new Promise((resolve) => setTimeout(resolve, 5));
    const requests = server.requests;
    expect(await writer.drain({ timeoutMs: 5000 })).toMatchObject({ applied: 1, deadLettered: 0 });
    expect(server.requests).toBe(requests);
    expect(await medplumCopies(direct, 'ghost')).toHaveLength(0);
  });

  it('an authority write whose process died before mirroring is mirrored once the intent hold expires', async () => {
    fixture = await startWriterFixture({ writer: { drainer: fastDrainer } });
    const { writer, store, legacy, direct } = fixture;
    // What a killed process leaves behind: the intent, then the legacy write, then nothing.
    await store.intend(
      { resourceType: 'Patient', legacyId: 'p-1', target: 'medplum', unit: 'north', kind: 'upsert' },
      50,
    );
    await legacy.create('Patient', ada);
    expect(await writer.drain({ timeoutMs: 5000 })).toMatchObject({ applied: 1 });
    expect((await medplumCopies(direct, 'p-1'))[0]?.name?.[0]?.family).toBe('Lovelace');
  });

  it('a held intent is not mirrored while its authority write is still running', async () => {
    fixture = await startWriterFixture({ writer: { drainer: fastDrainer } });
    const { writer, store } = fixture;
    await store.intend(
      { resourceType: 'Patient', legacyId: 'p-1', target: 'medplum', unit: 'north', kind: 'upsert' },
      60_000,
    );
    const report = await writer.drain({ timeoutMs: 100 });
    expect(report).toMatchObject({ applied: 0, timedOut: true, remaining: { pending: 1 } });
  });

  it('a failed authority write leaves nothing owed', async () => {
    fixture = await startWriterFixture({ writer: { drainer: fastDrainer } });
    const { writer, direct } = fixture;
    await expect(
      writer.update('Patient', 'ghost', { first_name: 'A', last_name: 'B' }, north),
    ).rejects.toMatchObject({ status: 404 });
    await writer.drain({ timeoutMs: 5000 });
    expect(await writer.outbox()).toEqual({ pending: 0, leased: 0, dead: 0 });
    expect(await medplumCopies(direct, 'ghost')).toHaveLength(0);
  });
});

describe('dead letters', () => {
  it('a permanent mirror failure in sync mode throws a MirrorError and leaves a dead letter with the reason', async () => {
    fixture = await startWriterFixture({ writer: { drainer: fastDrainer } });
    const { writer } = fixture;
    const error = await writer
      .create('Patient', { ...ada, birth_date: 'not-a-date' }, north)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MirrorError);
    expect((error as MirrorError).result).toMatchObject({
      mirror: 'dead-letter',
      legacy: { action: 'created' },
      medplum: { action: 'failed' },
    });
    const [letter] = await writer.deadLetters();
    expect(letter).toMatchObject({
      legacyId: 'p-1',
      target: 'medplum',
      status: 'open',
      attempts: 1,
      reason: { name: 'RejectedError', status: 400 },
    });
    expect(await writer.outbox()).toEqual({ pending: 0, leased: 0, dead: 1 });
  });

  it('a dead letter can be retried once the cause is fixed, and is kept as retried', async () => {
    fixture = await startWriterFixture({ writer: { mirror: 'async', drainer: fastDrainer } });
    const { writer, legacy, direct } = fixture;
    await writer.create('Patient', { ...ada, birth_date: 'not-a-date' }, north);
    expect(await writer.drain({ timeoutMs: 5000 })).toMatchObject({ deadLettered: 1 });
    const [letter] = await writer.deadLetters();
    if (letter === undefined) throw new Error('no dead letter');

    // The operator fixes the record in the legacy system, then retries.
    const stored = await legacy.read('Patient', 'p-1');
    await legacy.update(
      'Patient',
      'p-1',
      { ...ada, birth_date: '1815-12-10' },
      { expectedVersion: stored?.version },
    );
    expect(await writer.retryDeadLetter(letter.id)).toBe(true);
    expect(await writer.retryDeadLetter(letter.id)).toBe(false);
    expect(await writer.drain({ timeoutMs: 5000 })).toMatchObject({ applied: 1 });
    expect((await medplumCopies(direct, 'p-1'))[0]?.birthDate).toBe('1815-12-10');
    expect(await writer.deadLetters()).toEqual([]);
    expect(await writer.deadLetters({ status: 'all' })).toMatchObject([{ id: letter.id, status: 'retried' }]);
  });

  it("lists dead letters and counts the outbox as the operator does: by filter, per unit, without the record's copy", async () => {
    fixture = await startWriterFixture({ writer: { mirror: 'async', drainer: fastDrainer } });
    const { writer } = fixture;
    await writer.create('Patient', { ...ada, birth_date: 'not-a-date' }, north);
    await writer.drain({ timeoutMs: 5000 });
    const letters = await writer.deadLetters({ reason: 'RejectedError', unit: 'north' });
    expect(letters).toMatchObject([{ legacyId: 'p-1', unit: 'north', reason: { name: 'RejectedError' } }]);
    expect(letters[0]).not.toHaveProperty('base');
    expect(JSON.stringify(letters)).not.toContain('Lovelace');
    expect(await writer.deadLetters({ reason: 'UnavailableError' })).toEqual([]);
    await expect(writer.deadLetters({ unit: 'nowhere' })).rejects.toMatchObject({ field: 'unit' });
    expect(await writer.outbox({ unit: 'north' })).toEqual({ pending: 0, leased: 0, dead: 1 });
    expect(await writer.outbox({ unit: 'south' })).toEqual({ pending: 0, leased: 0, dead: 0 });
    await expect(writer.outbox({ unit: '' })).rejects.toMatchObject({ field: 'unit' });
  });

  it('rejects a dead-letter listing with an unknown status or a bad limit, naming it', async () => {
    fixture = await startWriterFixture({ writer: { mirror: 'async', drainer: fastDrainer } });
    await expect(fixture.writer.deadLetters({ status: 'opne' as never })).rejects.toMatchObject({
      field: 'status',
    });
    await expect(fixture.writer.deadLetters({ limit: 0 })).rejects.toMatchObject({ field: 'limit' });
  });

  it('a dead letter can be discarded with a note; it is kept, never deleted', async () => {
    fixture = await startWriterFixture({ writer: { mirror: 'async', drainer: fastDrainer } });
    const { writer } = fixture;
    await writer.create('Patient', { ...ada, birth_date: 'not-a-date' }, north);
    await writer.drain({ timeoutMs: 5000 });
    const [letter] = await writer.deadLetters();
    expect(await writer.discardDeadLetter(letter?.id ?? '', 'test record, removed from both systems')).toBe(
      true,
    );
    expect(await writer.deadLetters()).toEqual([]);
    expect(await writer.deadLetters({ status: 'discarded' })).toMatchObject([
      { note: 'test record, removed from both systems' },
    ]);
    await expect(writer.discardDeadLetter(letter?.id ?? '', ' ')).rejects.toThrow(/note/);
  });

  it('transient failures back off with the attempts and last error persisted, then succeed', async () => {
    fixture = await startWriterFixture({ writer: { mirror: 'async', drainer: fastDrainer } });
    const { writer, server, store, direct } = fixture;
    await writer.create('Patient', ada, north);
    server.faults.failNext(2, 503);
    const first = await writer.drain({ timeoutMs: 5000 });
    expect(first).toMatchObject({ applied: 1, retried: 2, deadLettered: 0 });
    expect(await medplumCopies(direct, 'p-1')).toHaveLength(1);
    expect(await store.listOutbox()).toEqual([]);
  });

  it('an entry that keeps failing transiently is dead-lettered after maxAttempts, with the last status', async () => {
    fixture = await startWriterFixture({
      writer: { mirror: 'async', drainer: { ...fastDrainer, maxAttempts: 3 } },
    });
    const { writer, server } = fixture;
    await writer.create('Patient', ada, north);
    server.faults.outage(60_000);
    expect(await writer.drain({ timeoutMs: 5000 })).toMatchObject({ retried: 2, deadLettered: 1 });
    expect(await writer.deadLetters()).toMatchObject([
      { attempts: 3, reason: { name: 'UnavailableError', status: 503 } },
    ]);
  });
});

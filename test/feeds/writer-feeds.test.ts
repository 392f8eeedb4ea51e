import type { Patient } from '@medplum/fhirtypes';
import { afterEach, describe, expect, it } from 'vitest';
import type { MemoryLegacyAdapter } from '../../src/testing/index.ts';
import type { PatientRow } from '../harness/patient-fixture.ts';
import { medplumCopies, north, startWriterFixture, type WriterFixture } from '../harness/writer-fixture.ts';

let fixture: WriterFixture<MemoryLegacyAdapter<PatientRow>> | undefined;
afterEach(async () => {
  await fixture?.writer.stop();
  await fixture?.close();
  fixture = undefined;
});

describe('DualWriter with feeds', () => {
  it('picks up direct edits on both sides through writer.pollFeeds, and conflicts go to its resolver', async () => {
    fixture = await startWriterFixture({
      stage: 'dual-write',
      writer: { feeds: { unitOf: () => 'north' } },
    });
    const { writer, direct, legacy, events } = fixture;
    await writer.create('Patient', { id: 'p-1', first_name: 'Ada', last_name: 'Lovelace' }, north);
    await writer.create('Patient', { id: 'p-2', first_name: 'Grace', last_name: 'Hopper' }, north);
    await writer.pollFeeds(); // first pass: the writer's own mirrors, all echoes
    await writer.drain({ timeoutMs: 5_000 });

    const [copy] = await medplumCopies(direct, 'p-1');
    await direct.updateResource<Patient>({ ...copy!, name: [{ given: ['Ada'], family: 'King' }] });
    const row = await legacy.read('Patient', 'p-2');
    await legacy.update(
      'Patient',
      'p-2',
      { ...row!.row, first_name: 'Amazing Grace' },
      { expectedVersion: row!.version },
    );

    const report = await writer.pollFeeds();
    expect(report).toMatchObject({ queued: 2, errors: 0 });
    await writer.drain({ timeoutMs: 5_000 });
    expect((await legacy.read('Patient', 'p-1'))?.row.last_name).toBe('King');
    expect((await medplumCopies(direct, 'p-2'))[0]?.name?.[0]?.given).toEqual(['Amazing Grace']);
    expect(events.filter((event) => event.type === 'conflict')).toEqual([]);

    // Both edited since the last sync: the feed's mirror finds a conflict; authorityWins keeps
    // the legacy copy (the authority in dual-write).
    const [again] = await medplumCopies(direct, 'p-1');
    await direct.updateResource<Patient>({ ...again!, name: [{ given: ['Ada'], family: 'FromMedplum' }] });
    const current = await legacy.read('Patient', 'p-1');
    await legacy.update(
      'Patient',
      'p-1',
      { ...current!.row, last_name: 'FromLegacy' },
      { expectedVersion: current!.version },
    );
    await writer.pollFeeds();
    await writer.drain({ timeoutMs: 5_000 });
    expect((await legacy.read('Patient', 'p-1'))?.row.last_name).toBe('FromLegacy');
    expect((await medplumCopies(direct, 'p-1'))[0]?.name?.[0]?.family).toBe('FromLegacy');
    expect(events.filter((event) => event.type === 'conflict')).toMatchObject([
      { legacyId: 'p-1', resolvedBy: 'authority-wins', resolution: 'legacy', authority: 'legacy' },
    ]);
    const quiet = await writer.pollFeeds();
    expect(quiet.queued).toBe(0);
    expect(writer.feedCounts().echoes).toBeGreaterThan(0);
  });

  for (const { stage, feedSide, authority } of [
    { stage: 'dual-write', feedSide: 'medplum', authority: 'legacy' },
    { stage: 'live', feedSide: 'legacy', authority: 'medplum' },
  ] as const) {
    it(`in ${stage}, a conflict the ${feedSide} feed finds goes to the ${authority}, the stage's authority`, async () => {
      fixture = await startWriterFixture({
        stage,
        writer: { feeds: { unitOf: () => 'north', sides: [feedSide] } },
      });
      const { writer, direct, legacy, events } = fixture;
      await writer.create('Patient', { id: 'p-1', first_name: 'Ada', last_name: 'Lovelace' }, north);
      await writer.pollFeeds();
      await writer.drain({ timeoutMs: 5_000 });
      // Both sides edited between syncs; only the non-authority's feed reports it.
      const [copy] = await medplumCopies(direct, 'p-1');
      await direct.updateResource<Patient>({ ...copy!, name: [{ given: ['Ada'], family: 'FromMedplum' }] });
      const current = await legacy.read('Patient', 'p-1');
      await legacy.update(
        'Patient',
        'p-1',
        { ...current!.row, last_name: 'FromLegacy' },
        { expectedVersion: current!.version },
      );
      await writer.pollFeeds();
      await writer.drain({ timeoutMs: 5_000 });
      const winner = authority === 'legacy' ? 'FromLegacy' : 'FromMedplum';
      expect((await legacy.read('Patient', 'p-1'))?.row.last_name).toBe(winner);
      expect((await medplumCopies(direct, 'p-1'))[0]?.name?.[0]?.family).toBe(winner);
      expect(events.filter((event) => event.type === 'conflict')).toMatchObject([
        { legacyId: 'p-1', resolvedBy: 'authority-wins', resolution: authority, authority },
      ]);
    });
  }

  it('a direct legacy edit the mapping rejects is not taken for an echo: it is a dead letter naming the field', async () => {
    fixture = await startWriterFixture({
      stage: 'dual-write',
      writer: { feeds: { unitOf: () => 'north', sides: ['legacy'] } },
    });
    const { writer, direct, legacy } = fixture;
    await writer.create('Patient', { id: 'p-1', first_name: 'Ada', last_name: 'Lovelace' }, north);
    await writer.pollFeeds();
    await writer.drain({ timeoutMs: 5_000 });
    const current = await legacy.read('Patient', 'p-1');
    await legacy.update(
      'Patient',
      'p-1',
      { ...current!.row, last_name: '' },
      { expectedVersion: current!.version },
    );
    expect(await writer.pollFeeds()).toMatchObject({ queued: 1 });
    await writer.drain({ timeoutMs: 5_000 });
    const letters = await writer.deadLetters();
    expect(letters).toMatchObject([{ legacyId: 'p-1', reason: { name: 'MappingError' } }]);
    expect(letters[0]?.reason.message).toContain('last_name');
    expect((await medplumCopies(direct, 'p-1'))[0]?.name?.[0]?.family).toBe('Lovelace');
  });

  it('without the feeds option, feed calls fail with a typed error naming it', async () => {
    fixture = await startWriterFixture();
    await expect(fixture.writer.pollFeeds()).rejects.toMatchObject({
      name: 'ConfigurationError',
      field: 'feeds',
    });
    expect(fixture.writer.feedCounts()).toMatchObject({ seen: 0, queued: 0 });
  });
});

import { afterEach, describe, expect, it, vi } from 'vitest';
import { UnitNotDrainedError } from '../../src/index.ts';
import type { MemoryLegacyAdapter } from '../../src/testing/index.ts';
import type { PatientRow } from '../harness/patient-fixture.ts';
import { north, startWriterFixture, type WriterFixture } from '../harness/writer-fixture.ts';

/**
 * Housekeeping through the writer: a paused unit's writes stay pending (nothing lost) until it
 * resumes, drainUnit returns once the unit owes nothing, and retention deletes what its rules
 * do not keep, directly and from the drainer's runtime.
 */
describe('housekeeping', () => {
  let fx: WriterFixture<MemoryLegacyAdapter<PatientRow>> | undefined;
  afterEach(async () => {
    await fx?.writer.stop();
    await fx?.close();
    fx = undefined;
  });

  it('holds a paused unit’s mirrors in the journal, shows the pause, and applies them on resume', async () => {
    fx = await startWriterFixture({ stage: 'dual-write' });
    await fx.writer.pauseUnit('north', { by: 'ops', reason: 'maintenance' });
    const paused = await fx.writer.create(
      'Patient',
      { id: 'p-1', first_name: 'Ada', last_name: 'Lovelace' },
      north,
    );
    expect(paused.mirror).toBe('pending');
    const other = await fx.writer.create(
      'Patient',
      { id: 'p-2', first_name: 'Alan', last_name: 'Turing' },
      { unit: 'south' },
    );
    expect(other.mirror).toBe('applied');
    expect(await fx.writer.drain({ timeoutMs: 1_000 })).toMatchObject({ applied: 0, timedOut: false });
    expect(await fx.writer.linkOf('Patient', 'p-1')).toBeUndefined();
    const readiness = await fx.writer.readiness('north');
    expect(readiness.paused).toMatchObject({ unit: 'north', by: 'ops', reason: 'maintenance' });
    expect(readiness.figures.pending).toBe(1);
    await expect(fx.writer.drainUnit('north', { timeoutMs: 1_000 })).rejects.toMatchObject({
      name: 'UnitNotDrainedError',
      paused: true,
    });
    expect(await fx.writer.resumeUnit('north')).toBe(true);
    const drained = await fx.writer.drainUnit('north', { timeoutMs: 30_000 });
    expect(drained.remaining).toMatchObject({ pending: 0, leased: 0 });
    expect((await fx.writer.linkOf('Patient', 'p-1'))?.medplumId).toBeDefined();
    expect((await fx.writer.readiness('north')).paused).toBeUndefined();
  });

  it('drainUnit gives up at its time limit with the unit’s counts', async () => {
    fx = await startWriterFixture({ stage: 'dual-write', writer: { mirror: 'async' } });
    fx.server.faults.failShare(1, 503);
    await fx.writer.create('Patient', { id: 'p-1', first_name: 'Ada', last_name: 'Lovelace' }, north);
    const error = await fx.writer.drainUnit('north', { timeoutMs: 300 }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(UnitNotDrainedError);
    expect(error).toMatchObject({ unit: 'north', paused: false });
  });

  it('prunes events beyond the configured count, directly and from the drainer’s runtime', async () => {
    fx = await startWriterFixture({ writer: { retention: { events: { maxCount: 2 }, batchSize: 2 } } });
    for (let i = 0; i < 5; i += 1) await fx.store.appendEvent({ type: 'conflict', legacyId: `p-${i}` });
    expect(await fx.writer.prune()).toMatchObject({ events: 3, complete: true });
    for (let i = 5; i < 8; i += 1) await fx.store.appendEvent({ type: 'conflict', legacyId: `p-${i}` });
    fx.writer.start({ drainer: true, feeds: false });
    await vi.waitFor(async () => expect(await fx?.store.listEvents()).toHaveLength(2));
  });

  it('samples the backlog into the journal from the drainer’s runtime, for the console’s chart', async () => {
    fx = await startWriterFixture({ stage: 'dual-write' });
    // A mirror the server refuses for good: one open dead letter in north.
    await fx.writer
      .create('Patient', { id: 'p-1', first_name: 'Ada', last_name: 'Lovelace', birth_date: 'x' }, north)
      .catch(() => undefined);
    expect(await fx.store.backlogHistory({ since: new Date(0).toISOString() })).toEqual([]);
    fx.writer.start({ drainer: true, feeds: false });
    // A sample is taken at start; stop() waits for it.
    await fx.writer.stop();
    const samples = await fx.store.backlogHistory({ since: new Date(0).toISOString() });
    expect(samples).toMatchObject([
      { unit: undefined, pending: 0, leased: 0, dead: 1 },
      { unit: 'north', pending: 0, leased: 0, dead: 1 },
    ]);
    expect(samples[0]?.at).toBe(samples[1]?.at);
  });

  it('samples nothing with backlogHistory: false, or in an instance without the drainer role', async () => {
    fx = await startWriterFixture({ writer: { backlogHistory: false } });
    fx.writer.start({ drainer: true, feeds: false });
    await fx.writer.stop();
    expect(await fx.store.backlogHistory({ since: new Date(0).toISOString() })).toEqual([]);
    const web = await startWriterFixture();
    web.writer.start({ drainer: false, feeds: false });
    await web.writer.stop();
    await web.close();
    expect(await web.store.backlogHistory({ since: new Date(0).toISOString() })).toEqual([]);
  });

  it('refuses a backlog history whose step or keep is not a positive duration, naming it', async () => {
    await expect(startWriterFixture({ writer: { backlogHistory: { stepMs: 0 } } })).rejects.toMatchObject({
      name: 'ConfigurationError',
      field: 'backlogHistory.stepMs',
    });
    await expect(
      startWriterFixture({ writer: { backlogHistory: { stepMs: 60_000, keepMs: 1_000 } } }),
    ).rejects.toMatchObject({ name: 'ConfigurationError', field: 'backlogHistory.keepMs' });
    await expect(
      startWriterFixture({ writer: { backlogHistory: { step: 5 } as never } }),
    ).rejects.toMatchObject({ name: 'ConfigurationError', field: 'backlogHistory.step' });
  });

  it('refuses retention that would delete what readiness reads, naming the option', async () => {
    await expect(
      startWriterFixture({ writer: { retention: { samples: { maxAgeMs: 60_000 } } } }),
    ).rejects.toMatchObject({ name: 'ConfigurationError', field: 'retention.samples.maxAgeMs' });
    await expect(
      startWriterFixture({ writer: { retention: { batchsize: 5 } as never } }),
    ).rejects.toMatchObject({
      name: 'ConfigurationError',
    });
  });
});

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { legacyCursorName } from '../../src/feeds/legacy-feed.ts';
import type { MemoryLegacyAdapter } from '../../src/testing/index.ts';
import type { PatientRow } from '../harness/patient-fixture.ts';
import { medplumCopies, north, startWriterFixture, type WriterFixture } from '../harness/writer-fixture.ts';
import { feedsOver } from './feeds-fixture.ts';

describe('legacy change feed', () => {
  let fx: WriterFixture<MemoryLegacyAdapter<PatientRow>>;
  beforeEach(async () => {
    fx = await startWriterFixture({ stage: 'live' });
  });
  afterEach(async () => {
    await fx.close();
  });

  it('mirrors a direct legacy edit to Medplum through the outbox', async () => {
    await fx.writer.create('Patient', { id: 'p-1', first_name: 'Ada', last_name: 'Lovelace' }, north);
    const feeds = feedsOver(fx);
    await feeds.pollOnce();
    await fx.writer.drain();
    const current = await fx.legacy.read('Patient', 'p-1');
    await fx.legacy.update('Patient', 'p-1', { ...current!.row, last_name: 'King' });
    expect(await feeds.pollOnce()).toMatchObject({ queued: 1, errors: 0 });
    await fx.writer.drain();
    expect((await medplumCopies(fx.direct, 'p-1'))[0]?.name?.[0]?.family).toBe('King');
  });

  it('does not ping-pong: once mirrored, further passes queue nothing and versions stay', async () => {
    await fx.writer.create('Patient', { id: 'p-1', first_name: 'Ada', last_name: 'Lovelace' }, north);
    const feeds = feedsOver(fx);
    const current = await fx.legacy.read('Patient', 'p-1');
    await fx.legacy.update('Patient', 'p-1', { ...current!.row, last_name: 'King' });
    await feeds.pollOnce();
    await fx.writer.drain();
    const versions = async (): Promise<unknown[]> => [
      (await fx.legacy.read('Patient', 'p-1'))?.version,
      (await medplumCopies(fx.direct, 'p-1'))[0]?.meta?.versionId,
    ];
    const settled = await versions();
    for (let pass = 0; pass < 3; pass += 1) {
      expect(await feeds.pollOnce()).toMatchObject({ queued: 0 });
      await fx.writer.drain();
    }
    expect(await versions()).toEqual(settled);
    expect(await fx.store.outboxCounts()).toMatchObject({ pending: 0, leased: 0 });
    expect(feeds.counts.echoes).toBeGreaterThan(0);
  });

  it('mirrors a direct legacy delete to Medplum where legacy is the authority', async () => {
    // In live, a legacy delete is held for review by default (test/feeds/delete-policy.test.ts).
    await fx.plan.set('north', 'dual-write');
    await fx.writer.create('Patient', { id: 'p-1', first_name: 'Ada', last_name: 'Lovelace' }, north);
    const feeds = feedsOver(fx);
    await feeds.pollOnce();
    await fx.legacy.delete('Patient', 'p-1');
    expect(await feeds.pollOnce()).toMatchObject({ queued: 1 });
    await fx.writer.drain();
    expect(await medplumCopies(fx.direct, 'p-1')).toHaveLength(0);
    expect(await fx.store.getLink('Patient', 'p-1')).toBeUndefined();
    expect(await feeds.pollOnce()).toMatchObject({ queued: 0 });
  });

  it('does not mirror a unit in legacy-only', async () => {
    await fx.plan.set('north', 'legacy-only');
    const feeds = feedsOver(fx);
    await fx.legacy.create('Patient', { id: 'p-1', first_name: 'Ada', last_name: 'Lovelace' });
    expect(await feeds.pollOnce()).toMatchObject({ queued: 0, skippedByStage: 1 });
    await fx.writer.drain();
    expect(await medplumCopies(fx.direct, 'p-1')).toHaveLength(0);
  });

  it('keeps its cursor when the legacy system fails, and catches up next pass', async () => {
    await fx.legacy.create('Patient', { id: 'p-1', first_name: 'Ada', last_name: 'Lovelace' });
    const feeds = feedsOver(fx, { sides: ['legacy'] });
    fx.legacy.failNext(1);
    expect(await feeds.pollOnce()).toMatchObject({ errors: 1, queued: 0 });
    expect(await fx.store.getCursor(legacyCursorName('Patient'))).toBeUndefined();
    expect(await feeds.pollOnce()).toMatchObject({ errors: 0, queued: 1 });
    expect(await fx.store.getCursor(legacyCursorName('Patient'))).toBeDefined();
  });
});

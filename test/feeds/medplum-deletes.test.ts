import { createHmac } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { MemoryLegacyAdapter } from '../../src/testing/index.ts';
import type { PatientRow } from '../harness/patient-fixture.ts';
import { medplumCopies, north, startWriterFixture, type WriterFixture } from '../harness/writer-fixture.ts';
import { feedsOver } from './feeds-fixture.ts';

describe('Medplum deletes reach the legacy system', () => {
  let fx: WriterFixture<MemoryLegacyAdapter<PatientRow>>;
  beforeEach(async () => {
    fx = await startWriterFixture({ stage: 'live' });
  });
  afterEach(async () => {
    await fx.close();
  });

  async function linked(count: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 1; i <= count; i += 1) {
      const created = await fx.writer.create(
        'Patient',
        { id: `p-${i}`, first_name: 'A', last_name: `F${i}` },
        north,
      );
      ids.push(created.medplumId ?? '');
    }
    return ids;
  }

  it('the existence check turns a linked resource that is gone into a legacy delete', async () => {
    const ids = await linked(5);
    const feeds = feedsOver(fx, { pageSize: 2 });
    await feeds.pollOnce();
    await fx.direct.deleteResource('Patient', ids[3] ?? '');
    expect(await feeds.pollOnce()).toMatchObject({ queued: 1, errors: 0 });
    await fx.writer.drain();
    expect(await fx.legacy.read('Patient', 'p-4')).toBeUndefined();
    expect(await fx.legacy.read('Patient', 'p-3')).toBeDefined();
    expect(await feeds.pollOnce()).toMatchObject({ queued: 0 });
  });

  it('runs the existence check only every existenceCheckIntervalMs', async () => {
    const ids = await linked(1);
    const feeds = feedsOver(fx, { existenceCheckIntervalMs: 3_600_000 });
    await feeds.pollOnce();
    await fx.direct.deleteResource('Patient', ids[0] ?? '');
    expect(await feeds.pollOnce()).toMatchObject({ queued: 0 });
  });

  it('journals a delete from a signed rest-hook notification once Medplum confirms it', async () => {
    const ids = await linked(2);
    const secret = 'hook-secret';
    const feeds = feedsOver(fx, { restHookSecret: secret, existenceCheckIntervalMs: 3_600_000 });
    const body = '{}';
    const headers = {
      'x-medplum-deleted-resource': `Patient/${ids[0]}`,
      'x-signature': createHmac('sha256', secret).update(body).digest('hex'),
    };
    // Not deleted yet: a notification is a claim Medplum must confirm.
    expect(await feeds.handleRestHook({ headers, body })).toEqual({ status: 'ignored' });
    await fx.direct.deleteResource('Patient', ids[0] ?? '');
    expect(await feeds.handleRestHook({ headers: { ...headers, 'x-signature': 'bad' }, body })).toEqual({
      status: 'refused',
    });
    expect(await feeds.handleRestHook({ headers: new Headers(headers), body })).toEqual({ status: 'queued' });
    await fx.writer.drain();
    expect(await fx.legacy.read('Patient', 'p-1')).toBeUndefined();
    // Delivered again (rest-hooks are at least once): the link went with the mirror.
    expect(await feeds.handleRestHook({ headers, body })).toEqual({ status: 'ignored' });
    expect(await medplumCopies(fx.direct, 'p-2')).toHaveLength(1);
  });

  it("keeps a secret given through a getter of the writer's feeds option, and takes the body as bytes", async () => {
    // Settings as a class: the secret is a getter on its prototype, not an own key.
    class FeedSettings {
      readonly unitOf = (): string => 'north';
      readonly existenceCheckIntervalMs = 3_600_000;
      readonly #secret = 'hook-secret';
      get restHookSecret(): string {
        return this.#secret;
      }
    }
    const withFeeds = await startWriterFixture({ stage: 'live', writer: { feeds: new FeedSettings() } });
    try {
      const created = await withFeeds.writer.create(
        'Patient',
        { id: 'p-1', first_name: 'A', last_name: 'B' },
        north,
      );
      await withFeeds.direct.deleteResource('Patient', created.medplumId ?? '');
      const body = Buffer.from('{}');
      const headers = { 'x-medplum-deleted-resource': `Patient/${created.medplumId ?? ''}` };
      const signature = createHmac('sha256', 'hook-secret').update(body).digest('hex');
      expect(
        await withFeeds.writer.handleRestHook({ headers: { ...headers, 'x-signature': 'bad' }, body }),
      ).toEqual({
        status: 'refused',
      });
      expect(
        await withFeeds.writer.handleRestHook({ headers: { ...headers, 'x-signature': signature }, body }),
      ).toEqual({
        status: 'queued',
      });
    } finally {
      await withFeeds.close();
    }
  });
});

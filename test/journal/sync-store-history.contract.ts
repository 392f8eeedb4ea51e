import { describe, expect, it } from 'vitest';
import type { SyncStore } from '../../src/journal/sync-store.ts';
import { intentOf } from './sync-store.fixture.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/**
 * The operating history part of the {@link SyncStore} contract: the outbox's backlog sampled
 * once per step (whoever records first), the mirror lag per step. Run inside
 * `describeSyncStoreContract`.
 *
 * @param fixture - Holds the current case's store.
 * @example
 * ```ts
 * describeHistoryContract(useStore(open));
 * ```
 */
export function describeHistoryContract(fixture: { readonly store: SyncStore }): void {
  describe('operating history', () => {
    /** Queues two north records and one south one, leases one north, dead-letters the south one. */
    async function backlog(): Promise<void> {
      const { store } = fixture;
      await store.commit(await store.intend(intentOf('s-1', { unit: 'south' }), 0));
      const [south] = await store.claim('w1', 1, HOUR);
      if (south === undefined) throw new Error('expected a lease');
      await store.deadLetter(south, { name: 'RejectedError', message: 'refused', status: 400 });
      for (const id of ['n-1', 'n-2']) await store.commit(await store.intend(intentOf(id), 0));
      await store.claim('w1', 1, HOUR);
    }

    it('samples the backlog per unit and summed, once per step whoever records', async () => {
      const { store } = fixture;
      const since = new Date(Date.now() - DAY).toISOString();
      await backlog();
      await store.recordBacklog({ stepMs: DAY, keepMs: 30 * DAY });
      await store.commit(await store.intend(intentOf('n-3'), 0));
      await store.recordBacklog({ stepMs: DAY, keepMs: 30 * DAY });
      const samples = await store.backlogHistory({ since });
      const at = new Date(Math.floor(Date.now() / DAY) * DAY).toISOString();
      expect(samples).toEqual([
        { at, unit: undefined, pending: 1, leased: 1, dead: 1 },
        { at, unit: 'north', pending: 1, leased: 1, dead: 0 },
        { at, unit: 'south', pending: 0, leased: 0, dead: 1 },
      ]);
      expect(await store.backlogHistory({ since: new Date(Date.now() + DAY).toISOString() })).toEqual([]);
    });

    it('records an empty outbox as a zero sum, and deletes samples older than kept', async () => {
      const { store } = fixture;
      const since = new Date(Date.now() - DAY).toISOString();
      await store.recordBacklog({ stepMs: DAY, keepMs: 30 * DAY });
      expect(await store.backlogHistory({ since })).toMatchObject([
        { unit: undefined, pending: 0, leased: 0, dead: 0 },
      ]);
      await backlog();
      // Kept for 0 ms: the step's first sample goes, and this call records the step anew.
      await store.recordBacklog({ stepMs: DAY, keepMs: 0 });
      expect(await store.backlogHistory({ since })).toMatchObject([
        { unit: undefined, pending: 1, leased: 1, dead: 1 },
        { unit: 'north' },
        { unit: 'south' },
      ]);
    });

    it('gives the mirror lag per step and unit with its percentiles', async () => {
      const { store } = fixture;
      const since = new Date(Date.now() - DAY).toISOString();
      await store.recordSamples([
        ...[40, 10, 30, 20].map((value) => ({ unit: 'north', kind: 'mirror-lag' as const, value })),
        { unit: 'north', kind: 'comparison', value: 1 },
        { unit: 'south', kind: 'mirror-lag', value: 999 },
      ]);
      const at = new Date(Math.floor(Date.now() / DAY) * DAY).toISOString();
      expect(await store.lagHistory({ since, stepMs: DAY })).toEqual([
        { at, unit: 'north', p50: 20, p95: 40, samples: 4 },
        { at, unit: 'south', p50: 999, p95: 999, samples: 1 },
      ]);
    });
  });
}

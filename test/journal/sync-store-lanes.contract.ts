import { describe, expect, it } from 'vitest';
import type { SyncStore } from '../../src/journal/sync-store.ts';
import { intentOf, sleep } from './sync-store.fixture.ts';

const HOUR = 3_600_000;
const LANE = 'backfill:42';

/**
 * The lanes part of the {@link SyncStore} contract (issue 12: a backfill on a Medplum client of
 * its own): a lane's entries go to the claims naming it while a holder's hold lasts, and to
 * every claim once none does; a live write takes its record's entry out of the lane. Run inside
 * `describeSyncStoreContract`.
 *
 * @param fixture - Holds the current case's store.
 * @example
 * ```ts
 * describeLanesContract(useStore(open));
 * ```
 */
export function describeLanesContract(fixture: { readonly store: SyncStore }): void {
  const ids = (leases: readonly { readonly entry: { readonly legacyId: string } }[]): string[] =>
    leases.map((lease) => lease.entry.legacyId).sort();

  describe('outbox lanes', () => {
    it("a held lane's entries are claimed by its drainers only, the others' by everyone else", async () => {
      const { store } = fixture;
      // Queued as a backfill's page is, in one statement.
      await store.intendMany(
        [intentOf('p-1', { lane: LANE }), intentOf('p-2', { lane: LANE }), intentOf('p-3')],
        0,
      );
      await store.holdLane(LANE, 'backfill-worker', HOUR);
      expect(await store.laneCount(LANE)).toBe(2);
      expect(ids(await store.claim('writer', 10, HOUR))).toEqual(['p-3']);
      expect(await store.claim('other-lane', 10, HOUR, 'backfill:7')).toEqual([]);
      const laned = await store.claim('backfill-worker', 10, HOUR, LANE);
      expect(ids(laned)).toEqual(['p-1', 'p-2']);
      expect(laned[0]?.entry.lane).toBe(LANE);
      expect(await store.complete(laned[0]!, undefined)).toBe('done');
      expect(await store.laneCount(LANE)).toBe(1);
    });

    it('a lane nobody holds (its holder released it or died) is claimed by every drainer', async () => {
      const { store } = fixture;
      await store.intend(intentOf('p-1', { lane: LANE }), 0);
      await store.intend(intentOf('p-2', { lane: LANE }), 0);
      // Never held: not stranded.
      expect(ids(await store.claim('writer', 1, HOUR))).toEqual(['p-1']);
      // Held by a process that dies: claimable once its hold lapses.
      await store.holdLane(LANE, 'dead-worker', 300);
      expect(await store.claim('writer', 10, HOUR)).toEqual([]);
      await sleep(400);
      expect(ids(await store.claim('writer', 10, HOUR))).toEqual(['p-2']);
      // Released: claimable at once.
      await store.intend(intentOf('p-3', { lane: LANE }), 0);
      await store.holdLane(LANE, 'worker-a', HOUR);
      await store.holdLane(LANE, 'worker-b', HOUR);
      await store.releaseLane(LANE, 'worker-a');
      expect(await store.claim('writer', 10, HOUR)).toEqual([]);
      await store.releaseLane(LANE, 'worker-b');
      expect(ids(await store.claim('writer', 10, HOUR))).toEqual(['p-3']);
    });

    it("a live write of a record queued in a lane takes its one entry out of the lane; a backfill's queueing keeps a live entry live", async () => {
      const { store } = fixture;
      await store.holdLane(LANE, 'backfill-worker', HOUR);
      const laned = await store.intend(intentOf('p-1', { lane: LANE }), 0);
      const live = await store.intend(intentOf('p-1'), 0);
      expect(live.id).toBe(laned.id);
      expect(await store.laneCount(LANE)).toBe(0);
      await store.intend(intentOf('p-2'), 0);
      await store.intend(intentOf('p-2', { lane: LANE }), 0);
      expect(await store.laneCount(LANE)).toBe(0);
      expect(await store.claim('backfill-worker', 10, HOUR, LANE)).toEqual([]);
      const leases = await store.claim('writer', 10, HOUR);
      expect(ids(leases)).toEqual(['p-1', 'p-2']);
      expect(leases.map((lease) => lease.entry.seq)).toEqual([2, 2]);
      expect((await store.listOutbox()).every((entry) => entry.lane === undefined)).toBe(true);
    });

    it('a live write while the lane holds the record leased requeues it to the live drainers, never both at once', async () => {
      const { store } = fixture;
      await store.holdLane(LANE, 'backfill-worker', HOUR);
      await store.intend(intentOf('p-1', { lane: LANE }), 0);
      const [lease] = await store.claim('backfill-worker', 1, HOUR, LANE);
      await store.intend(intentOf('p-1'), 0);
      // One entry per record: leased by the lane's drainer, so nobody else takes it meanwhile.
      expect(await store.claim('writer', 10, HOUR)).toEqual([]);
      expect(await store.complete(lease!, undefined)).toBe('requeued');
      const [again] = await store.claim('writer', 10, HOUR);
      expect(again?.entry).toMatchObject({ legacyId: 'p-1', seq: 2 });
      expect(again?.entry.lane).toBeUndefined();
    });
  });
}

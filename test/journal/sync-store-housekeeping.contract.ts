import { describe, expect, it } from 'vitest';
import type { SyncStore } from '../../src/journal/sync-store.ts';
import { intentOf, sleep } from './sync-store.fixture.ts';

/**
 * Housekeeping: a paused unit's entries wait in the outbox (no claim, no inline lease, counted
 * as `paused`) until it resumes; retention deletes what its rules do not keep, in batches, never
 * an open dead letter or a stage change.
 *
 * @param fixture - Gives the store under test.
 */
export function describeHousekeepingContract(fixture: { readonly store: SyncStore }): void {
  describe('unit pauses', () => {
    it('holds a paused unit’s entries from claims and inline leases until it resumes', async () => {
      await fixture.store.commit(await fixture.store.intend(intentOf('p-1', { unit: 'north' }), 0));
      await fixture.store.commit(await fixture.store.intend(intentOf('p-2', { unit: 'south' }), 0));
      const pause = await fixture.store.pauseUnit('north', { by: 'ops', reason: 'maintenance' });
      expect(pause).toMatchObject({ unit: 'north', by: 'ops', reason: 'maintenance' });
      expect(await fixture.store.pauseUnit('north')).toEqual(pause);
      expect(await fixture.store.unitPauses()).toEqual([pause]);
      const claimed = await fixture.store.claim('worker-1', 10, 60_000);
      expect(claimed.map((lease) => lease.entry.legacyId)).toEqual(['p-2']);
      const inline = await fixture.store.intend(intentOf('p-3', { unit: 'north' }), 60_000);
      expect(await fixture.store.commit(inline, { owner: 'writer-1', leaseMs: 60_000 })).toBeUndefined();
      expect(await fixture.store.outboxCounts({ unit: 'north' })).toMatchObject({ pending: 0, paused: 2 });
      expect(await fixture.store.outboxCounts()).toMatchObject({ pending: 0, paused: 2, leased: 1 });
      expect(await fixture.store.resumeUnit('north')).toBe(true);
      expect(await fixture.store.resumeUnit('north')).toBe(false);
      expect(await fixture.store.unitPauses()).toEqual([]);
      const resumed = await fixture.store.claim('worker-1', 10, 60_000);
      expect(resumed.map((lease) => lease.entry.legacyId).sort()).toEqual(['p-1', 'p-3']);
    });
  });

  describe('retention', () => {
    it('deletes events beyond the newest maxCount in batches, keeping stage changes', async () => {
      await fixture.store.appendEvent({ type: 'stage-change', unit: 'north' });
      for (let i = 0; i < 5; i += 1)
        await fixture.store.appendEvent({ type: 'conflict', legacyId: `p-${i}` });
      const first = await fixture.store.prune({ events: { maxCount: 2 } }, 2);
      expect(first).toMatchObject({ events: 2, deadLetters: 0, samples: 0, more: true });
      const second = await fixture.store.prune({ events: { maxCount: 2 } }, 2);
      expect(second).toMatchObject({ events: 1, more: false });
      expect(await fixture.store.prune({ events: { maxCount: 2 } }, 2)).toMatchObject({
        events: 0,
        more: false,
      });
      const left = await fixture.store.listEvents();
      expect(left.map((event) => event.legacyId ?? event.type)).toEqual(['p-4', 'p-3', 'stage-change']);
    });

    it('deletes events and readiness samples older than maxAgeMs', async () => {
      await fixture.store.appendEvent({ type: 'conflict', legacyId: 'old' });
      await fixture.store.recordSamples([{ unit: 'north', kind: 'mirror-lag', value: 5 }]);
      await sleep(60);
      // The cut falls 30 ms after the old rows and 30 ms before the new ones, whatever the load.
      const cut = Date.now() - 30;
      const since = new Date(cut).toISOString();
      await sleep(60);
      await fixture.store.appendEvent({ type: 'conflict', legacyId: 'new' });
      await fixture.store.recordSamples([{ unit: 'north', kind: 'mirror-lag', value: 7 }]);
      const maxAgeMs = Date.now() - cut;
      const counts = await fixture.store.prune({ events: { maxAgeMs }, samples: { maxAgeMs } }, 100);
      expect(counts).toMatchObject({ events: 1, samples: 1, more: false });
      expect((await fixture.store.listEvents()).map((event) => event.legacyId)).toEqual(['new']);
      expect((await fixture.store.readinessEvidence({ unit: 'north', since })).mirrorLagMs.samples).toBe(1);
    });

    it('deletes closed dead letters only, never an open one', async () => {
      const reason = { name: 'RejectedError', message: 'refused' };
      const letters = [];
      for (const id of ['p-1', 'p-2', 'p-3']) {
        await fixture.store.commit(await fixture.store.intend(intentOf(id), 0));
        const [lease] = await fixture.store.claim('worker-1', 1, 60_000);
        await fixture.store.deadLetter(lease!, reason);
        letters.push((await fixture.store.findDeadLetter('Patient', id))!);
      }
      await fixture.store.discardDeadLetter(letters[0]!.id, 'fixed by hand');
      await fixture.store.discardDeadLetter(letters[1]!.id, 'fixed by hand');
      expect(await fixture.store.prune({ deadLetters: { maxCount: 1 } }, 10)).toMatchObject({
        deadLetters: 1,
      });
      expect(
        (await fixture.store.listDeadLetters({ status: 'all' })).map((letter) => letter.legacyId),
      ).toEqual(['p-2', 'p-3']);
      expect(await fixture.store.prune({ deadLetters: { maxCount: 0 } }, 10)).toMatchObject({
        deadLetters: 1,
      });
      expect(
        (await fixture.store.listDeadLetters({ status: 'all' })).map((letter) => letter.legacyId),
      ).toEqual(['p-3']);
    });
  });
}

import { describe, expect, it } from 'vitest';
import type { PlanSeed } from '../../src/journal/stored-plan.ts';
import { LinkConflictError, type StoredEvent } from '../../src/journal/sync-store.ts';
import { describeHistoryContract } from './sync-store-history.contract.ts';
import { describeJobsContract } from './sync-store-jobs.contract.ts';
import { describeOpenedLettersContract } from './sync-store-letters.contract.ts';
import { describeHousekeepingContract } from './sync-store-housekeeping.contract.ts';
import { describeOutboxContract } from './sync-store-outbox.contract.ts';
import { describeWaitingContract } from './sync-store-waiting.contract.ts';
import { describeLanesContract } from './sync-store-lanes.contract.ts';
import { linkOf, sleep, useStore, type OpenSyncStore } from './sync-store.fixture.ts';

export type { OpenSyncStore, SyncStoreFixture } from './sync-store.fixture.ts';

/**
 * The behaviour every `SyncStore` promises, as one suite to run per implementation.
 *
 * @param name - The implementation's name, for the describe block.
 * @param open - Opens a fresh, empty store for each case.
 * @example
 * ```ts
 * describeSyncStoreContract('MemoryStore', async () => ({ store: new MemoryStore(), close: async () => {} }));
 * ```
 */
export function describeSyncStoreContract(name: string, open: OpenSyncStore): void {
  describe(`${name} (SyncStore contract)`, () => {
    const fixture = useStore(open);

    describe('links', () => {
      it('reads a saved link back by legacy id and by Medplum id', async () => {
        const link = linkOf('p-1', 'm-1');
        await fixture.store.saveLink(link);
        expect(await fixture.store.getLink('Patient', 'p-1')).toEqual(link);
        expect(await fixture.store.getLinkByMedplumId('Patient', 'm-1')).toEqual(link);
      });

      it('reads absent versions back as undefined', async () => {
        await fixture.store.saveLink(
          linkOf('p-1', 'm-1', { legacyVersion: undefined, medplumVersion: undefined }),
        );
        const link = await fixture.store.getLink('Patient', 'p-1');
        expect(link?.legacyVersion).toBeUndefined();
        expect(link?.medplumVersion).toBeUndefined();
      });

      it('keeps a link’s base snapshot, and replaces it with the link', async () => {
        const base = { resourceType: 'Patient' as const, name: [{ family: 'Doe', given: ['Ann'] }] };
        await fixture.store.saveLink(linkOf('p-1', 'm-1', { base }));
        expect((await fixture.store.getLink('Patient', 'p-1'))?.base).toEqual(base);
        await fixture.store.saveLink(linkOf('p-1', 'm-1', { base: undefined }));
        expect((await fixture.store.getLink('Patient', 'p-1'))?.base).toBeUndefined();
      });

      it('reads many links at once, by legacy id, leaving out ids without one and other types', async () => {
        const first = linkOf('p-1', 'm-1');
        const second = linkOf('p-2', 'm-2', { legacyVersion: undefined });
        await fixture.store.saveLink(first);
        await fixture.store.saveLink(second);
        await fixture.store.saveLink({ ...linkOf('p-3', 'm-3'), resourceType: 'Encounter' });
        const found = await fixture.store.getLinks('Patient', ['p-2', 'nobody', 'p-1', 'p-3', 'p-1']);
        expect(found).toEqual(
          new Map([
            ['p-2', second],
            ['p-1', first],
          ]),
        );
        expect(await fixture.store.getLinks('Patient', [])).toEqual(new Map());
      });

      it('answers undefined for records that have no link', async () => {
        expect(await fixture.store.getLink('Patient', 'nobody')).toBeUndefined();
        expect(await fixture.store.getLinkByMedplumId('Patient', 'nobody')).toBeUndefined();
      });

      it('refuses to link a Medplum id to a second legacy id, changing nothing', async () => {
        await fixture.store.saveLink(linkOf('p-1', 'm-1'));
        const error = await fixture.store.saveLink(linkOf('p-2', 'm-1')).catch((err: unknown) => err);
        expect(error).toBeInstanceOf(LinkConflictError);
        expect(error).toMatchObject({ medplumId: 'm-1', existingLegacyId: 'p-1', legacyId: 'p-2' });
        expect(await fixture.store.getLink('Patient', 'p-2')).toBeUndefined();
        expect((await fixture.store.getLinkByMedplumId('Patient', 'm-1'))?.legacyId).toBe('p-1');
      });

      it('replaces the link of a legacy id saved again with a new Medplum id, freeing the old one', async () => {
        await fixture.store.saveLink(linkOf('p-1', 'm-1'));
        await fixture.store.saveLink(linkOf('p-1', 'm-2', { medplumVersion: '9' }));
        expect(await fixture.store.getLink('Patient', 'p-1')).toEqual(
          linkOf('p-1', 'm-2', { medplumVersion: '9' }),
        );
        expect(await fixture.store.getLinkByMedplumId('Patient', 'm-1')).toBeUndefined();
        await fixture.store.saveLink(linkOf('p-3', 'm-1'));
        expect((await fixture.store.getLinkByMedplumId('Patient', 'm-1'))?.legacyId).toBe('p-3');
      });

      it('keys links per resource type', async () => {
        await fixture.store.saveLink(linkOf('x-1', 'm-1'));
        await fixture.store.saveLink(linkOf('x-1', 'm-1', { resourceType: 'Encounter' }));
        expect((await fixture.store.getLink('Encounter', 'x-1'))?.resourceType).toBe('Encounter');
        expect((await fixture.store.getLink('Patient', 'x-1'))?.resourceType).toBe('Patient');
      });

      it('deletes a link, and deleting a missing one is a no-op', async () => {
        await fixture.store.saveLink(linkOf('p-1', 'm-1'));
        await fixture.store.deleteLink('Patient', 'p-1');
        await fixture.store.deleteLink('Patient', 'p-1');
        expect(await fixture.store.getLink('Patient', 'p-1')).toBeUndefined();
        expect(await fixture.store.getLinkByMedplumId('Patient', 'm-1')).toBeUndefined();
      });

      it('lists the links of one type page by page, each once, strictly after the last id seen', async () => {
        for (const id of ['p-3', 'p-1', 'p-5', 'p-2', 'p-4'])
          await fixture.store.saveLink(linkOf(id, `m-${id}`));
        await fixture.store.saveLink(linkOf('e-1', 'm-e-1', { resourceType: 'Encounter' }));
        const seen: string[] = [];
        let after: string | undefined;
        for (;;) {
          const page = await fixture.store.listLinks('Patient', { after, limit: 2 });
          expect(page.length).toBeLessThanOrEqual(2);
          if (page.length === 0) break;
          seen.push(...page.map((link) => link.legacyId));
          after = page.at(-1)?.legacyId;
        }
        expect(seen.toSorted()).toEqual(['p-1', 'p-2', 'p-3', 'p-4', 'p-5']);
        expect(new Set(seen).size).toBe(5);
        expect(await fixture.store.listLinks('Encounter', { limit: 10 })).toEqual([
          linkOf('e-1', 'm-e-1', { resourceType: 'Encounter' }),
        ]);
        expect(await fixture.store.listLinks('Observation', { limit: 10 })).toEqual([]);
      });
    });

    describeOutboxContract(fixture);
    describeWaitingContract(fixture);
    describeLanesContract(fixture);

    describeJobsContract(fixture);
    describeHistoryContract(fixture);
    describeOpenedLettersContract(fixture);
    describeHousekeepingContract(fixture);

    describe('events', () => {
      /** Appends a `conflict` event per unit and data given, in order. */
      async function conflicts(
        events: readonly [string, Record<string, unknown> | undefined][],
      ): Promise<void> {
        for (const [unit, data] of events) await fixture.store.appendEvent({ type: 'conflict', unit, data });
      }

      it('lists events newest first, with increasing ids and ISO times', async () => {
        await fixture.store.appendEvent({
          type: 'conflict',
          resourceType: 'Patient',
          legacyId: 'p-1',
          unit: 'north',
        });
        await fixture.store.appendEvent({
          type: 'divergence',
          data: { paths: ['name[0].family'], count: 1 },
        });
        const events = await fixture.store.listEvents();
        expect(events).toMatchObject([
          { type: 'divergence', data: { paths: ['name[0].family'], count: 1 } },
          { type: 'conflict', resourceType: 'Patient', legacyId: 'p-1', unit: 'north' },
        ]);
        expect(Number(events[0]!.id)).toBeGreaterThan(Number(events[1]!.id));
        expect(new Date(events[0]!.at).toISOString()).toBe(events[0]!.at);
        expect(events[1]!.data).toBeUndefined();
      });

      it('counts events of a type, of a unit, since an instant', async () => {
        await fixture.store.appendEvent({ type: 'conflict', unit: 'north' });
        await fixture.store.appendEvent({ type: 'conflict', unit: 'south' });
        await fixture.store.appendEvent({ type: 'divergence', unit: 'north' });
        expect(await fixture.store.countEvents({ type: 'conflict' })).toBe(2);
        expect(await fixture.store.countEvents({ type: 'conflict', unit: 'north' })).toBe(1);
        const past = new Date(Date.now() - 60_000).toISOString();
        const future = new Date(Date.now() + 60_000).toISOString();
        expect(await fixture.store.countEvents({ type: 'conflict', since: past })).toBe(2);
        expect(await fixture.store.countEvents({ type: 'conflict', since: future })).toBe(0);
        expect(await fixture.store.countEvents({ type: 'resolved' })).toBe(0);
      });

      it('filters events by type and limits them', async () => {
        for (const type of ['a', 'b', 'a', 'a']) await fixture.store.appendEvent({ type, data: { type } });
        expect(await fixture.store.listEvents({ type: 'b' })).toHaveLength(1);
        expect(await fixture.store.listEvents({ type: 'a', limit: 2 })).toHaveLength(2);
        expect(await fixture.store.listEvents({ type: 'c' })).toEqual([]);
        // The unit is filtered before the limit: the newest of that unit, not of all.
        await fixture.store.appendEvent({ type: 'a', unit: 'north', data: { n: 1 } });
        for (let i = 0; i < 3; i++) await fixture.store.appendEvent({ type: 'a', unit: 'south' });
        expect(await fixture.store.listEvents({ type: 'a', unit: 'north', limit: 1 })).toMatchObject([
          { unit: 'north', data: { n: 1 } },
        ]);
        expect(await fixture.store.listEvents({ unit: 'south' })).toHaveLength(3);
      });

      it('filters events by time and by values of their data, before the limit', async () => {
        await conflicts([
          ['north', { resolvedBy: 'authority-wins' }],
          ['north', { resolvedBy: 'three-way-merge', n: 2 }],
          ['south', { resolvedBy: 'authority-wins' }],
          ['south', undefined],
        ]);
        const merged = await fixture.store.listEvents({
          type: 'conflict',
          data: { resolvedBy: 'three-way-merge' },
        });
        expect(merged).toMatchObject([{ unit: 'north', data: { resolvedBy: 'three-way-merge', n: 2 } }]);
        expect(
          await fixture.store.listEvents({
            type: 'conflict',
            data: { resolvedBy: 'authority-wins' },
            limit: 1,
          }),
        ).toMatchObject([{ unit: 'south' }]);
        expect(await fixture.store.listEvents({ data: { resolvedBy: 'manual-review' } })).toEqual([]);
        const past = new Date(Date.now() - 60_000).toISOString();
        const future = new Date(Date.now() + 60_000).toISOString();
        expect(await fixture.store.listEvents({ since: past })).toHaveLength(4);
        expect(await fixture.store.listEvents({ since: future })).toEqual([]);
      });

      it('tallies events of a type by one key of their data, of a unit, since an instant', async () => {
        await conflicts([
          ['north', { resolvedBy: 'authority-wins' }],
          ['north', { resolvedBy: 'authority-wins' }],
          ['south', { resolvedBy: 'three-way-merge' }],
          ['south', undefined],
        ]);
        await fixture.store.appendEvent({
          type: 'resolved',
          unit: 'north',
          data: { resolvedBy: 'operator' },
        });
        expect(await fixture.store.tallyEvents({ type: 'conflict', key: 'resolvedBy' })).toEqual({
          'authority-wins': 2,
          'three-way-merge': 1,
          '': 1,
        });
        expect(
          await fixture.store.tallyEvents({ type: 'conflict', key: 'resolvedBy', unit: 'north' }),
        ).toEqual({
          'authority-wins': 2,
        });
        const future = new Date(Date.now() + 60_000).toISOString();
        expect(
          await fixture.store.tallyEvents({ type: 'conflict', key: 'resolvedBy', since: future }),
        ).toEqual({});
      });

      it('tallies names that every object inherits (__proto__, toString) as names like any other', async () => {
        await conflicts([
          ['north', { resolvedBy: '__proto__' }],
          ['north', { resolvedBy: '__proto__' }],
          ['south', { resolvedBy: 'toString' }],
        ]);
        const tally = await fixture.store.tallyEvents({ type: 'conflict', key: 'resolvedBy' });
        expect(Object.entries(tally).sort()).toEqual([
          ['__proto__', 2],
          ['toString', 1],
        ]);
        expect(Object.hasOwn(tally, 'constructor')).toBe(false);
      });
    });

    describe('cursors', () => {
      it('reads back the value set last, and undefined for an unknown cursor', async () => {
        expect(await fixture.store.getCursor('legacy:Patient')).toBeUndefined();
        await fixture.store.setCursor('legacy:Patient', 'c-1');
        await fixture.store.setCursor('legacy:Patient', 'c-2');
        await fixture.store.setCursor('medplum', 'm');
        expect(await fixture.store.getCursor('legacy:Patient')).toBe('c-2');
        expect(await fixture.store.getCursor('medplum')).toBe('m');
      });
    });

    describe('readiness evidence', () => {
      it('gives a unit’s lag percentiles and comparison count since an instant', async () => {
        const before = new Date(Date.now() - 1000).toISOString();
        await fixture.store.recordSamples([
          ...[40, 10, 30, 20].map((value) => ({ unit: 'north', kind: 'mirror-lag' as const, value })),
          { unit: 'north', kind: 'comparison', value: 0 },
          { unit: 'north', kind: 'comparison', value: 1 },
          { unit: 'south', kind: 'mirror-lag', value: 999 },
        ]);
        await fixture.store.recordSamples([]);
        expect(await fixture.store.readinessEvidence({ unit: 'north', since: before })).toEqual({
          mirrorLagMs: { p50: 20, p95: 40, samples: 4 },
          comparisons: 2,
        });
        const later = new Date(Date.now() + 60_000).toISOString();
        expect(await fixture.store.readinessEvidence({ unit: 'north', since: later })).toEqual({
          mirrorLagMs: { p50: undefined, p95: undefined, samples: 0 },
          comparisons: 0,
        });
      });
    });

    describe('feed leases', () => {
      it('grants a feed to one owner at a time, renews it for its holder, and frees it when released', async () => {
        expect(await fixture.store.acquireFeedLease('feed:legacy:Patient', 'a', 60_000)).toBe(true);
        expect(await fixture.store.acquireFeedLease('feed:legacy:Patient', 'b', 60_000)).toBe(false);
        expect(await fixture.store.acquireFeedLease('feed:legacy:Patient', 'a', 60_000)).toBe(true);
        expect(await fixture.store.acquireFeedLease('feed:medplum:Patient', 'b', 60_000)).toBe(true);
        await fixture.store.releaseFeedLease('feed:legacy:Patient', 'b');
        expect(await fixture.store.acquireFeedLease('feed:legacy:Patient', 'b', 60_000)).toBe(false);
        await fixture.store.releaseFeedLease('feed:legacy:Patient', 'a');
        expect(await fixture.store.acquireFeedLease('feed:legacy:Patient', 'b', 60_000)).toBe(true);
      });

      it('lets another owner take a feed over once its holder’s lease expired', async () => {
        expect(await fixture.store.acquireFeedLease('feed:legacy:Patient', 'a', 1)).toBe(true);
        await sleep(20);
        expect(await fixture.store.acquireFeedLease('feed:legacy:Patient', 'b', 60_000)).toBe(true);
        expect(await fixture.store.acquireFeedLease('feed:legacy:Patient', 'a', 60_000)).toBe(false);
      });
    });

    describe('plan', () => {
      const seed: PlanSeed = {
        default: 'legacy-only',
        units: { north: { default: 'dual-write', resourceTypes: { Observation: 'legacy-only' } } },
      };
      const event = (unit: string): StoredEvent => ({ type: 'stage-change', unit, data: { unit } });

      it('is undefined until seeded; a seed stores its stages at revision 1', async () => {
        expect(await fixture.store.loadPlan()).toBeUndefined();
        expect(await fixture.store.planRevision()).toBeUndefined();
        const stored = await fixture.store.seedPlan(seed);
        expect(stored).toEqual({ revision: 1, ...seed });
        expect(await fixture.store.loadPlan()).toEqual(stored);
        expect(await fixture.store.planRevision()).toBe(1);
      });

      it('keeps what it holds over a later seed, adding only what it does not hold', async () => {
        await fixture.store.seedPlan(seed);
        const again = await fixture.store.seedPlan({
          default: 'live',
          units: { north: { default: 'shadow', resourceTypes: {} } },
        });
        expect(again.revision).toBe(1);
        const stored = await fixture.store.seedPlan({
          default: 'live',
          units: {
            north: { default: 'shadow', resourceTypes: {} },
            south: { default: 'shadow', resourceTypes: {} },
          },
        });
        expect(stored).toEqual({
          revision: 2,
          default: 'legacy-only',
          units: { ...seed.units, south: { default: 'shadow', resourceTypes: {} } },
        });
      });

      it('sets a stage only from the stored one, bumping the revision and recording the event with it', async () => {
        await fixture.store.seedPlan(seed);
        const moved = await fixture.store.changePlan(
          { unit: 'north', resourceType: undefined, from: 'dual-write', to: 'shadow' },
          event('north'),
        );
        expect(moved.applied).toBe(true);
        expect(moved.plan.revision).toBe(2);
        expect(moved.plan.units.north).toEqual({
          default: 'shadow',
          resourceTypes: { Observation: 'legacy-only' },
        });
        const stale = await fixture.store.changePlan(
          { unit: 'north', resourceType: undefined, from: 'dual-write', to: 'legacy-only' },
          event('north'),
        );
        expect(stale).toEqual({ applied: false, plan: moved.plan });
        // A type's stage is compared with the type's own stage, a unit without rows with the default.
        const typed = await fixture.store.changePlan(
          { unit: 'north', resourceType: 'Observation', from: 'legacy-only', to: 'dual-write' },
          event('north'),
        );
        const fresh = await fixture.store.changePlan(
          { unit: 'east', resourceType: 'Patient', from: 'legacy-only', to: 'dual-write' },
          event('east'),
        );
        expect([typed.applied, fresh.applied]).toEqual([true, true]);
        expect(fresh.plan).toMatchObject({
          revision: 4,
          units: {
            east: { resourceTypes: { Patient: 'dual-write' } },
            north: { resourceTypes: { Observation: 'dual-write' } },
          },
        });
        expect((await fixture.store.listEvents({ type: 'stage-change' })).map((e) => e.unit)).toEqual([
          'east',
          'north',
          'north',
        ]);
      });

      it('refuses a change before a seed', async () => {
        await expect(
          fixture.store.changePlan(
            { unit: 'north', resourceType: undefined, from: 'legacy-only', to: 'dual-write' },
            event('north'),
          ),
        ).rejects.toThrow(/seed/);
      });
    });
  });
}

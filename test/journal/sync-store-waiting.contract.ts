import { describe, expect, it } from 'vitest';
import type { Lease, OutboxError } from '../../src/journal/outbox.ts';
import type { SyncStore } from '../../src/journal/sync-store.ts';
import { intentOf, linkOf } from './sync-store.fixture.ts';

const HOUR = 3_600_000;
const WAITING: OutboxError = {
  name: 'DependencyError',
  message: 'subject references Patient/p-1, which has no copy in Medplum: waiting for its mirror',
  side: 'medplum',
};

/**
 * The waiting part of the {@link SyncStore} contract: an entry deferred for a record it
 * references counts no attempt, shows its reason, and is woken when that record is linked or
 * dead-lettered, whenever that happens. Run inside `describeSyncStoreContract`.
 *
 * @param fixture - Holds the current case's store.
 * @example
 * ```ts
 * describeWaitingContract(useStore(open));
 * ```
 */
export function describeWaitingContract(fixture: { readonly store: SyncStore }): void {
  /** Queues an Encounter and a Patient record, and leases the Encounter. */
  async function encounterLeased(): Promise<Lease> {
    const { store } = fixture;
    await store.commit(await store.intend(intentOf('e-1', { resourceType: 'Encounter' }), HOUR));
    const [lease] = await store.claim('worker-1', 1, HOUR);
    if (lease === undefined) throw new Error('expected a lease');
    await store.commit(await store.intend(intentOf('p-1'), HOUR));
    return lease;
  }

  describe('waiting for a dependency', () => {
    it('defers without counting an attempt, names what it waits for, and counts it as waiting, not pending', async () => {
      const { store } = fixture;
      expect(await store.defer(await encounterLeased(), 'Patient/p-1', WAITING, HOUR, true)).toBe('done');
      const waiting = (await store.listOutbox()).find((entry) => entry.resourceType === 'Encounter');
      expect(waiting).toMatchObject({
        attempts: 0,
        lastError: WAITING,
        waitingFor: 'Patient/p-1',
        leaseOwner: undefined,
      });
      expect(await store.outboxCounts()).toEqual({ pending: 1, waiting: 1, leased: 0, dead: 0 });
      const [patient] = await store.claim('worker-1', 10, HOUR);
      expect(patient?.entry.resourceType).toBe('Patient');
    });

    it('wakes the dependent as soon as the dependency is linked', async () => {
      const { store } = fixture;
      await store.defer(await encounterLeased(), 'Patient/p-1', WAITING, HOUR, true);
      const [patient] = await store.claim('worker-1', 10, HOUR);
      expect(await store.complete(patient!, linkOf('p-1', 'm-1'))).toBe('done');
      const [encounter] = await store.claim('worker-1', 10, HOUR);
      expect(encounter?.entry).toMatchObject({
        resourceType: 'Encounter',
        waitingFor: 'Patient/p-1',
        attempts: 0,
      });
    });

    it('wakes a dependent waiting by Medplum id when a link to that id is saved', async () => {
      const { store } = fixture;
      await store.defer(await encounterLeased(), 'Patient#m-9', WAITING, HOUR, true);
      await store.saveLink(linkOf('p-9', 'm-9'));
      expect((await store.claim('worker-1', 10, HOUR)).map((lease) => lease.entry.resourceType)).toContain(
        'Encounter',
      );
    });

    it('is due at once when deferred after its dependency was linked', async () => {
      const { store } = fixture;
      await store.saveLink(linkOf('p-1', 'm-1'));
      await store.defer(await encounterLeased(), 'Patient/p-1', WAITING, HOUR, true);
      expect((await store.claim('worker-2', 10, HOUR)).map((lease) => lease.entry.resourceType)).toContain(
        'Encounter',
      );
    });

    it('wakes the dependent when the dependency is dead-lettered, and a held one stays held until then', async () => {
      const { store } = fixture;
      const lease = await encounterLeased();
      const [patient] = await store.claim('worker-1', 10, HOUR);
      await store.defer(lease, 'Patient/p-1', WAITING, HOUR, true);
      expect(await store.claim('worker-2', 10, HOUR)).toEqual([]);
      await store.deadLetter(patient!, {
        name: 'RejectedError',
        message: 'Medplum answered 400',
        status: 400,
      });
      expect(await store.findDeadLetter('Patient', 'p-1')).toMatchObject({
        resourceType: 'Patient',
        status: 'open',
      });
      const [woken] = await store.claim('worker-2', 10, HOUR);
      expect(woken?.entry.resourceType).toBe('Encounter');
      // Held now (the dependency is dead-lettered): no pending entry to finish, so it sleeps.
      await store.defer(woken!, 'Patient/p-1', WAITING, HOUR, false);
      expect(await store.claim('worker-2', 10, HOUR)).toEqual([]);
    });

    it('forgets what it waited for once an attempt fails for another reason', async () => {
      const { store } = fixture;
      await store.saveLink(linkOf('p-1', 'm-1'));
      await store.defer(await encounterLeased(), 'Patient/p-1', WAITING, HOUR, true);
      const lease = (await store.claim('worker-2', 10, HOUR)).find(
        (l) => l.entry.resourceType === 'Encounter',
      );
      await store.retryLater(lease!, { name: 'UnavailableError', message: 'Medplum answered 503' }, HOUR);
      const entry = (await store.listOutbox()).find((e) => e.resourceType === 'Encounter');
      expect(entry).toMatchObject({ waitingFor: undefined, attempts: 1 });
      expect((await store.outboxCounts()).waiting).toBeUndefined();
    });
  });
}

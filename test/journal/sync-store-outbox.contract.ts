import { describe, expect, it } from 'vitest';
import type { Lease, OutboxError } from '../../src/journal/outbox.ts';
import { LinkConflictError, type SyncStore } from '../../src/journal/sync-store.ts';
import { intentOf, linkOf, sleep } from './sync-store.fixture.ts';

const HOUR = 3_600_000;
const UNAVAILABLE: OutboxError = {
  name: 'UnavailableError',
  message: 'Medplum answered 503',
  status: 503,
  side: 'medplum',
};
const REJECTED: OutboxError = {
  name: 'RejectedError',
  message: 'Medplum answered 400',
  status: 400,
  side: 'medplum',
};

/**
 * The outbox and dead-letter part of the {@link SyncStore} contract (intents, holds, leases,
 * fencing, retries, dead letters), run inside `describeSyncStoreContract`.
 *
 * @param fixture - Holds the current case's store.
 * @example
 * ```ts
 * describeOutboxContract(useStore(open));
 * ```
 */
export function describeOutboxContract(fixture: { readonly store: SyncStore }): void {
  /** Records and commits an intent, so the entry is due at once. */
  async function queue(legacyId: string): Promise<void> {
    await fixture.store.commit(await fixture.store.intend(intentOf(legacyId), HOUR));
  }

  /** Queues one record and leases it to `worker-1`. */
  async function leased(legacyId = 'p-1', leaseMs = HOUR): Promise<Lease> {
    await queue(legacyId);
    const [lease] = await fixture.store.claim('worker-1', 1, leaseMs);
    if (lease === undefined) throw new Error('expected a lease');
    return lease;
  }

  describe('intents', () => {
    it('inserts an entry with seq 1 and no attempts, held until the hold ends', async () => {
      const ticket = await fixture.store.intend(intentOf('p-1', { base: { resourceType: 'Patient' } }), HOUR);
      expect(ticket.seq).toBe(1);
      const [entry] = await fixture.store.listOutbox();
      expect(entry).toMatchObject({ id: ticket.id, seq: 1, attempts: 0, unit: 'north', kind: 'upsert' });
      expect(entry).toMatchObject({
        base: { resourceType: 'Patient' },
        lastError: undefined,
        leaseOwner: undefined,
      });
      expect(Date.parse(entry!.holdUntil!)).toBeGreaterThan(Date.parse(entry!.createdAt) + HOUR / 2);
      expect(new Date(entry!.nextAttemptAt).toISOString()).toBe(entry!.nextAttemptAt);
    });

    it('keeps the latest write’s traceparent with the entry, for the mirror’s span to link to', async () => {
      const first = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
      const second = '00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01';
      await fixture.store.intend(intentOf('p-1', { traceParent: first }), HOUR);
      expect((await fixture.store.listOutbox())[0]?.traceParent).toBe(first);
      await fixture.store.intend(intentOf('p-1', { traceParent: second }), HOUR);
      // An intent without one (a change feed's) keeps the write's.
      await fixture.store.intend(intentOf('p-1'), HOUR);
      await fixture.store.commit(await fixture.store.intend(intentOf('p-2'), 0));
      const [lease] = await fixture.store.claim('worker-1', 2, HOUR);
      expect(lease?.entry).toMatchObject({ legacyId: 'p-2', traceParent: undefined });
      const entries = await fixture.store.listOutbox();
      expect(entries.find((entry) => entry.legacyId === 'p-1')?.traceParent).toBe(second);
    });

    it('coalesces intents of one record into one entry, bumping seq and taking the newest write', async () => {
      const first = await fixture.store.intend(intentOf('p-1', { base: { v: 1 } }), HOUR);
      const second = await fixture.store.intend(
        intentOf('p-1', { unit: 'south', kind: 'delete', base: null }),
        HOUR,
      );
      expect(second).toMatchObject({ id: first.id, seq: 2 });
      const entries = await fixture.store.listOutbox();
      expect(entries).toHaveLength(1);
      expect(entries[0]).toMatchObject({ seq: 2, unit: 'south', kind: 'delete', base: null });
    });

    it("keeps the pending base when a newer intent carries none: a row-shaped write or a feed's change never erases the fields a FHIR-shaped write added", async () => {
      const { store } = fixture;
      await store.intend(
        intentOf('p-1', { base: { resourceType: 'Patient', telecom: [{ value: 'x' }] } }),
        0,
      );
      await store.intend(intentOf('p-1'), 0);
      await store.intend(intentOf('p-1', { unit: 'south' }), HOUR);
      const [entry] = await store.listOutbox();
      expect(entry).toMatchObject({
        seq: 3,
        unit: 'south',
        base: { resourceType: 'Patient', telecom: [{ value: 'x' }] },
      });
    });

    it('keeps the pending base through a lease requeued by a newer intent without one', async () => {
      const { store } = fixture;
      await store.commit(await store.intend(intentOf('p-1', { base: { v: 1 } }), HOUR));
      const [lease] = await store.claim('worker-1', 1, HOUR);
      await store.commit(await store.intend(intentOf('p-1'), HOUR));
      expect(await store.complete(lease!, undefined)).toBe('requeued');
      const [again] = await store.claim('worker-2', 1, HOUR);
      expect(again?.entry.base).toEqual({ v: 1 });
    });

    it('takes a newer base over the pending one, and a delete drops it', async () => {
      const { store } = fixture;
      await store.intend(intentOf('p-1', { base: { v: 1 } }), 0);
      await store.intend(intentOf('p-1', { base: { v: 2 } }), 0);
      expect((await store.listOutbox())[0]?.base).toEqual({ v: 2 });
      await store.intend(intentOf('p-1', { kind: 'delete' }), 0);
      expect((await store.listOutbox())[0]?.base).toBeUndefined();
    });

    it('records many intents at once, each as intend would: tickets in order, entries due at once', async () => {
      const { store } = fixture;
      const tickets = await store.intendMany(
        [
          intentOf('p-2', {
            base: { v: 2 },
            traceParent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
          }),
          intentOf('p-1', { unit: 'south' }),
          intentOf('p-3', { target: 'legacy', kind: 'delete' }),
        ],
        0,
      );
      expect(tickets.map(({ seq, held, intent }) => [seq, held, intent?.legacyId])).toEqual([
        [1, false, 'p-2'],
        [1, false, 'p-1'],
        [1, false, 'p-3'],
      ]);
      expect(new Set(tickets.map((ticket) => ticket.id)).size).toBe(3);
      const entries = await store.listOutbox();
      const byTicket = (i: number) => entries.find((entry) => entry.id === tickets[i]!.id);
      expect(byTicket(0)).toMatchObject({
        legacyId: 'p-2',
        target: 'medplum',
        unit: 'north',
        base: { v: 2 },
      });
      expect(byTicket(0)?.traceParent).toBe('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
      expect(byTicket(1)).toMatchObject({
        legacyId: 'p-1',
        target: 'medplum',
        unit: 'south',
        kind: 'upsert',
      });
      expect(byTicket(2)).toMatchObject({
        legacyId: 'p-3',
        target: 'legacy',
        kind: 'delete',
        holdUntil: undefined,
      });
      expect(await store.claim('worker-1', 10, HOUR)).toHaveLength(3);
    });

    it('bumps pending entries in intendMany, a record named twice twice, keeping the pending base', async () => {
      const { store } = fixture;
      const pending = await store.intend(intentOf('p-1', { base: { v: 1 } }), 0);
      const tickets = await store.intendMany(
        [intentOf('p-1', { unit: 'south' }), intentOf('p-3'), intentOf('p-1', { unit: 'east' })],
        0,
      );
      expect(tickets.map(({ id, seq }) => [id === pending.id, seq])).toEqual([
        [true, 2],
        [false, 1],
        [true, 3],
      ]);
      const entries = await store.listOutbox();
      expect(entries).toHaveLength(2);
      expect(entries.find((entry) => entry.legacyId === 'p-1')).toMatchObject({
        seq: 3,
        unit: 'east',
        base: { v: 1 },
      });
    });

    it('requeues a lease in flight when intendMany bumps its entry, so the newer state is mirrored', async () => {
      const { store } = fixture;
      await store.commit(await store.intend(intentOf('p-1'), 0));
      const [lease] = await store.claim('worker-1', 1, HOUR);
      await store.intendMany([intentOf('p-1'), intentOf('p-2')], 0);
      expect(await store.complete(lease!, undefined)).toBe('requeued');
      const again = await store.claim('worker-2', 10, HOUR);
      expect(again.map((l) => l.entry.legacyId).sort()).toEqual(['p-1', 'p-2']);
      expect(again.find((l) => l.entry.legacyId === 'p-1')!.entry.seq).toBeGreaterThan(lease!.entry.seq);
    });

    it('holds the entries of intendMany until each ticket is committed', async () => {
      const { store } = fixture;
      const tickets = await store.intendMany([intentOf('p-1'), intentOf('p-2')], HOUR);
      expect(tickets.every((ticket) => ticket.held === true)).toBe(true);
      expect(await store.claim('worker-1', 10, HOUR)).toEqual([]);
      await store.commit(tickets[1]!);
      expect((await store.claim('worker-1', 10, HOUR)).map((l) => l.entry.legacyId)).toEqual(['p-2']);
    });

    it('records nothing for an empty intendMany', async () => {
      expect(await fixture.store.intendMany([], 0)).toEqual([]);
      expect(await fixture.store.listOutbox()).toEqual([]);
    });

    it('keeps one entry per target: the same record towards the other side is another entry', async () => {
      const medplum = await fixture.store.intend(intentOf('p-1'), HOUR);
      const legacy = await fixture.store.intend(intentOf('p-1', { target: 'legacy' }), HOUR);
      expect(legacy.id).not.toBe(medplum.id);
      expect(legacy.seq).toBe(1);
      expect(await fixture.store.listOutbox()).toHaveLength(2);
    });

    it('does not let a held entry be claimed until it is committed', async () => {
      const ticket = await fixture.store.intend(intentOf('p-1'), HOUR);
      expect(await fixture.store.claim('worker-1', 10, HOUR)).toEqual([]);
      await fixture.store.commit(ticket);
      expect(await fixture.store.claim('worker-1', 10, HOUR)).toHaveLength(1);
    });

    it('lets a hold expire on its own, so an intent whose writer crashed is still mirrored', async () => {
      // Two holds: one that has surely run out once we look (1 ms, then a wait: however slow the
      // machine, time only moves on), one that cannot have (an hour).
      await fixture.store.intend(intentOf('p-1'), HOUR);
      await fixture.store.intend(intentOf('p-2'), 1);
      expect((await fixture.store.listOutbox()).every((entry) => entry.holdUntil !== undefined)).toBe(true);
      await sleep(20);
      expect(await fixture.store.claim('worker-1', 10, HOUR)).toMatchObject([{ entry: { legacyId: 'p-2' } }]);
    });

    it('does not release a newer hold when an outdated ticket is committed', async () => {
      const outdated = await fixture.store.intend(intentOf('p-1'), HOUR);
      await fixture.store.intend(intentOf('p-1'), HOUR);
      expect(await fixture.store.commit(outdated, { owner: 'writer-1', leaseMs: HOUR })).toBeUndefined();
      expect((await fixture.store.listOutbox())[0]?.holdUntil).toBeDefined();
      expect(await fixture.store.claim('worker-1', 10, HOUR)).toEqual([]);
    });

    it('keeps an entry held by two writers until both committed, in either order', async () => {
      const first = await fixture.store.intend(intentOf('p-1'), HOUR);
      const second = await fixture.store.intend(intentOf('p-1'), HOUR);
      expect(await fixture.store.commit(second, { owner: 'writer-2', leaseMs: HOUR })).toBeUndefined();
      expect(await fixture.store.claim('worker-1', 10, HOUR)).toEqual([]);
      const lease = await fixture.store.commit(first, { owner: 'writer-1', leaseMs: HOUR });
      expect(lease).toMatchObject({ owner: 'writer-1' });
      expect(await fixture.store.complete(lease!, undefined)).toBe('done');
    });

    it('never lets an intent without a hold (a change feed’s) release a writer’s hold', async () => {
      const writer = await fixture.store.intend(intentOf('p-1'), HOUR);
      const feed = await fixture.store.intend(intentOf('p-1'), 0);
      await fixture.store.commit(feed);
      expect(await fixture.store.claim('worker-1', 10, HOUR)).toEqual([]);
      await fixture.store.commit(writer);
      expect(await fixture.store.claim('worker-1', 10, HOUR)).toHaveLength(1);
    });

    it('moves seq on at commit, so a mirror in flight for the record is requeued', async () => {
      const lease = await leased('p-1');
      const ticket = await fixture.store.intend(intentOf('p-1'), HOUR);
      await fixture.store.commit(ticket);
      expect(await fixture.store.complete(lease, undefined)).toBe('requeued');
    });

    it('queues the record again when a commit finds its entry already completed (the hold had expired)', async () => {
      const ticket = await fixture.store.intend(intentOf('p-1'), 1);
      await sleep(20);
      const [lease] = await fixture.store.claim('worker-1', 10, HOUR);
      expect(await fixture.store.complete(lease!, undefined)).toBe('done');
      expect(await fixture.store.commit(ticket)).toBeUndefined();
      expect(await fixture.store.claim('worker-1', 10, HOUR)).toMatchObject([{ entry: { legacyId: 'p-1' } }]);
    });

    it('leases the entry to the committing writer when asked, so no other worker claims it', async () => {
      const ticket = await fixture.store.intend(intentOf('p-1'), HOUR);
      const lease = await fixture.store.commit(ticket, { owner: 'writer-1', leaseMs: HOUR });
      expect(lease).toMatchObject({
        owner: 'writer-1',
        // The commit moved seq on: a mirror already in flight for the record re-reads.
        entry: { id: ticket.id, seq: 2, leaseOwner: 'writer-1' },
      });
      expect(lease?.entry.holdUntil).toBeUndefined();
      expect(await fixture.store.claim('worker-2', 10, HOUR)).toEqual([]);
      expect(await fixture.store.complete(lease!, undefined)).toBe('done');
    });

    it("hands the committing writer's lease its record's link (base snapshot included), or null", async () => {
      const { store } = fixture;
      const link = linkOf('p-1', 'm-1', { base: { resourceType: 'Patient', gender: 'female' } });
      await store.saveLink(link);
      const linked = await store.commit(await store.intend(intentOf('p-1'), HOUR), {
        owner: 'writer-1',
        leaseMs: HOUR,
      });
      const unlinked = await store.commit(await store.intend(intentOf('p-2'), HOUR), {
        owner: 'writer-1',
        leaseMs: HOUR,
      });
      expect(linked?.link).toEqual(link);
      expect(unlinked?.link).toBeNull();
    });

    it('grants no lease on commit while another worker holds the entry', async () => {
      const lease = await leased('p-1');
      const ticket = await fixture.store.intend(intentOf('p-1'), HOUR);
      expect(await fixture.store.commit(ticket, { owner: 'writer-1', leaseMs: HOUR })).toBeUndefined();
      expect((await fixture.store.listOutbox())[0]).toMatchObject({
        leaseOwner: 'worker-1',
        holdUntil: undefined,
      });
      expect(await fixture.store.complete(lease, undefined)).toBe('requeued');
    });
  });

  describe('withdrawn intents (the authority write did not happen)', () => {
    it('removes the entry the intent created, so nothing is owed', async () => {
      const ticket = await fixture.store.intend(intentOf('p-1'), HOUR);
      await fixture.store.withdraw(ticket);
      expect(await fixture.store.listOutbox()).toEqual([]);
      expect(await fixture.store.outboxCounts()).toMatchObject({ pending: 0, leased: 0 });
    });

    it('keeps an entry an older write still owes, releasing only the hold, without moving seq', async () => {
      await queue('p-1');
      const ticket = await fixture.store.intend(intentOf('p-1'), HOUR);
      await fixture.store.withdraw(ticket);
      const [entry] = await fixture.store.listOutbox();
      expect(entry).toMatchObject({ seq: ticket.seq, holdUntil: undefined });
      expect(await fixture.store.claim('worker-1', 1, HOUR)).toHaveLength(1);
    });

    it('keeps the entry when a newer intent came meanwhile, and its hold', async () => {
      const withdrawn = await fixture.store.intend(intentOf('p-1'), HOUR);
      const newer = await fixture.store.intend(intentOf('p-1'), HOUR);
      await fixture.store.withdraw(withdrawn);
      expect(await fixture.store.claim('worker-1', 1, HOUR)).toHaveLength(0);
      await fixture.store.commit(newer);
      expect(await fixture.store.claim('worker-1', 1, HOUR)).toHaveLength(1);
    });
  });

  describe('claims', () => {
    it('leases due entries oldest first, up to the limit', async () => {
      // Twelve, so an order by ids as text ('10' < '2') would show.
      const ids = Array.from({ length: 12 }, (_, i) => `p-${i + 1}`);
      for (const id of ids) await queue(id);
      const leases = await fixture.store.claim('worker-1', 11, HOUR);
      expect(leases.map((lease) => lease.entry.legacyId)).toEqual(ids.slice(0, 11));
      expect(leases[0]).toMatchObject({ owner: 'worker-1', entry: { leaseOwner: 'worker-1' } });
      expect(new Set(leases.map((lease) => lease.token)).size).toBe(11);
      expect((await fixture.store.claim('worker-2', 10, HOUR)).map((lease) => lease.entry.legacyId)).toEqual([
        'p-12',
      ]);
    });

    it('never leases an entry that is leased', async () => {
      await queue('p-1');
      expect(await fixture.store.claim('worker-1', 10, HOUR)).toHaveLength(1);
      expect(await fixture.store.claim('worker-2', 10, HOUR)).toEqual([]);
    });

    it("hands each claimed lease its record's link (base snapshot included), or null when it has none", async () => {
      const base = { resourceType: 'Patient' as const, gender: 'female' as const };
      await fixture.store.saveLink(linkOf('p-1', 'm-1', { base }));
      await queue('p-1');
      await queue('p-2');
      const leases = await fixture.store.claim('worker-1', 10, HOUR);
      expect(leases.map((lease) => [lease.entry.legacyId, lease.link])).toEqual([
        ['p-1', linkOf('p-1', 'm-1', { base })],
        ['p-2', null],
      ]);
    });

    it("never leases a record's two directions at once, in one claim or across claims", async () => {
      await fixture.store.commit(await fixture.store.intend(intentOf('p-1'), HOUR));
      await fixture.store.commit(await fixture.store.intend(intentOf('p-1', { target: 'legacy' }), HOUR));
      await queue('p-2');
      const first = await fixture.store.claim('worker-1', 10, HOUR);
      expect(first.map((lease) => lease.entry.legacyId).sort()).toEqual(['p-1', 'p-2']);
      expect(await fixture.store.claim('worker-2', 10, HOUR)).toEqual([]);
      const ticket = await fixture.store.intend(
        intentOf('p-1', { target: first[0]!.entry.target === 'medplum' ? 'legacy' : 'medplum' }),
        HOUR,
      );
      expect(await fixture.store.commit(ticket, { owner: 'writer-1', leaseMs: HOUR })).toBeUndefined();
      for (const lease of first) await fixture.store.complete(lease, undefined);
      const [second] = await fixture.store.claim('worker-2', 10, HOUR);
      expect(second?.entry).toMatchObject({ legacyId: 'p-1' });
      expect(second?.entry.target).not.toBe(
        first.find((lease) => lease.entry.legacyId === 'p-1')?.entry.target,
      );
    });

    it('re-leases an entry whose lease expired, with a new token', async () => {
      const first = await leased('p-1', 1);
      await sleep(20);
      const [second] = await fixture.store.claim('worker-2', 10, HOUR);
      expect(second).toMatchObject({ owner: 'worker-2', entry: { id: first.entry.id } });
      expect(second?.token).not.toBe(first.token);
    });

    it('fences the expired lease after a re-claim: complete, retryLater and deadLetter change nothing', async () => {
      const first = await leased('p-1', 1);
      await sleep(20);
      const [second] = await fixture.store.claim('worker-2', 10, HOUR);
      expect(await fixture.store.complete(first, linkOf('p-1', 'm-1'))).toBe('fenced');
      expect(await fixture.store.retryLater(first, UNAVAILABLE, 0)).toBe('fenced');
      expect(await fixture.store.deadLetter(first, REJECTED)).toBe('fenced');
      expect(await fixture.store.getLink('Patient', 'p-1')).toBeUndefined();
      expect(await fixture.store.listDeadLetters()).toEqual([]);
      expect((await fixture.store.listOutbox())[0]).toMatchObject({ attempts: 0, leaseOwner: 'worker-2' });
      expect(await fixture.store.complete(second!, undefined)).toBe('done');
    });

    it('lets a lease that expired without being re-claimed still complete (the token alone fences)', async () => {
      const lease = await leased('p-1', 1);
      await sleep(20);
      expect(await fixture.store.complete(lease, undefined)).toBe('done');
      expect(await fixture.store.listOutbox()).toEqual([]);
    });
  });

  describe('completion', () => {
    it('saves the link (base snapshot included) and removes the entry together', async () => {
      const lease = await leased('p-1');
      const link = linkOf('p-1', 'm-1', { base: { resourceType: 'Patient', gender: 'male' } });
      expect(await fixture.store.complete(lease, link)).toBe('done');
      expect(await fixture.store.getLink('Patient', 'p-1')).toEqual(link);
      expect(await fixture.store.listOutbox()).toEqual([]);
    });

    it('deletes the link when completed with null', async () => {
      await fixture.store.saveLink(linkOf('p-1', 'm-1'));
      const lease = await leased('p-1');
      expect(await fixture.store.complete(lease, null)).toBe('done');
      expect(await fixture.store.getLink('Patient', 'p-1')).toBeUndefined();
      expect(await fixture.store.listOutbox()).toEqual([]);
    });

    it('leaves links alone when completed with undefined', async () => {
      await fixture.store.saveLink(linkOf('p-1', 'm-1'));
      expect(await fixture.store.complete(await leased('p-1'), undefined)).toBe('done');
      expect(await fixture.store.getLink('Patient', 'p-1')).toEqual(linkOf('p-1', 'm-1'));
    });

    it('throws LinkConflictError on a link conflict and changes nothing: the entry stays leased', async () => {
      await fixture.store.saveLink(linkOf('p-2', 'm-1'));
      const lease = await leased('p-1');
      await expect(fixture.store.complete(lease, linkOf('p-1', 'm-1'))).rejects.toBeInstanceOf(
        LinkConflictError,
      );
      expect(await fixture.store.getLink('Patient', 'p-1')).toBeUndefined();
      expect((await fixture.store.getLinkByMedplumId('Patient', 'm-1'))?.legacyId).toBe('p-2');
      expect((await fixture.store.listOutbox())[0]).toMatchObject({
        id: lease.entry.id,
        leaseOwner: 'worker-1',
      });
      expect(await fixture.store.claim('worker-2', 10, HOUR)).toEqual([]);
    });

    it('finishes leases completed at once each as it would alone (a PostgreSQL store batches them)', async () => {
      const { store } = fixture;
      for (const id of ['p-2', 'p-3']) await store.saveLink(linkOf(id, `m-${id}`));
      await store.saveLink(linkOf('p-9', 'm-5'));
      const leases = new Map<string, Lease>();
      for (const id of ['p-0', 'p-1', 'p-2', 'p-3', 'p-4', 'p-5', 'p-6']) leases.set(id, await leased(id));
      await store.commit(await store.intend(intentOf('p-4'), HOUR));
      const lease = (id: string): Lease => leases.get(id)!;
      // All asked for in one tick: the first goes alone, the other six wait and go together.
      const outcomes = await Promise.allSettled([
        store.complete(lease('p-0'), undefined),
        store.complete(lease('p-1'), linkOf('p-1', 'm-1')),
        store.complete(lease('p-2'), null),
        store.complete(lease('p-3'), undefined),
        store.complete(lease('p-4'), linkOf('p-4', 'm-4')),
        store.complete(lease('p-5'), linkOf('p-5', 'm-5')),
        store.complete({ ...lease('p-6'), token: 'not-the-token' }, linkOf('p-6', 'm-6')),
      ]);
      expect(outcomes.map((o) => (o.status === 'fulfilled' ? o.value : (o.reason as Error).name))).toEqual([
        'done',
        'done',
        'done',
        'done',
        'requeued',
        'LinkConflictError',
        'fenced',
      ]);
      expect(await store.getLink('Patient', 'p-1')).toEqual(linkOf('p-1', 'm-1'));
      expect(await store.getLink('Patient', 'p-2')).toBeUndefined();
      expect(await store.getLink('Patient', 'p-3')).toEqual(linkOf('p-3', 'm-p-3'));
      // A requeued mirror's link is saved (its writes happened); a conflicting or fenced one's is not.
      expect(await store.getLink('Patient', 'p-4')).toEqual(linkOf('p-4', 'm-4'));
      for (const id of ['p-5', 'p-6']) expect(await store.getLink('Patient', id)).toBeUndefined();
      const left = await store.listOutbox();
      expect(left.map((entry) => entry.legacyId).sort()).toEqual(['p-4', 'p-5', 'p-6']);
      expect(left.find((entry) => entry.legacyId === 'p-4')?.leaseOwner).toBeUndefined();
      expect(left.find((entry) => entry.legacyId === 'p-5')?.leaseOwner).toBe('worker-1');
      expect(left.find((entry) => entry.legacyId === 'p-6')?.leaseOwner).toBe('worker-1');
    });

    it('finishes leases completed at once even when two of them claim one Medplum id', async () => {
      const { store } = fixture;
      const leases = [await leased('p-0'), await leased('p-1'), await leased('p-2'), await leased('p-3')];
      const outcomes = await Promise.allSettled([
        store.complete(leases[0]!, linkOf('p-0', 'm-0')),
        store.complete(leases[1]!, linkOf('p-1', 'm-same')),
        store.complete(leases[2]!, linkOf('p-2', 'm-same')),
        store.complete(leases[3]!, linkOf('p-3', 'm-3')),
      ]);
      const names = outcomes.map((o) => (o.status === 'fulfilled' ? o.value : (o.reason as Error).name));
      expect([names[0], names[3]]).toEqual(['done', 'done']);
      expect([names[1], names[2]].sort()).toEqual(['LinkConflictError', 'done']);
      expect((await store.getLinkByMedplumId('Patient', 'm-same'))?.legacyId).toBe(
        names[1] === 'done' ? 'p-1' : 'p-2',
      );
      expect(await store.getLink('Patient', 'p-3')).toEqual(linkOf('p-3', 'm-3'));
      expect(await store.listOutbox()).toHaveLength(1);
    });

    it('requeues an entry written again during its lease, claimable with the new seq, its link saved', async () => {
      const lease = await leased('p-1');
      await fixture.store.commit(await fixture.store.intend(intentOf('p-1', { base: { v: 2 } }), HOUR));
      expect(await fixture.store.complete(lease, linkOf('p-1', 'm-1'))).toBe('requeued');
      // The mirror's writes happened: the next attempt compares the target with what it wrote.
      expect(await fixture.store.getLink('Patient', 'p-1')).toEqual(linkOf('p-1', 'm-1'));
      const [again] = await fixture.store.claim('worker-2', 10, HOUR);
      expect(again?.entry).toMatchObject({ id: lease.entry.id, base: { v: 2 } });
      expect(again?.entry.seq).toBeGreaterThan(lease.entry.seq);
    });
  });

  describe('retries', () => {
    it('records the attempt and the error and releases the lease', async () => {
      const lease = await leased('p-1');
      expect(await fixture.store.retryLater(lease, UNAVAILABLE, 0)).toBe('done');
      const [entry] = await fixture.store.listOutbox();
      expect(entry).toMatchObject({
        attempts: 1,
        lastError: UNAVAILABLE,
        leaseOwner: undefined,
        leaseExpiresAt: undefined,
      });
      expect(await fixture.store.claim('worker-2', 10, HOUR)).toHaveLength(1);
    });

    it('makes the entry due again only after delayMs', async () => {
      // One delay that has surely passed once we look (1 ms, then a wait), one that cannot have.
      await fixture.store.retryLater(await leased('p-1'), UNAVAILABLE, HOUR);
      await fixture.store.retryLater(await leased('p-2'), UNAVAILABLE, 1);
      await sleep(20);
      expect(await fixture.store.claim('worker-1', 10, HOUR)).toMatchObject([{ entry: { legacyId: 'p-2' } }]);
    });

    it('answers requeued when a newer write arrived, still recording the attempt', async () => {
      const lease = await leased('p-1');
      await fixture.store.intend(intentOf('p-1'), 0);
      expect(await fixture.store.retryLater(lease, UNAVAILABLE, 0)).toBe('requeued');
      expect((await fixture.store.listOutbox())[0]).toMatchObject({
        seq: lease.entry.seq + 1,
        attempts: 1,
        leaseOwner: undefined,
      });
    });
  });

  describe('dead letters', () => {
    it('answers done again to the lease that moved the entry (a repeat after a lost answer), adding no letter', async () => {
      const lease = await leased('p-1');
      expect(await fixture.store.deadLetter(lease, REJECTED)).toBe('done');
      expect(await fixture.store.deadLetter(lease, REJECTED)).toBe('done');
      expect(await fixture.store.listDeadLetters()).toMatchObject([{ legacyId: 'p-1', attempts: 1 }]);
      // Only a dead letter is recognised: the lease is still fenced for anything else.
      expect(await fixture.store.retryLater(lease, UNAVAILABLE, 0)).toBe('fenced');
      expect(await fixture.store.complete(lease, linkOf('p-1', 'm-1'))).toBe('fenced');
      expect(await fixture.store.getLink('Patient', 'p-1')).toBeUndefined();
      // A newer write of the record queued and leased since: the repeat leaves its entry alone.
      const next = await leased('p-1');
      expect(await fixture.store.deadLetter(lease, REJECTED)).toBe('done');
      expect(await fixture.store.listOutbox()).toMatchObject([{ legacyId: 'p-1', leaseOwner: 'worker-1' }]);
      expect(await fixture.store.listDeadLetters()).toHaveLength(1);
      expect(await fixture.store.complete(next, undefined)).toBe('done');
    });

    it('moves a leased entry to the dead-letter queue with its attempts and reason', async () => {
      const first = await leased('p-1');
      await fixture.store.retryLater(first, UNAVAILABLE, 0);
      const [second] = await fixture.store.claim('worker-1', 1, HOUR);
      expect(await fixture.store.deadLetter(second!, REJECTED)).toBe('done');
      expect(await fixture.store.listOutbox()).toEqual([]);
      const [letter] = await fixture.store.listDeadLetters();
      expect(letter).toMatchObject({
        resourceType: 'Patient',
        legacyId: 'p-1',
        target: 'medplum',
        unit: 'north',
      });
      expect(letter).toMatchObject({
        kind: 'upsert',
        attempts: 2,
        reason: REJECTED,
        status: 'open',
        note: undefined,
      });
      expect(letter?.resolvedAt).toBeUndefined();
      expect(new Date(letter!.failedAt).toISOString()).toBe(letter!.failedAt);
    });

    it('keeps one open letter per record and failure: a repeat of the same failure counts on it', async () => {
      await fixture.store.deadLetter(await leased('p-1'), REJECTED);
      const [first] = await fixture.store.listDeadLetters();
      expect(first?.repeats ?? 0).toBe(0);
      // The record queued again (a feed re-reading its overlap) and refused again, the same way.
      const again = await leased('p-1');
      expect(await fixture.store.deadLetter(again, REJECTED, { keepBase: false })).toBe('done');
      // A repeat after a lost answer is recognised as the lease's own, and counts once.
      expect(await fixture.store.deadLetter(again, REJECTED)).toBe('done');
      const letters = await fixture.store.listDeadLetters();
      expect(letters).toHaveLength(1);
      expect(letters[0]).toMatchObject({ id: first?.id, status: 'open', attempts: 1, repeats: 1 });
      expect(letters[0]?.failedAt).toBe(first?.failedAt);
      expect(Date.parse(letters[0]?.lastFailedAt ?? '')).toBeGreaterThanOrEqual(Date.parse(first!.failedAt));
      expect((await fixture.store.outboxCounts({ unit: 'north' })).dead).toBe(1);
      expect(await fixture.store.listOutbox()).toEqual([]);
      // Another failure of the record is a letter of its own; so is the same one once it is closed.
      await fixture.store.deadLetter(await leased('p-1'), {
        ...REJECTED,
        message: 'Medplum answered 422',
        status: 422,
      });
      expect(await fixture.store.listDeadLetters()).toHaveLength(2);
      await fixture.store.discardDeadLetter(first!.id, 'fixed by hand');
      await fixture.store.deadLetter(await leased('p-1'), REJECTED);
      const open = await fixture.store.listDeadLetters();
      expect(open).toHaveLength(2);
      expect(open.map((letter) => letter.id)).not.toContain(first?.id);
    });

    it('does not dead-letter an entry written again during its lease: it is requeued', async () => {
      const lease = await leased('p-1');
      await fixture.store.intend(intentOf('p-1'), 0);
      expect(await fixture.store.deadLetter(lease, REJECTED)).toBe('requeued');
      expect(await fixture.store.listDeadLetters()).toEqual([]);
      expect(await fixture.store.listOutbox()).toHaveLength(1);
    });

    it('re-queues a retried letter as a claimable entry exactly once', async () => {
      await fixture.store.deadLetter(await leased('p-1'), REJECTED);
      const [letter] = await fixture.store.listDeadLetters();
      const ticket = await fixture.store.retryDeadLetter(letter!.id);
      expect(ticket?.seq).toBe(1);
      expect(await fixture.store.retryDeadLetter(letter!.id)).toBeUndefined();
      const [lease] = await fixture.store.claim('worker-1', 10, HOUR);
      expect(lease?.entry).toMatchObject({ id: ticket?.id, legacyId: 'p-1', attempts: 0 });
      expect((await fixture.store.listDeadLetters({ status: 'retried' }))[0]?.resolvedAt).toBeDefined();
    });

    it('keeps a discarded letter with its status and note, and discards it only once', async () => {
      await fixture.store.deadLetter(await leased('p-1'), REJECTED);
      const [letter] = await fixture.store.listDeadLetters();
      expect(await fixture.store.discardDeadLetter(letter!.id, 'deleted in both systems')).toBe(true);
      expect(await fixture.store.discardDeadLetter(letter!.id, 'again')).toBe(false);
      expect(await fixture.store.retryDeadLetter(letter!.id)).toBeUndefined();
      const [kept] = await fixture.store.listDeadLetters({ status: 'all' });
      expect(kept).toMatchObject({ id: letter!.id, status: 'discarded', note: 'deleted in both systems' });
      expect(kept?.resolvedAt).toBeDefined();
    });

    it('keeps a resolved letter as resolved, with its note and resolution, and resolves it only once', async () => {
      await fixture.store.deadLetter(await leased('p-1'), REJECTED);
      await fixture.store.deadLetter(await leased('p-2'), REJECTED);
      const [first, second] = await fixture.store.listDeadLetters();
      expect(await fixture.store.resolveDeadLetter(first!.id, 'legacy confirmed', 'legacy')).toBe(true);
      expect(await fixture.store.resolveDeadLetter(first!.id, 'again', 'medplum')).toBe(false);
      expect(await fixture.store.discardDeadLetter(first!.id, 'again')).toBe(false);
      expect(await fixture.store.resolveDeadLetter(second!.id, 'merged by hand', 'merged')).toBe(true);
      expect(await fixture.store.resolveDeadLetter('999999', 'note', 'legacy')).toBe(false);
      expect(await fixture.store.resolveDeadLetter('not-an-id', 'note', 'legacy')).toBe(false);
      expect(await fixture.store.listDeadLetters({ status: 'resolved' })).toMatchObject([
        { id: first!.id, status: 'resolved', resolution: 'legacy', note: 'legacy confirmed' },
        { id: second!.id, status: 'resolved', resolution: 'merged', note: 'merged by hand' },
      ]);
      expect((await fixture.store.getDeadLetter(first!.id))?.resolvedAt).toBeDefined();
      expect(await fixture.store.listDeadLetters({ status: 'discarded' })).toEqual([]);
      // Other closings carry no resolution.
      await fixture.store.deadLetter(await leased('p-3'), REJECTED);
      const [third] = await fixture.store.listDeadLetters();
      await fixture.store.discardDeadLetter(third!.id, 'noise');
      expect((await fixture.store.getDeadLetter(third!.id))?.resolution).toBeUndefined();
    });

    it('reads one letter by id whatever its status, and undefined for an unknown id', async () => {
      await fixture.store.deadLetter(await leased('p-1'), REJECTED);
      const [letter] = await fixture.store.listDeadLetters();
      expect(await fixture.store.getDeadLetter(letter!.id)).toEqual(letter);
      await fixture.store.discardDeadLetter(letter!.id, 'done by hand');
      expect(await fixture.store.getDeadLetter(letter!.id)).toMatchObject({ status: 'discarded' });
      expect(await fixture.store.getDeadLetter('999999')).toBeUndefined();
      expect(await fixture.store.getDeadLetter('not-an-id')).toBeUndefined();
    });

    it('answers undefined and false for letters that do not exist', async () => {
      expect(await fixture.store.retryDeadLetter('999999')).toBeUndefined();
      expect(await fixture.store.discardDeadLetter('999999', 'note')).toBe(false);
      expect(await fixture.store.retryDeadLetter('not-an-id')).toBeUndefined();
    });

    it('lists open letters by default, oldest first, filtered by status and limited', async () => {
      for (const id of ['p-1', 'p-2', 'p-3']) await fixture.store.deadLetter(await leased(id), REJECTED);
      const open = await fixture.store.listDeadLetters();
      expect(open.map((letter) => letter.legacyId)).toEqual(['p-1', 'p-2', 'p-3']);
      await fixture.store.discardDeadLetter(open[1]!.id, 'noise');
      expect((await fixture.store.listDeadLetters()).map((letter) => letter.legacyId)).toEqual([
        'p-1',
        'p-3',
      ]);
      expect((await fixture.store.listDeadLetters({ status: 'discarded' })).map((l) => l.legacyId)).toEqual([
        'p-2',
      ]);
      expect(await fixture.store.listDeadLetters({ status: 'all' })).toHaveLength(3);
      expect((await fixture.store.listDeadLetters({ limit: 1 })).map((letter) => letter.legacyId)).toEqual([
        'p-1',
      ]);
    });
  });

  describe('dead letter filters', () => {
    /** Dead-letters one record of the given intent with the given reason. */
    async function letter(
      legacyId: string,
      reason: OutboxError,
      intent: Partial<Parameters<typeof intentOf>[1]> = {},
    ) {
      await fixture.store.commit(await fixture.store.intend(intentOf(legacyId, intent), HOUR));
      const [lease] = await fixture.store.claim('worker-1', 1, HOUR);
      await fixture.store.deadLetter(lease!, reason);
    }

    it('lists only the letters every filter given matches: unit, resource type, target, reason', async () => {
      await letter('p-1', REJECTED);
      await letter('p-2', UNAVAILABLE, { unit: 'south' });
      await letter('o-1', REJECTED, { resourceType: 'Observation', unit: 'south' });
      await letter('p-3', REJECTED, { target: 'legacy' });
      const ids = async (filter: Parameters<SyncStore['listDeadLetters']>[0]) =>
        (await fixture.store.listDeadLetters(filter)).map((l) => l.legacyId);
      expect(await ids({ unit: 'south' })).toEqual(['p-2', 'o-1']);
      expect(await ids({ resourceType: 'Observation' })).toEqual(['o-1']);
      expect(await ids({ target: 'legacy' })).toEqual(['p-3']);
      expect(await ids({ reason: 'RejectedError' })).toEqual(['p-1', 'o-1', 'p-3']);
      expect(await ids({ reason: 'RejectedError', unit: 'south', limit: 5 })).toEqual(['o-1']);
      expect(await ids({ reason: 'RejectedError', limit: 2 })).toEqual(['p-1', 'o-1']);
      expect(await ids({ unit: 'east' })).toEqual([]);
      const [first] = await fixture.store.listDeadLetters({
        unit: 'north',
        resourceType: 'Patient',
        target: 'medplum',
      });
      await fixture.store.discardDeadLetter(first!.id, 'checked by hand');
      expect(await ids({ unit: 'north', target: 'medplum' })).toEqual([]);
      expect(await ids({ unit: 'north', target: 'medplum', status: 'discarded' })).toEqual(['p-1']);
    });
  });

  describe('listing and counts', () => {
    it('says whether a record has an entry, held, due or leased, until it completes', async () => {
      expect(await fixture.store.hasPending('Patient', 'p-1')).toBe(false);
      const ticket = await fixture.store.intend(intentOf('p-1'), HOUR);
      expect(await fixture.store.hasPending('Patient', 'p-1')).toBe(true);
      await fixture.store.commit(ticket);
      const [lease] = await fixture.store.claim('worker-1', 1, HOUR);
      expect(await fixture.store.hasPending('Patient', 'p-1')).toBe(true);
      expect(await fixture.store.hasPending('Patient', 'p-2')).toBe(false);
      await fixture.store.complete(lease!, undefined);
      expect(await fixture.store.hasPending('Patient', 'p-1')).toBe(false);
    });

    it('lists entries oldest first, limited', async () => {
      const ids = Array.from({ length: 12 }, (_, i) => `p-${i + 1}`);
      for (const id of ids) await fixture.store.intend(intentOf(id), HOUR);
      expect((await fixture.store.listOutbox()).map((entry) => entry.legacyId)).toEqual(ids);
      expect((await fixture.store.listOutbox({ limit: 2 })).map((entry) => entry.legacyId)).toEqual([
        'p-1',
        'p-2',
      ]);
    });

    it('counts pending (held and backing off included), leased, and open dead letters', async () => {
      expect(await fixture.store.outboxCounts()).toEqual({ pending: 0, leased: 0, dead: 0 });
      await fixture.store.deadLetter(await leased('p-1'), REJECTED);
      await fixture.store.retryLater(await leased('p-2'), UNAVAILABLE, HOUR);
      await leased('p-3');
      await fixture.store.intend(intentOf('p-4'), HOUR);
      expect(await fixture.store.outboxCounts()).toEqual({ pending: 2, leased: 1, dead: 1 });
    });

    it('counts one unit’s entries and open dead letters', async () => {
      await fixture.store.deadLetter(await leased('p-1'), REJECTED);
      await fixture.store.intend(intentOf('p-2', { unit: 'south' }), HOUR);
      await fixture.store.intend(intentOf('p-3', { unit: 'south' }), HOUR);
      expect(await fixture.store.outboxCounts({ unit: 'south' })).toEqual({ pending: 2, leased: 0, dead: 0 });
      expect(await fixture.store.outboxCounts({ unit: 'north' })).toEqual({ pending: 0, leased: 0, dead: 1 });
      expect(await fixture.store.outboxCounts({ unit: 'east' })).toEqual({ pending: 0, leased: 0, dead: 0 });
    });

    it('counts the backlog per unit, resource type and target, with the oldest entry of each line', async () => {
      expect(await fixture.store.outboxBacklog()).toEqual([]);
      await fixture.store.deadLetter(await leased('p-1'), REJECTED);
      await leased('p-2');
      await fixture.store.intend(intentOf('p-3'), HOUR);
      await fixture.store.intend(intentOf('o-1', { resourceType: 'Observation' }), HOUR);
      await fixture.store.intend(intentOf('p-4', { unit: 'south', target: 'legacy' }), HOUR);
      await fixture.store.intend(intentOf('p-5', { unit: 'south', target: 'legacy' }), HOUR);
      const entries = await fixture.store.listOutbox();
      const createdAt = (legacyId: string) => entries.find((entry) => entry.legacyId === legacyId)?.createdAt;
      expect(await fixture.store.outboxBacklog()).toEqual([
        {
          unit: 'north',
          resourceType: 'Observation',
          target: 'medplum',
          pending: 1,
          waiting: 0,
          leased: 0,
          dead: 0,
          oldestAt: createdAt('o-1'),
        },
        {
          unit: 'north',
          resourceType: 'Patient',
          target: 'medplum',
          pending: 1,
          waiting: 0,
          leased: 1,
          dead: 1,
          oldestAt: createdAt('p-2'),
        },
        {
          unit: 'south',
          resourceType: 'Patient',
          target: 'legacy',
          pending: 2,
          waiting: 0,
          leased: 0,
          dead: 0,
          oldestAt: createdAt('p-4'),
        },
      ]);
    });

    it('shows a line with only dead letters, with no oldest entry', async () => {
      await fixture.store.deadLetter(await leased('p-1'), REJECTED);
      expect(await fixture.store.outboxBacklog()).toEqual([
        {
          unit: 'north',
          resourceType: 'Patient',
          target: 'medplum',
          pending: 0,
          waiting: 0,
          leased: 0,
          dead: 1,
          oldestAt: undefined,
        },
      ]);
    });
  });
}

import { describe, expect, it } from 'vitest';
import type { NewDeadLetter } from '../../src/journal/sync-store.ts';
import type { SyncStore } from '../../src/journal/sync-store.ts';
import { intentOf } from './sync-store.fixture.ts';

/** A delete of Patient `legacyId` held for review, towards the legacy copy kept. */
function heldDelete(legacyId: string, overrides: Partial<NewDeadLetter> = {}): NewDeadLetter {
  return {
    resourceType: 'Patient',
    legacyId,
    target: 'legacy',
    unit: 'north',
    kind: 'delete',
    reason: {
      name: 'DeleteReviewError',
      message: `Patient/${legacyId} was deleted in medplum`,
      side: 'medplum',
    },
    ...overrides,
  };
}

/**
 * Dead letters opened without a claimed entry (a decision only an operator can make): listed and
 * counted like any letter, one per record and reason while open, retried and discarded alike.
 *
 * @param fixture - Gives the store under test.
 */
export function describeOpenedLettersContract(fixture: { readonly store: SyncStore }): void {
  describe('dead letters opened without an entry', () => {
    it('opens a letter that is listed, counted for its unit and found by record', async () => {
      const letter = await fixture.store.openDeadLetter(heldDelete('p-1'));
      expect(letter).toMatchObject({
        resourceType: 'Patient',
        legacyId: 'p-1',
        target: 'legacy',
        unit: 'north',
        kind: 'delete',
        attempts: 0,
        status: 'open',
        reason: { name: 'DeleteReviewError', side: 'medplum' },
      });
      expect(await fixture.store.listDeadLetters()).toEqual([letter]);
      expect(await fixture.store.findDeadLetter('Patient', 'p-1')).toEqual(letter);
      expect((await fixture.store.outboxCounts({ unit: 'north' })).dead).toBe(1);
      expect((await fixture.store.outboxCounts({ unit: 'south' })).dead).toBe(0);
      expect(await fixture.store.listOutbox()).toEqual([]);
    });

    it('opens one letter per record, target, kind and reason while it is open', async () => {
      const first = await fixture.store.openDeadLetter(heldDelete('p-1'));
      const [again, concurrent] = await Promise.all([
        fixture.store.openDeadLetter(heldDelete('p-1')),
        fixture.store.openDeadLetter(heldDelete('p-1')),
      ]);
      expect(again.id).toBe(first.id);
      expect(concurrent.id).toBe(first.id);
      const other = await fixture.store.openDeadLetter(heldDelete('p-1', { target: 'medplum' }));
      expect(other.id).not.toBe(first.id);
      await fixture.store.discardDeadLetter(first.id, 'kept');
      const reopened = await fixture.store.openDeadLetter(heldDelete('p-1'));
      expect(reopened.id).not.toBe(first.id);
      expect(await fixture.store.listDeadLetters()).toHaveLength(2);
    });

    it('leaves a pending entry of the record alone, and a retry queues the letter’s kind', async () => {
      await fixture.store.commit(await fixture.store.intend(intentOf('p-1', { target: 'medplum' }), 0));
      const letter = await fixture.store.openDeadLetter(heldDelete('p-1'));
      expect((await fixture.store.listOutbox()).map((entry) => entry.target)).toEqual(['medplum']);
      expect(await fixture.store.retryDeadLetter(letter.id)).toBeDefined();
      const entries = await fixture.store.listOutbox();
      expect(entries.map((entry) => [entry.target, entry.kind])).toEqual([
        ['medplum', 'upsert'],
        ['legacy', 'delete'],
      ]);
      expect((await fixture.store.getDeadLetter(letter.id))?.status).toBe('retried');
    });
  });
}

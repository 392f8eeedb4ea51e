import { beforeEach, describe, expect, it } from 'vitest';
import {
  LegacyNotFoundError,
  LegacyVersionConflictError,
  type LegacyAdapter,
  type LegacyChange,
} from '../../src/sides/legacy-adapter.ts';
import { InvalidInputError } from '../../src/errors.ts';

/** A legacy row as the contract writes it: an optional `id`, a `name` and a `note`. */
export type ContractRow = Record<string, unknown>;

/**
 * One adapter under test, fresh for each case: an empty store for `resourceType` whose rows
 * have a text `id` (assigned by the store when absent), `name` and `note`.
 */
export interface LegacyAdapterFixture {
  readonly adapter: LegacyAdapter<ContractRow>;
  readonly resourceType: string;
  /**
   * Gives the records' latest changes one timestamp, as a legacy writer stamping rows with
   * `now()` in one transaction would. Absent when the adapter's feed does not order by time.
   */
  readonly shareTimestamp?: ((ids: readonly string[]) => Promise<void>) | undefined;
}

/**
 * The behaviour every {@link LegacyAdapter} promises, as one suite to run per adapter.
 *
 * @param name - The adapter's name, for the describe block.
 * @param setup - Makes a fresh fixture for each case.
 * @example
 * ```ts
 * describeLegacyAdapterContract('MemoryLegacyAdapter', async () => ({
 *   adapter: new MemoryLegacyAdapter(),
 *   resourceType: 'Patient',
 * }));
 * ```
 */
export function describeLegacyAdapterContract(
  name: string,
  setup: () => Promise<LegacyAdapterFixture>,
): void {
  describe(`${name} (LegacyAdapter contract)`, () => {
    let adapter: LegacyAdapter<ContractRow>;
    let type: string;
    let fixture: LegacyAdapterFixture;

    beforeEach(async () => {
      fixture = await setup();
      adapter = fixture.adapter;
      type = fixture.resourceType;
    });

    async function drain(
      from: string | undefined,
      limit: number,
    ): Promise<{ changes: LegacyChange<ContractRow>[]; cursor: string | undefined; pages: number }> {
      const changes: LegacyChange<ContractRow>[] = [];
      let cursor = from;
      for (let pages = 0; ; pages += 1) {
        const page = await adapter.changesSince(type, cursor, limit);
        expect(page.changes.length).toBeLessThanOrEqual(limit);
        if (page.changes.length === 0) {
          expect(page.cursor).toBe(cursor);
          return { changes, cursor, pages };
        }
        changes.push(...page.changes);
        cursor = page.cursor;
      }
    }

    describe('create', () => {
      it('assigns an id when the row has none', async () => {
        const created = await adapter.create(type, { name: 'Ada', note: null });
        expect(created.id).toEqual(expect.any(String));
        expect(created.id).not.toBe('');
        expect(created.row.name).toBe('Ada');
        expect(created.version).toEqual(expect.any(String));
      });

      it('keeps the id the row carries', async () => {
        const created = await adapter.create(type, { id: 'legacy-7', name: 'Ada', note: null });
        expect(created.id).toBe('legacy-7');
        expect((await adapter.read(type, 'legacy-7'))?.row.name).toBe('Ada');
      });

      it('gives each record its own id', async () => {
        const a = await adapter.create(type, { name: 'Ada', note: null });
        const b = await adapter.create(type, { name: 'Grace', note: null });
        expect(a.id).not.toBe(b.id);
      });

      it('refuses an id that is taken with a version conflict, leaving the record alone', async () => {
        const first = await adapter.create(type, { id: 'dup', name: 'Ada', note: null });
        const error = await adapter
          .create(type, { id: 'dup', name: 'Grace', note: null })
          .catch((err: unknown) => err);
        expect(error).toBeInstanceOf(LegacyVersionConflictError);
        expect(error).toMatchObject({
          resourceType: type,
          legacyId: 'dup',
          expectedVersion: undefined,
          actualVersion: first.version,
        });
        expect((await adapter.read(type, 'dup'))?.row.name).toBe('Ada');
      });
    });

    describe('read', () => {
      it('returns undefined for a record that does not exist', async () => {
        expect(await adapter.read(type, 'missing')).toBeUndefined();
      });

      it('returns the record as create stored it', async () => {
        const created = await adapter.create(type, { name: 'Ada', note: 'x' });
        expect(await adapter.read(type, created.id)).toEqual(created);
      });

      it('reads several at once as read reads each, keyed by the ids asked for', async () => {
        if (adapter.readMany === undefined) return;
        const ada = await adapter.create(type, { name: 'Ada', note: 'x' });
        const grace = await adapter.create(type, { name: 'Grace', note: 'y' });
        await adapter.update(type, grace.id, { name: 'Grace H.', note: 'y' });
        const ids = [ada.id, 'missing', grace.id, ada.id];
        const many = await adapter.readMany(type, ids);
        expect([...many.keys()].sort()).toEqual([ada.id, grace.id, 'missing'].sort());
        for (const id of ids) expect(many.get(id)).toEqual(await adapter.read(type, id));
        expect((await adapter.readMany(type, [])).size).toBe(0);
      });
    });

    describe('update', () => {
      it('replaces the row and moves the version on each write', async () => {
        const created = await adapter.create(type, { name: 'Ada', note: null });
        const first = await adapter.update(type, created.id, { name: 'Ada L.', note: 'married' });
        const second = await adapter.update(type, created.id, { name: 'Ada K.', note: 'title' });
        expect(first.row).toMatchObject({ name: 'Ada L.', note: 'married' });
        expect(new Set([created.version, first.version, second.version]).size).toBe(3);
        expect(await adapter.read(type, created.id)).toEqual(second);
      });

      it('applies when expectedVersion matches the stored version', async () => {
        const created = await adapter.create(type, { name: 'Ada', note: null });
        const updated = await adapter.update(
          type,
          created.id,
          { name: 'Ada L.', note: null },
          { expectedVersion: created.version },
        );
        expect(updated.row.name).toBe('Ada L.');
      });

      it('refuses a stale expectedVersion with the actual version, changing nothing', async () => {
        const created = await adapter.create(type, { name: 'Ada', note: null });
        const current = await adapter.update(type, created.id, { name: 'Ada L.', note: null });
        const error = await adapter
          .update(type, created.id, { name: 'Lost', note: null }, { expectedVersion: created.version })
          .catch((err: unknown) => err);
        expect(error).toBeInstanceOf(LegacyVersionConflictError);
        expect(error).toMatchObject({
          legacyId: created.id,
          expectedVersion: created.version,
          actualVersion: current.version,
        });
        expect(await adapter.read(type, created.id)).toEqual(current);
      });

      it('refuses a version it never issued as a conflict', async () => {
        const created = await adapter.create(type, { name: 'Ada', note: null });
        await expect(
          adapter.update(type, created.id, { name: 'x', note: null }, { expectedVersion: 'not-a-version' }),
        ).rejects.toBeInstanceOf(LegacyVersionConflictError);
      });

      it('throws LegacyNotFoundError for a missing record, guarded or not', async () => {
        await expect(adapter.update(type, 'missing', { name: 'x', note: null })).rejects.toBeInstanceOf(
          LegacyNotFoundError,
        );
        await expect(
          adapter.update(type, 'missing', { name: 'x', note: null }, { expectedVersion: '1' }),
        ).rejects.toMatchObject({
          name: 'LegacyNotFoundError',
          legacyId: 'missing',
        });
      });
    });

    describe('delete', () => {
      it('removes the record, and deleting again is a no-op', async () => {
        const created = await adapter.create(type, { name: 'Ada', note: null });
        await adapter.delete(type, created.id);
        expect(await adapter.read(type, created.id)).toBeUndefined();
        await expect(adapter.delete(type, created.id)).resolves.toBeUndefined();
        await expect(
          adapter.delete(type, created.id, { expectedVersion: created.version }),
        ).resolves.toBeUndefined();
      });

      it('refuses a stale expectedVersion, keeping the record', async () => {
        const created = await adapter.create(type, { name: 'Ada', note: null });
        const current = await adapter.update(type, created.id, { name: 'Ada L.', note: null });
        const error = await adapter
          .delete(type, created.id, { expectedVersion: created.version })
          .catch((err: unknown) => err);
        expect(error).toBeInstanceOf(LegacyVersionConflictError);
        expect(error).toMatchObject({ expectedVersion: created.version, actualVersion: current.version });
        expect(await adapter.read(type, created.id)).toEqual(current);
        await adapter.delete(type, created.id, { expectedVersion: current.version });
        expect(await adapter.read(type, created.id)).toBeUndefined();
      });
    });

    describe('changesSince', () => {
      it('pages through creates in order, then returns nothing with the same cursor', async () => {
        const ids: string[] = [];
        for (const name of ['a', 'b', 'c', 'd', 'e'])
          ids.push((await adapter.create(type, { name, note: null })).id);
        const { changes, cursor, pages } = await drain(undefined, 2);
        expect(pages).toBe(3);
        // Each change once. Order is by change time, then id: creates in one clock tick (PGlite's
        // clock is coarse) come in id order, so only the set is fixed here.
        expect(changes.map((change) => change.id).sort()).toEqual([...ids].sort());
        expect(changes.every((change) => change.kind === 'upsert' && change.resourceType === type)).toBe(
          true,
        );
        const stamps = changes.map((change) => change.record?.updatedAt ?? '');
        expect(stamps).toEqual([...stamps].sort());
        expect(cursor).toEqual(expect.any(String));
      });

      it('returns nothing and no cursor for an empty store', async () => {
        expect(await adapter.changesSince(type, undefined, 10)).toEqual({ changes: [], cursor: undefined });
      });

      it('resumes after the cursor with only what changed since, at its latest state', async () => {
        const ids: string[] = [];
        for (const name of ['a', 'b', 'c']) ids.push((await adapter.create(type, { name, note: null })).id);
        const { cursor } = await drain(undefined, 10);
        const updated = await adapter.update(type, ids[1] ?? '', { name: 'b2', note: null });
        const later = await adapter.create(type, { name: 'd', note: null });
        const { changes } = await drain(cursor, 1);
        // Writes stamped with one instant (a coarse clock) come in id order, not write order.
        const byId = (a: unknown[], b: unknown[]) => String(a[0]).localeCompare(String(b[0]));
        expect(changes.map((change) => [change.id, change.record?.version]).sort(byId)).toEqual(
          [
            [updated.id, updated.version],
            [later.id, later.version],
          ].sort(byId),
        );
      });

      it('finds a record written again, or a new one, stamped with the instant of the cursor', async () => {
        const a = await adapter.create(type, { name: 'a', note: null });
        const b = await adapter.create(type, { name: 'b', note: null });
        await fixture.shareTimestamp?.([a.id, b.id]);
        const { cursor } = await drain(undefined, 10);
        const again = await adapter.update(type, a.id, { name: 'a2', note: null });
        const c = await adapter.create(type, { name: 'c', note: null });
        // A coarse clock stamps both with the cursor's instant; the ids may sort before it.
        await fixture.shareTimestamp?.([a.id, b.id, c.id]);
        const { changes } = await drain(cursor, 10);
        expect(changes.map((change) => [change.id, change.record?.version]).sort()).toEqual(
          [
            [again.id, again.version],
            [c.id, c.version],
          ].sort(),
        );
      });

      it('neither repeats nor skips records written at the same instant', async () => {
        const ids: string[] = [];
        for (let i = 0; i < 7; i += 1)
          ids.push((await adapter.create(type, { name: `n${i}`, note: null })).id);
        await fixture.shareTimestamp?.(ids);
        for (const limit of [1, 2, 3]) {
          const { changes } = await drain(undefined, limit);
          expect(changes.map((change) => change.id).sort()).toEqual([...ids].sort());
        }
        const firstPage = await adapter.changesSince(type, undefined, 3);
        const rest = await drain(firstPage.cursor, 2);
        expect([...firstPage.changes, ...rest.changes].map((change) => change.id).sort()).toEqual(
          [...ids].sort(),
        );
      });

      it('rejects a limit that is not a positive integer', async () => {
        for (const limit of [0, -1, 1.5, Number.NaN]) {
          await expect(adapter.changesSince(type, undefined, limit)).rejects.toMatchObject({
            name: 'InvalidInputError',
            field: 'limit',
          });
        }
      });

      it('rejects a cursor it did not issue', async () => {
        const error = await adapter.changesSince(type, 'garbage!', 10).catch((err: unknown) => err);
        expect(error).toBeInstanceOf(InvalidInputError);
        expect(error).toMatchObject({ field: 'cursor' });
      });
    });

    describe('scan', () => {
      async function scanAll(limit: number): Promise<{ ids: string[]; pages: number }> {
        const scan = adapter.scan?.bind(adapter);
        if (scan === undefined) throw new Error('the adapter has no scan');
        const ids: string[] = [];
        let after: string | undefined;
        let pages = 0;
        do {
          const page = await scan(type, { after, limit });
          expect(page.records.length).toBeLessThanOrEqual(limit);
          ids.push(...page.records.map((record) => record.id));
          after = page.next;
          pages += 1;
        } while (after !== undefined);
        return { ids, pages };
      }

      it('reads every record once, in pages, without changing any', async () => {
        const created = [];
        for (let i = 0; i < 7; i += 1)
          created.push(await adapter.create(type, { name: `n${i}`, note: null }));
        for (const limit of [1, 3, 7, 50]) {
          const { ids, pages } = await scanAll(limit);
          expect([...ids].sort()).toEqual(created.map((record) => record.id).sort());
          expect(new Set(ids).size).toBe(ids.length);
          expect(pages).toBe(Math.max(1, Math.ceil(7 / limit)));
        }
        for (const record of created)
          expect((await adapter.read(type, record.id))?.version).toBe(record.version);
      });

      it('keeps its place while records are written behind and ahead of it', async () => {
        for (let i = 0; i < 4; i += 1) await adapter.create(type, { name: `n${i}`, note: null });
        const first = await adapter.scan?.(type, { limit: 2 });
        const seen = new Set(first?.records.map((record) => record.id));
        const behind = first?.records[0];
        if (behind === undefined) throw new Error('no first page');
        await adapter.update(type, behind.id, { ...behind.row, name: 'changed' });
        let after = first?.next;
        while (after !== undefined) {
          const page = await adapter.scan?.(type, { after, limit: 2 });
          for (const record of page?.records ?? []) {
            expect(seen.has(record.id)).toBe(false);
            seen.add(record.id);
          }
          after = page?.next;
        }
        expect(seen.size).toBe(4);
      });

      it('answers an empty type with one empty, last page', async () => {
        expect(await adapter.scan?.(type, { limit: 10 })).toEqual({ records: [], next: undefined });
      });

      it('rejects a limit that is not a positive integer', async () => {
        for (const limit of [0, -1, 1.5]) {
          await expect(adapter.scan?.(type, { limit })).rejects.toMatchObject({
            name: 'InvalidInputError',
            field: 'limit',
          });
        }
      });
    });
  });
}

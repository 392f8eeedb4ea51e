import { InvalidInputError } from '../errors.ts';
import {
  LegacyNotFoundError,
  LegacyVersionConflictError,
  type LegacyAdapter,
  type LegacyChange,
  type LegacyChangePage,
  type LegacyRecord,
  type LegacyScanOptions,
  type LegacyScanPage,
  type LegacyWriteOptions,
} from '../sides/legacy-adapter.ts';
import { checkLimit } from '../adapters/table-rows.ts';

/**
 * The methods of a {@link LegacyAdapter}, as counted by {@link MemoryLegacyAdapter.calls}.
 *
 * @example
 * ```ts
 * const method: LegacyAdapterMethod = 'update';
 * ```
 */
export type LegacyAdapterMethod = 'create' | 'update' | 'delete' | 'read' | 'changesSince' | 'scan';

/**
 * Options of {@link MemoryLegacyAdapter}.
 *
 * @example
 * ```ts
 * const options: MemoryLegacyAdapterOptions = { idField: 'patientId' };
 * ```
 */
export interface MemoryLegacyAdapterOptions {
  /**
   * The row field holding the legacy id. A created row without it gets the next free integer,
   * as a string (`'1'`, `'2'`, … per resource type), written into that field.
   * @default 'id'
   */
  readonly idField?: string | undefined;
}

interface StoredRecord<L> {
  readonly row: L;
  readonly version: number;
  readonly updatedAt: string;
}

/**
 * A {@link LegacyAdapter} in process memory that keeps the full contract (versions, guarded
 * writes, idempotent deletes, a change feed that includes deletes), for tests and examples.
 *
 * Rows are deep-copied in and out (`structuredClone`), so a caller mutating a row it passed
 * or received cannot change what is stored, as with a real database. For fault injection,
 * {@link MemoryLegacyAdapter.failNext} makes calls fail before they touch any state and
 * {@link MemoryLegacyAdapter.calls} counts every call, including failed ones.
 *
 * @typeParam L - The legacy row shape.
 * @example
 * ```ts
 * const legacy = new MemoryLegacyAdapter<{ id?: string; name: string }>();
 * const created = await legacy.create('Patient', { name: 'Ada' }); // created.id === '1'
 * legacy.failNext(2); // the next two calls throw an error with `retryable: true`
 * await expect(legacy.read('Patient', created.id)).rejects.toMatchObject({ retryable: true });
 * expect(legacy.calls.read).toBe(1);
 * ```
 */
export class MemoryLegacyAdapter<L extends object> implements LegacyAdapter<L> {
  readonly #idField: string;
  readonly #tables = new Map<string, Map<string, StoredRecord<L>>>();
  readonly #nextId = new Map<string, number>();
  readonly #log = new Map<string, LegacyChange<L>[]>();
  readonly #calls: Record<LegacyAdapterMethod, number> = {
    create: 0,
    update: 0,
    delete: 0,
    read: 0,
    changesSince: 0,
    scan: 0,
  };
  #failures = 0;
  #failure: Error | undefined;

  /**
   * @param options - Where rows keep their id.
   */
  constructor(options: MemoryLegacyAdapterOptions = {}) {
    this.#idField = options.idField ?? 'id';
  }

  /**
   * How many times each method has been called, failed calls included. A snapshot: later calls
   * do not change the returned object.
   *
   * @returns The count per method.
   * @example
   * ```ts
   * await legacy.read('Patient', '1');
   * expect(legacy.calls).toMatchObject({ read: 1, update: 0 });
   * ```
   */
  get calls(): Readonly<Record<LegacyAdapterMethod, number>> {
    return { ...this.#calls };
  }

  /**
   * Makes the next `count` calls (to any method) throw before doing anything, as a legacy
   * system that is down would. Without `error`, each throws a new `Error` whose `retryable`
   * is `true`; with it, that value is thrown each time. A later call replaces the setting.
   *
   * @param count - How many calls fail (0 cancels pending failures).
   * @param error - What to throw instead of the default transient error.
   * @example
   * ```ts
   * legacy.failNext(1, Object.assign(new Error('constraint violated'), { retryable: false }));
   * await expect(legacy.create('Patient', { name: 'Ada' })).rejects.toThrow('constraint violated');
   * ```
   */
  failNext(count: number, error?: Error): void {
    if (!Number.isSafeInteger(count) || count < 0) {
      throw new InvalidInputError('count', `must be a non-negative integer (got ${String(count)})`);
    }
    this.#failures = count;
    this.#failure = error;
  }

  /** {@inheritDoc LegacyAdapter.create} */
  create(resourceType: string, row: L): Promise<LegacyRecord<L>> {
    return this.#call('create', () => {
      const table = this.#table(resourceType);
      const given = (row as Record<string, unknown>)[this.#idField] ?? undefined;
      if (given !== undefined && typeof given !== 'string' && typeof given !== 'number') {
        throw new InvalidInputError(`row.${this.#idField}`, 'must be a string or a number', {
          side: 'legacy',
          resourceType,
        });
      }
      const id = given === undefined ? this.#freeId(resourceType, table) : String(given);
      const existing = table.get(id);
      if (existing !== undefined)
        throw new LegacyVersionConflictError(resourceType, id, undefined, String(existing.version));
      return this.#store(resourceType, id, row, 1);
    });
  }

  /** {@inheritDoc LegacyAdapter.update} */
  update(
    resourceType: string,
    id: string,
    row: L,
    options: LegacyWriteOptions = {},
  ): Promise<LegacyRecord<L>> {
    return this.#call('update', () => {
      const existing = this.#table(resourceType).get(id);
      if (existing === undefined) throw new LegacyNotFoundError(resourceType, id);
      checkVersion(resourceType, id, existing, options);
      return this.#store(resourceType, id, row, existing.version + 1);
    });
  }

  /** {@inheritDoc LegacyAdapter.delete} */
  delete(resourceType: string, id: string, options: LegacyWriteOptions = {}): Promise<void> {
    return this.#call('delete', () => {
      const table = this.#table(resourceType);
      const existing = table.get(id);
      if (existing === undefined) return;
      checkVersion(resourceType, id, existing, options);
      table.delete(id);
      this.#changes(resourceType).push({ resourceType, id, kind: 'delete' });
    });
  }

  /** {@inheritDoc LegacyAdapter.read} */
  read(resourceType: string, id: string): Promise<LegacyRecord<L> | undefined> {
    return this.#call('read', () => {
      const stored = this.#table(resourceType).get(id);
      return stored === undefined ? undefined : toRecord(id, stored);
    });
  }

  /** {@inheritDoc LegacyAdapter.readMany} */
  readMany(
    resourceType: string,
    ids: readonly string[],
  ): Promise<ReadonlyMap<string, LegacyRecord<L> | undefined>> {
    return this.#call('read', () => {
      const table = this.#table(resourceType);
      return new Map(
        ids.map((id) => {
          const stored = table.get(id);
          return [id, stored === undefined ? undefined : toRecord(id, stored)];
        }),
      );
    });
  }

  /**
   * Pages through every write in the order it happened, deletes included. Unlike a table
   * feed, each write is its own change: a record updated twice appears twice, each time with
   * the state that write stored. The cursor is the position in that log.
   *
   * @param resourceType - The resource type whose writes to read.
   * @param cursor - A cursor from an earlier page, or `undefined` to start from the beginning.
   * @param limit - The most changes to return (a positive integer).
   * @returns Up to `limit` changes and the cursor after the last one.
   * @throws {@link InvalidInputError} naming `cursor` or `limit` when either is malformed.
   * @example
   * ```ts
   * const { changes, cursor } = await legacy.changesSince('Patient', undefined, 10);
   * const next = await legacy.changesSince('Patient', cursor, 10);
   * ```
   */
  changesSince(
    resourceType: string,
    cursor: string | undefined,
    limit: number,
  ): Promise<LegacyChangePage<L>> {
    return this.#call('changesSince', () => {
      checkLimit(limit, resourceType);
      const start = cursor === undefined ? 0 : Number(cursor);
      const log = this.#changes(resourceType);
      if (cursor !== undefined && (!/^\d+$/.test(cursor) || start > log.length)) {
        throw new InvalidInputError('cursor', 'is not a cursor this adapter returned', {
          side: 'legacy',
          resourceType,
        });
      }
      const changes = log.slice(start, start + limit).map((change) => structuredClone(change));
      return { changes, cursor: changes.length === 0 ? cursor : String(start + changes.length) };
    });
  }

  /**
   * Pages through the records of a type in ascending order of their ids (compared as
   * strings, code unit by code unit). The cursor is the last id of the page.
   *
   * @param resourceType - The resource type whose records to read.
   * @param options - The cursor to start after and the page size.
   * @returns Up to `limit` records and the cursor of the next page (`undefined` after the last).
   * @throws {@link InvalidInputError} naming `limit` when it is not a positive integer.
   * @example
   * ```ts
   * let after: string | undefined;
   * do {
   *   const page = await legacy.scan('Patient', { after, limit: 100 });
   *   after = page.next;
   * } while (after !== undefined);
   * ```
   */
  scan(resourceType: string, options: LegacyScanOptions): Promise<LegacyScanPage<L>> {
    return this.#call('scan', () => {
      const { after, limit } = options;
      checkLimit(limit, resourceType);
      const table = this.#table(resourceType);
      const ids = [...table.keys()].filter((id) => after === undefined || id > after).sort(byCodeUnit);
      const page = ids.slice(0, limit);
      const records = page.flatMap((id) => {
        const stored = table.get(id);
        return stored === undefined ? [] : [toRecord(id, stored)];
      });
      return { records, next: ids.length > limit ? page.at(-1) : undefined };
    });
  }

  /** Counts the call, then fails it if a failure is pending, else runs it. */
  async #call<T>(method: LegacyAdapterMethod, run: () => T): Promise<T> {
    this.#calls[method] += 1;
    if (this.#failures > 0) {
      this.#failures -= 1;
      throw (
        this.#failure ??
        Object.assign(new Error(`Injected failure of MemoryLegacyAdapter.${method}`), { retryable: true })
      );
    }
    // Resolving a tick later keeps callers honest about awaiting, as any real I/O would.
    await Promise.resolve();
    return run();
  }

  #store(resourceType: string, id: string, row: L, version: number): LegacyRecord<L> {
    const copy = structuredClone(row);
    const own = (copy as Record<string, unknown>)[this.#idField];
    const stored: StoredRecord<L> = {
      // A row that already names this id keeps its own value (a number stays a number).
      row:
        (typeof own === 'string' || typeof own === 'number') && String(own) === id
          ? copy
          : { ...copy, [this.#idField]: id },
      version,
      updatedAt: new Date().toISOString(),
    };
    this.#table(resourceType).set(id, stored);
    const record = toRecord(id, stored);
    this.#changes(resourceType).push({ resourceType, id, kind: 'upsert', record: toRecord(id, stored) });
    return record;
  }

  #freeId(resourceType: string, table: ReadonlyMap<string, StoredRecord<L>>): string {
    let next = this.#nextId.get(resourceType) ?? 1;
    // Callers may have taken numeric ids themselves; skip those rather than collide.
    while (table.has(String(next))) next += 1;
    this.#nextId.set(resourceType, next + 1);
    return String(next);
  }

  #table(resourceType: string): Map<string, StoredRecord<L>> {
    let table = this.#tables.get(resourceType);
    if (table === undefined) {
      table = new Map();
      this.#tables.set(resourceType, table);
    }
    return table;
  }

  #changes(resourceType: string): LegacyChange<L>[] {
    let log = this.#log.get(resourceType);
    if (log === undefined) {
      log = [];
      this.#log.set(resourceType, log);
    }
    return log;
  }
}

function checkVersion<L>(
  resourceType: string,
  id: string,
  stored: StoredRecord<L>,
  options: LegacyWriteOptions,
): void {
  const expected = options.expectedVersion;
  if (expected !== undefined && expected !== String(stored.version)) {
    throw new LegacyVersionConflictError(resourceType, id, expected, String(stored.version));
  }
}

function toRecord<L>(id: string, stored: StoredRecord<L>): LegacyRecord<L> {
  return {
    id,
    row: structuredClone(stored.row),
    version: String(stored.version),
    updatedAt: stored.updatedAt,
  };
}

function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The legacy system as the library sees it: a small structural interface that the user's
 * existing client is wrapped in. Nothing here depends on a database driver.
 */
import { idShape } from '../error-values.ts';

/**
 * One stored legacy record and the concurrency token the legacy system keeps for it.
 *
 * @example
 * ```ts
 * const record: LegacyRecord<{ id: string; name: string }> = {
 *   id: 'p-1',
 *   row: { id: 'p-1', name: 'Ada' },
 *   version: '3',
 *   updatedAt: '2026-01-02T03:04:05.000Z',
 * };
 * ```
 */
export interface LegacyRecord<L> {
  /** The legacy id of the record (what the mapping's `legacyId(row)` returns). */
  readonly id: string;
  /** The row as the legacy system stores it. */
  readonly row: L;
  /**
   * An opaque version token (a counter, a row version, an ETag). Absent when the legacy system
   * keeps none; then conflicts on the legacy side are detected by content hash only.
   */
  readonly version?: string | undefined;
  /** When the record last changed, as an ISO 8601 instant, when the system records it. */
  readonly updatedAt?: string | undefined;
}

/**
 * What the library passes with every call to a legacy adapter.
 *
 * @example
 * ```ts
 * const record = await adapter.read('Patient', 'p-1', { signal: AbortSignal.timeout(5_000) });
 * ```
 */
export interface LegacyCallOptions {
  /**
   * Aborted when the library stops waiting for the call: its `requestTimeoutMs` ran out, or the
   * mirror making it lost its lease. An adapter may honour it (cancel the query or request);
   * either way the library has moved on, and a write it abandoned may still land (every write
   * the library makes is idempotent, so its next attempt reads and compares).
   */
  readonly signal?: AbortSignal | undefined;
}

/**
 * Options for a legacy write that may be guarded by the version the caller last saw.
 *
 * @example
 * ```ts
 * const options: LegacyWriteOptions = { expectedVersion: '3' };
 * ```
 */
export interface LegacyWriteOptions extends LegacyCallOptions {
  /**
   * The version the caller expects the stored record to have. When set and the stored version
   * differs, the adapter must throw a {@link LegacyVersionConflictError} and change nothing.
   * When unset, the write is unconditional.
   */
  readonly expectedVersion?: string | undefined;
}

/**
 * One change read from the legacy system's change feed.
 *
 * @example
 * ```ts
 * const change: LegacyChange<{ id: string }> = {
 *   resourceType: 'Patient',
 *   id: 'p-1',
 *   kind: 'upsert',
 *   record: { id: 'p-1', row: { id: 'p-1' }, version: '2' },
 * };
 * ```
 */
export interface LegacyChange<L> {
  /** The FHIR resource type whose mapping covers the record. */
  readonly resourceType: string;
  /** The legacy id of the record that changed. */
  readonly id: string;
  /** `upsert` for a create or update, `delete` for a removal. */
  readonly kind: 'upsert' | 'delete';
  /** The record as it is now; absent for deletes. */
  readonly record?: LegacyRecord<L> | undefined;
}

/**
 * A page of legacy changes and the cursor to resume after it.
 *
 * @example
 * ```ts
 * const page: LegacyChangePage<{ id: string }> = { changes: [], cursor: undefined };
 * ```
 */
export interface LegacyChangePage<L> {
  /** Changes in the order they happened. */
  readonly changes: readonly LegacyChange<L>[];
  /** Opaque cursor to pass to the next `changesSince` call; unchanged when nothing is new. */
  readonly cursor: string | undefined;
}

/**
 * Where a scan of all records of one type starts, and how much it reads.
 *
 * @example
 * ```ts
 * const options: LegacyScanOptions = { after: undefined, limit: 500 };
 * ```
 */
export interface LegacyScanOptions extends LegacyCallOptions {
  /** The `next` cursor of the previous page; `undefined` to start from the first record. */
  readonly after?: string | undefined;
  /** The most records to return (a positive integer). */
  readonly limit: number;
}

/**
 * One page of a keyset scan over every record of a type.
 *
 * @example
 * ```ts
 * const page: LegacyScanPage<{ id: string }> = { records: [], next: undefined };
 * ```
 */
export interface LegacyScanPage<L> {
  /** Records in the adapter's key order, strictly after the cursor asked for. */
  readonly records: readonly LegacyRecord<L>[];
  /** The cursor of the next page (opaque), or `undefined` when this page is the last. */
  readonly next: string | undefined;
}

/**
 * The user's legacy system, one method per operation, keyed by FHIR resource type (the adapter
 * decides which table or endpoint holds each type).
 *
 * Contract:
 * - `create` stores a new record. When the row already carries its legacy id the adapter keeps
 *   it; otherwise the legacy system assigns one. It returns the stored record. Creating an id
 *   that already exists throws {@link LegacyVersionConflictError}.
 * - `update` replaces the row of an existing record, guarded by `expectedVersion` when given;
 *   a missing record throws {@link LegacyNotFoundError}.
 * - `delete` removes a record, guarded by `expectedVersion` when given; deleting a missing
 *   record is not an error (deletes are idempotent).
 * - `read` returns the record or `undefined`; the optional `readMany` reads several at once.
 * - `changesSince` pages through changes after a cursor (used by change feeds).
 * - Every call gets a `signal` (see {@link LegacyCallOptions}) it may honour: the library stops
 *   waiting after `requestTimeoutMs` whether it does or not.
 *
 * Other errors are retried only when they say so (`retryable: true`), or are socket errors or
 * transient SQLSTATEs; any other is permanent, since retrying a create the library cannot make
 * idempotent could duplicate a row.
 *
 * @typeParam L - The legacy row shape.
 * @example
 * ```ts
 * import { MemoryLegacyAdapter } from 'medplum-dualwrite/testing';
 * const adapter: LegacyAdapter<{ id?: string; name: string }> = new MemoryLegacyAdapter({
 *   idField: 'id',
 * });
 * ```
 */
export interface LegacyAdapter<L> {
  /** Stores a new record and returns it as stored. */
  create(resourceType: string, row: L, options?: LegacyCallOptions): Promise<LegacyRecord<L>>;
  /** Replaces an existing record's row and returns it as stored. */
  update(resourceType: string, id: string, row: L, options?: LegacyWriteOptions): Promise<LegacyRecord<L>>;
  /** Removes a record; a no-op when it does not exist. */
  delete(resourceType: string, id: string, options?: LegacyWriteOptions): Promise<void>;
  /** Reads a record, or `undefined` when it does not exist. */
  read(resourceType: string, id: string, options?: LegacyCallOptions): Promise<LegacyRecord<L> | undefined>;
  /**
   * Optional: reads several records of one type at once, for a batch of mirrors. The answer
   * maps each id asked for (exactly as given) to its record, or to `undefined` when it does
   * not exist; an id missing from the answer is read on its own with `read`. Without it, every
   * record is read with `read`.
   */
  readMany?(
    resourceType: string,
    ids: readonly string[],
    options?: LegacyCallOptions,
  ): Promise<ReadonlyMap<string, LegacyRecord<L> | undefined>>;
  /**
   * Optional: reserves a new legacy id without writing anything (e.g. the next value of the
   * table's sequence), or `undefined` when it cannot. With it, a create without an id is
   * journaled before the legacy write like any other; without it, the legacy system assigns
   * the id during the write and the mirror's intent can only be journaled just after (see the
   * README's limits).
   */
  newId?(resourceType: string, options?: LegacyCallOptions): Promise<string | undefined>;
  /**
   * Optional: pages through every record of a type in a stable key order (a keyset scan: each
   * page starts strictly after the last key of the one before, so records written during the
   * scan never shift it and none is read twice). Backfills and reconciliations read the legacy
   * side with it; it must not change anything (no version bump, no trigger). Without it, they
   * fall back to `changesSince` from the start, which sees each live record at its latest write
   * and, on a table feed, reads the same keyset order by time instead of by key.
   */
  scan?(resourceType: string, options: LegacyScanOptions): Promise<LegacyScanPage<L>>;
  /** Pages through changes made after `cursor` (from the start when `undefined`). */
  changesSince(
    resourceType: string,
    cursor: string | undefined,
    limit: number,
    options?: LegacyCallOptions,
  ): Promise<LegacyChangePage<L>>;
}

/**
 * Thrown by a {@link LegacyAdapter} when a guarded write finds another version than expected,
 * or a create finds the id taken. The library reads it as a conflict, never retries it blindly.
 *
 * @example
 * ```ts
 * throw new LegacyVersionConflictError('Patient', 'p-1', '3', '4');
 * ```
 */
export class LegacyVersionConflictError extends Error {
  override readonly name = 'LegacyVersionConflictError' as const;
  /** Not retryable: the caller must re-read. */
  readonly retryable = false as const;
  /** The resource type of the record. */
  readonly resourceType: string;
  /** The legacy id of the record. */
  readonly legacyId: string;
  /** The version the write expected; `undefined` for a create. */
  readonly expectedVersion: string | undefined;
  /** The version found; `undefined` when unknown. */
  readonly actualVersion: string | undefined;
  /**
   * @param resourceType - The resource type of the record.
   * @param legacyId - The legacy id of the record.
   * @param expectedVersion - The version the write expected (`undefined` for a create).
   * @param actualVersion - The version found (`undefined` when unknown).
   */
  constructor(
    resourceType: string,
    legacyId: string,
    expectedVersion: string | undefined,
    actualVersion: string | undefined,
  ) {
    super(
      expectedVersion === undefined
        ? `${resourceType}/${legacyId} already exists in the legacy system`
        : `${resourceType}/${legacyId} is at version ${actualVersion ?? '(unknown)'} in the legacy system, expected ${expectedVersion}`,
    );
    this.resourceType = resourceType;
    this.legacyId = legacyId;
    this.expectedVersion = expectedVersion;
    this.actualVersion = actualVersion;
  }
}

/**
 * Thrown by a {@link LegacyAdapter} when an update targets a record that does not exist.
 *
 * @example
 * ```ts
 * throw new LegacyNotFoundError('Patient', 'p-404');
 * ```
 */
export class LegacyNotFoundError extends Error {
  override readonly name = 'LegacyNotFoundError' as const;
  /** Not retryable. */
  readonly retryable = false as const;
  /** The resource type of the record. */
  readonly resourceType: string;
  /** The legacy id that was not found. */
  readonly legacyId: string;
  /**
   * @param resourceType - The resource type of the record.
   * @param legacyId - The legacy id that was not found.
   */
  constructor(resourceType: string, legacyId: string) {
    // Not quoted: an id that names nothing is the caller's value only (it may be PHI).
    super(`${resourceType}: no record has that legacy id in the legacy system (${idShape(legacyId)})`);
    this.resourceType = resourceType;
    this.legacyId = legacyId;
  }
}

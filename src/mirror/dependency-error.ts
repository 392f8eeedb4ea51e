import { DualWriteError, type ErrorDetails, type Side } from '../errors.ts';
import { waitingForOf, type Dependency } from '../journal/waiting-for.ts';

/**
 * Why a mirror waits for a record it references.
 *
 * - `pending`: the referenced record's own mirror is queued or being retried; the dependent
 *   waits and runs as soon as the record is linked.
 * - `dead-lettered`: the referenced record's mirror failed for good; the dependent is held until
 *   an operator retries that dead letter (which releases it) or links the record.
 * - `not-mirrored`: the referenced record exists on the authority's side but nothing mirrors it
 *   (its unit's stage mirrors nothing, e.g. `legacy-only`); held until it is linked (a
 *   backfill, or its unit moving on).
 * - `missing`: the referenced record does not exist on either side (deleted); held until it
 *   appears and is linked, or an operator removes the dependent.
 *
 * @example
 * ```ts
 * const why: DependencyState = 'dead-lettered';
 * ```
 */
export type DependencyState = 'pending' | 'dead-lettered' | 'not-mirrored' | 'missing';

/**
 * A mirror cannot be applied yet: a record it references has no copy on the target side, and
 * writing it now would leave a dangling or wrong reference. The library never dead-letters a
 * mirror for this: the outbox entry waits (`pending`) or is held (every other state) with this
 * error as its visible `lastError`, and runs again as soon as the dependency is linked. The
 * message names both records by type and legacy id (or Medplum id), never by content.
 *
 * Not retryable by the caller: retrying the same call does not help until the dependency is
 * mirrored, and the library does that waiting itself.
 *
 * @example
 * ```ts
 * for (const entry of await store.listOutbox()) {
 *   if (entry.lastError?.name === 'DependencyError') console.log(entry.legacyId, entry.lastError.message);
 * }
 * ```
 */
export class DependencyError extends DualWriteError {
  override readonly name = 'DependencyError' as const;
  readonly retryable = false as const;
  /** The record the mirror waits for. */
  readonly dependency: Dependency;
  /** Why it has no copy on the target side. */
  readonly state: DependencyState;
  /** The element of the dependent that references it (`subject`). */
  readonly element: string;

  /**
   * @param element - The dependent's element holding the reference.
   * @param dependency - The record referenced.
   * @param state - Why it has no copy on the target side.
   * @param details - The dependent record and the side it is mirrored to.
   */
  constructor(element: string, dependency: Dependency, state: DependencyState, details: ErrorDetails) {
    super(
      `${element} references ${waitingForOf(dependency)}, which has no copy in ${targetName(details.side)}: ${EXPLAINED[state]}`,
      details,
    );
    this.element = element;
    this.dependency = dependency;
    this.state = state;
  }

  /** Whether the mirror waits for a pending mirror (`true`) or is held for an operator. */
  get waiting(): boolean {
    return this.state === 'pending';
  }
}

const EXPLAINED: Readonly<Record<DependencyState, string>> = {
  pending: 'waiting for its mirror',
  'dead-lettered': 'held: its mirror is dead-lettered (retry it to release this one)',
  'not-mirrored': 'held: nothing mirrors it (its unit or stage does not mirror); link it to release this one',
  missing: 'held: it exists on neither side',
};

function targetName(side: Side | undefined): string {
  return side === 'legacy' ? 'the legacy system' : 'Medplum';
}

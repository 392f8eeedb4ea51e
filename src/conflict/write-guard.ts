import { idShape } from '../error-values.ts';
import { ConflictError, RejectedError, type ErrorDetails } from '../errors.ts';
import type { Link } from '../journal/link.ts';

/**
 * What a side's current copy must look like for a write to go ahead. A copy that already holds
 * the desired content is accepted as is (the write is a replay), except by an `update` whose
 * `version` is stale (see {@link acceptsAsIs}).
 *
 * - `create`: there must be no copy (a user's create).
 * - `update`: there must be a copy, at `version` when given (a user's update, optionally
 *   with optimistic concurrency). A copy at another version is a conflict even when it holds
 *   the desired content already (the caller decided on a version that is no longer current, and
 *   a legacy table's guarded UPDATE answers the same), unless `ownEarlierWrite`: that content
 *   may be this write's own (an earlier attempt of the call whose answer was lost, or a
 *   resolution being applied again).
 * - `last-sync`: the copy must be at the version recorded in the link, or absent when there is
 *   no link (a mirror: the target must not have changed since the two systems last agreed).
 *   Without a link, a copy found is taken for an orphan of an earlier attempt and replaced,
 *   unless `targetIsAuthority`: a mirror towards the side that is now the authority (queued
 *   before the unit stepped back) must not replace what the authority wrote since; nor when
 *   `attempted` (earlier attempts of the mirror recorded what they were about to write, see
 *   {@link OwnWrites}) and the copy holds none of it: a worker created it and died before
 *   linking it, and someone edited it since.
 * - `overwrite`: whatever the copy is, replace it (a conflict resolved in the authority's
 *   favour); the write is still guarded by the version just read, against a concurrent change.
 */
export type WriteGuard =
  | { readonly kind: 'create' }
  | {
      readonly kind: 'update';
      readonly version?: string | undefined;
      readonly ownEarlierWrite?: boolean | undefined;
    }
  | {
      readonly kind: 'last-sync';
      readonly targetIsAuthority?: boolean | undefined;
      readonly attempted?: boolean | undefined;
    }
  | { readonly kind: 'overwrite' };

/**
 * How a mirror recognises its own earlier writes. `hashes` are what earlier attempts recorded
 * they were about to write (an answer may have been lost, or a worker died before recording
 * the result); `mark` records what this attempt is about to write, just before it writes.
 */
export interface OwnWrites {
  readonly hashes: readonly string[];
  readonly mark: (hash: string) => Promise<void>;
}

/**
 * Whether a copy found already holding the desired content is accepted as it is, at the
 * version found.
 *
 * @param guard - The write's guard.
 * @param foundVersion - The copy's version.
 * @returns `false` only for an `update` whose `version` is stale and that cannot have written
 *   the copy itself: {@link checkGuard} then reports the conflict.
 */
export function acceptsAsIs(guard: WriteGuard, foundVersion: string | undefined): boolean {
  return (
    guard.kind !== 'update' ||
    guard.version === undefined ||
    guard.version === foundVersion ||
    guard.ownEarlierWrite === true
  );
}

/**
 * The guard of a call's attempt: after an attempt whose answer was lost, an `update` may find
 * its own write.
 *
 * @param guard - The call's guard.
 * @param mayHaveLanded - Whether an earlier attempt of the call may have written.
 * @returns The guard for this attempt.
 */
export function attemptGuard<G extends WriteGuard>(guard: G, mayHaveLanded: boolean): G {
  return guard.kind === 'update' && mayHaveLanded ? { ...guard, ownEarlierWrite: true } : guard;
}

/**
 * Checks a guard against the copy found; throws the error the caller should see.
 *
 * @param guard - The guard.
 * @param found - Whether a copy exists, and its version.
 * @param link - The record's link.
 * @param linkedVersion - The link's version for this side.
 * @param sameAsLastSync - Whether the copy's content equals the last-synced content.
 * @param details - The record concerned.
 */
export function checkGuard(
  guard: WriteGuard,
  found: { readonly exists: boolean; readonly version: string | undefined },
  link: Link | undefined,
  linkedVersion: string | undefined,
  sameAsLastSync: boolean,
  details: ErrorDetails,
): void {
  const where = details.side === 'medplum' ? 'Medplum' : 'the legacy system';
  const record = `${details.resourceType ?? ''}/${details.legacyId ?? ''}`;
  switch (guard.kind) {
    case 'create':
      if (found.exists)
        throw new ConflictError(`${record} already exists in ${where}`, undefined, found.version, {
          ...details,
          // What a server answers a create of an existing id.
          status: 409,
        });
      return;
    case 'update':
      if (!found.exists) {
        // The id names nothing: it is the caller's value only (an SSN passed as an id), so it is
        // neither quoted nor kept.
        throw new RejectedError(
          `${details.resourceType ?? ''}: no record has that legacy id in ${where} (${idShape(details.legacyId)})`,
          [],
          { ...details, legacyId: undefined, status: 404 },
        );
      }
      if (guard.version !== undefined && found.version !== guard.version) {
        throw new ConflictError(
          `${record} changed in ${where} since it was read`,
          guard.version,
          found.version,
          // What the server answers a stale If-Match; the library checked before asking.
          { ...details, status: 412 },
        );
      }
      return;
    case 'overwrite':
      return;
    case 'last-sync':
      if (link === undefined) {
        if (guard.targetIsAuthority === true && found.exists && !sameAsLastSync) {
          throw new ConflictError(
            `${record} exists in ${where}, the authority now, with content the mirror did not write`,
            undefined,
            found.version,
            details,
          );
        }
        if (guard.attempted === true && found.exists && !sameAsLastSync) {
          throw new ConflictError(
            `${record} exists in ${where}, unlinked, with content the mirror did not write (changed since an earlier attempt created it)`,
            undefined,
            found.version,
            details,
          );
        }
        return;
      }
      if (!found.exists)
        throw new ConflictError(
          `${record} was deleted in ${where} since the last sync`,
          linkedVersion,
          undefined,
          details,
        );
      // A version bump with identical content (a no-op save elsewhere) is not a change.
      if (linkedVersion !== undefined && found.version !== linkedVersion && !sameAsLastSync) {
        throw new ConflictError(
          `${record} changed in ${where} since the last sync`,
          linkedVersion,
          found.version,
          details,
        );
      }
  }
}

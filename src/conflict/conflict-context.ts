import type { Resource } from '@medplum/fhirtypes';
import type { Side } from '../errors.ts';
import type { Stage } from '../plan/stage.ts';

/**
 * Everything a resolver knows about a conflict: a record that both systems changed since their
 * last sync. Every copy is a FHIR resource (the legacy record mapped through the mapping's
 * `toFhir`, onto the Medplum copy so the fields the mapping does not cover are the same), so a
 * resolver compares like with like. `undefined` means the side has no copy (it was deleted).
 *
 * @example
 * ```ts
 * const resolver: ConflictResolver = (ctx) =>
 *   ctx.resourceType === 'Patient' && ctx.unit === 'north' ? { winner: 'medplum' } : { winner: ctx.authority };
 * ```
 */
export interface ConflictContext {
  /** The FHIR resource type. */
  readonly resourceType: string;
  /** The record's legacy id. */
  readonly legacyId: string;
  /** The Medplum id, when Medplum has the record. */
  readonly medplumId: string | undefined;
  /** The unit the record belongs to. */
  readonly unit: string;
  /** The unit's stage for this resource type when the conflict was found. */
  readonly stage: Stage;
  /** The side that is the source of truth in that stage. */
  readonly authority: Side;
  /**
   * The content both sides agreed on at the last sync; `undefined` when the writer keeps hashes
   * only (`baseSnapshot: 'hash-only'`) or the record was never synced.
   */
  readonly base: Resource | undefined;
  /** The legacy system's copy now, as FHIR. */
  readonly legacy: Resource | undefined;
  /** Medplum's copy now. */
  readonly medplum: Resource | undefined;
  /**
   * The change being mirrored: the copy of the side it was made on (the same object as `legacy`
   * or `medplum`). That is the authority for writes through the writer, and either side for
   * changes a feed picked up.
   */
  readonly incoming: Resource | undefined;
  /** When each side's copy last changed (ISO 8601), where the side records it. */
  readonly updatedAt: { readonly legacy: string | undefined; readonly medplum: string | undefined };
  /** When the two sides last agreed (ISO 8601), if they ever did. */
  readonly syncedAt: string | undefined;
  /** When the conflict was found (ISO 8601). */
  readonly detectedAt: string;
}

/**
 * What a resolver decides.
 *
 * - `{ winner: 'legacy' | 'medplum' }`: that side's copy (or its absence) is written to the other.
 * - `{ merged }`: this resource is written to both sides.
 * - `{ manual }`: nobody decides in code; the record waits in the dead-letter queue for an operator
 *   (`writer.resolveDeadLetter(id, resolution)`), and both sides stay as they are meanwhile.
 *
 * `by` names the resolver in events; the built-in resolvers set it.
 *
 * @example
 * ```ts
 * const keepMedplum: Resolution = { winner: 'medplum' };
 * const merged: Resolution = { merged: { resourceType: 'Patient', gender: 'female' }, by: 'my-merge' };
 * const review: Resolution = { manual: 'birth dates differ' };
 * ```
 */
export type Resolution =
  | { readonly winner: Side; readonly by?: string | undefined }
  | { readonly merged: Resource; readonly by?: string | undefined }
  | {
      readonly manual: string;
      /** Also create a FHIR `Task` in Medplum whose `focus` is the resource. */
      readonly task?: boolean | undefined;
      readonly by?: string | undefined;
    };

/**
 * A conflict policy: a function from the conflict to a decision, possibly async. Throwing makes
 * the entry a dead letter (a resolver's bug must not be retried forever, nor guessed around).
 *
 * @example
 * ```ts
 * const writer = new DualWriter({
 *   ...options,
 *   resolver: byResourceType({ Patient: threeWayMerge({ onCollision: 'manual' }) }, authorityWins),
 * });
 * ```
 */
export type ConflictResolver = (ctx: ConflictContext) => Resolution | Promise<Resolution>;

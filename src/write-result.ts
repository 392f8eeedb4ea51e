import type { Resource } from '@medplum/fhirtypes';
import type { Side } from './errors.ts';
import type { Stage } from './plan/stage.ts';

/**
 * What a write did on one side.
 *
 * - `created`, `updated`, `deleted`: the side was changed.
 * - `unchanged`: the side already held this state; nothing was written.
 * - `skipped`: the stage does not write this side.
 * - `pending`: the mirror to this side is in the outbox; the drainer will apply it.
 * - `failed`: the mirror to this side failed for good and is in the dead-letter queue.
 *
 * @example
 * ```ts
 * if (result.medplum.action === 'created') console.log(result.medplum.id);
 * ```
 */
export type SideAction = 'created' | 'updated' | 'deleted' | 'unchanged' | 'skipped' | 'pending' | 'failed';

/**
 * One side's part of a {@link WriteResult}.
 *
 * @example
 * ```ts
 * const outcome: SideOutcome = { action: 'updated', id: 'p-1', version: '4' };
 * ```
 */
export interface SideOutcome {
  /** What happened on this side. */
  readonly action: SideAction;
  /** The record's id on this side, when it has one. */
  readonly id: string | undefined;
  /** The record's version on this side after the write, when the side keeps versions. */
  readonly version: string | undefined;
}

/**
 * What a `DualWriter` write did on each side.
 *
 * @typeParam L - The legacy row type.
 * @typeParam R - The FHIR resource type.
 * @example
 * ```ts
 * const result = await writer.create('Patient', row, ctx);
 * console.log(result.stage, result.authority, result.legacy.action, result.medplum.action, result.mirror);
 * ```
 */
export interface WriteResult<L = unknown, R extends Resource = Resource> {
  /** The operation performed. */
  readonly operation: 'create' | 'update' | 'delete';
  /** The FHIR resource type. */
  readonly resourceType: string;
  /** The unit the call belonged to. */
  readonly unit: string;
  /** The unit's stage for this resource type when the call ran. */
  readonly stage: Stage;
  /** The side written first, the source of truth. */
  readonly authority: Side;
  /** The record's legacy id. */
  readonly legacyId: string;
  /** The record's Medplum id, when it has one. */
  readonly medplumId: string | undefined;
  /** What happened in the legacy system. */
  readonly legacy: SideOutcome;
  /** What happened in Medplum. */
  readonly medplum: SideOutcome;
  /**
   * The mirror's state: `applied` (the other side now matches), `unchanged` (it already did),
   * `pending` (durable in the outbox; the drainer applies it: always so in `async` mode, and
   * in `sync` mode when the mirror did not finish within its budget), `dead-letter` (failed for
   * good; only seen on a {@link MirrorError}'s result), or `not-required` (the stage mirrors
   * nothing).
   */
  readonly mirror: 'applied' | 'unchanged' | 'pending' | 'dead-letter' | 'not-required';
  /** Attempts the inline mirror took (0 when none was made). */
  readonly mirrorAttempts: number;
  /** The outbox entry that holds the mirror while it is pending. */
  readonly outboxId: string | undefined;
  /** The legacy row as stored, when the call wrote or read it. */
  readonly row: L | undefined;
  /** The Medplum resource as stored, when the call wrote or read it. */
  readonly resource: R | undefined;
}

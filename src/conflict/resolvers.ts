import type { Resource } from '@medplum/fhirtypes';
import { ConfigurationError } from '../errors.ts';
import {
  aFunction,
  anObject,
  checkOptions,
  checkValue,
  resourceTypeName,
  trueOrFalse,
  type Rule,
} from '../option-checks.ts';
import { mergeThreeWay, type MergeCollision } from './three-way-merge.ts';
import type { ConflictResolver, Resolution } from './conflict-context.ts';

/**
 * The authority's copy wins: it overwrites the other side. The default, and DESIGN's promise 3
 * (one authority at a time).
 *
 * @param ctx - The conflict.
 * @returns `{ winner: ctx.authority }`.
 * @example
 * ```ts
 * new DualWriter({ ...options, resolver: authorityWins });
 * ```
 */
export const authorityWins: ConflictResolver = (ctx) => ({ winner: ctx.authority, by: 'authority-wins' });

/**
 * The legacy system's copy wins, whatever the stage.
 *
 * @param _ctx - The conflict.
 * @returns `{ winner: 'legacy' }`.
 * @example
 * ```ts
 * new DualWriter({ ...options, resolver: legacyWins });
 * ```
 */
export const legacyWins: ConflictResolver = (_ctx) => ({ winner: 'legacy', by: 'legacy-wins' });

/**
 * Medplum's copy wins, whatever the stage.
 *
 * @param _ctx - The conflict.
 * @returns `{ winner: 'medplum' }`.
 * @example
 * ```ts
 * new DualWriter({ ...options, resolver: medplumWins });
 * ```
 */
export const medplumWins: ConflictResolver = (_ctx) => ({ winner: 'medplum', by: 'medplum-wins' });

/**
 * The copy changed last wins, by each side's last-updated time (Medplum's `meta.lastUpdated`,
 * the legacy record's `updatedAt`). Tie rule: when the times are equal, or either side does not
 * record one, the authority wins. A deleted copy has no time, so the authority decides there too.
 * Clocks of two systems differ; this is only as good as their agreement (seconds, usually).
 *
 * @param ctx - The conflict.
 * @returns The newer side, or the authority on a tie.
 * @example
 * ```ts
 * new DualWriter({ ...options, resolver: lastWriterWins });
 * ```
 */
export const lastWriterWins: ConflictResolver = (ctx) => {
  const legacy = timeOf(ctx.updatedAt.legacy);
  const medplum = timeOf(ctx.updatedAt.medplum);
  const by = 'last-writer-wins';
  if (legacy === undefined || medplum === undefined || legacy === medplum)
    return { winner: ctx.authority, by };
  return { winner: legacy > medplum ? 'legacy' : 'medplum', by };
};

/**
 * Who decides a field both sides changed differently in a {@link threeWayMerge}:
 * `'authority'` (the authority's value), `'manual'` (the whole record waits for an operator), or
 * a function returning the value to keep (`undefined` removes the field; for the whole record —
 * no base to merge against, or a side deleted it — `undefined` leaves the record to review).
 *
 * @example
 * ```ts
 * const policy: CollisionPolicy = (c) => (c.path === 'gender' ? c.theirs : c.ours);
 * ```
 */
export type CollisionPolicy = 'authority' | 'manual' | ((collision: MergeCollision) => unknown);

/**
 * Options of {@link threeWayMerge}.
 *
 * @example
 * ```ts
 * const options: ThreeWayMergeOptions = { onCollision: 'manual' };
 * ```
 */
export interface ThreeWayMergeOptions {
  /**
   * Who decides a field both sides changed differently.
   * @default 'authority'
   */
  readonly onCollision?: CollisionPolicy | undefined;
}

/**
 * Merges field by field against the last-synced base: a field one side changed keeps that
 * change, so edits to different fields on the two sides both survive. A field both sides
 * changed differently is decided by `onCollision`. Without a base (`baseSnapshot: 'hash-only'`,
 * or a record never synced) or when one side deleted the record, there is nothing to merge
 * field by field, and the whole record is one collision.
 *
 * @param options - The collision policy.
 * @returns The resolver.
 * @throws {@link ConfigurationError} naming `options`, an unknown option, or `onCollision`.
 * @example
 * ```ts
 * new DualWriter({ ...options, resolver: threeWayMerge({ onCollision: 'manual' }) });
 * ```
 */
export function threeWayMerge(options: ThreeWayMergeOptions = {}): ConflictResolver {
  const given = checkOptions(options, 'options', 'configuration', { onCollision: collisionPolicy });
  const policy = (given.onCollision as CollisionPolicy | undefined) ?? 'authority';
  const by = 'three-way-merge';
  return (ctx) => {
    const ours = ctx.authority === 'legacy' ? ctx.legacy : ctx.medplum;
    const theirs = ctx.authority === 'legacy' ? ctx.medplum : ctx.legacy;
    if (ctx.base === undefined || ours === undefined || theirs === undefined) {
      const why = ctx.base === undefined ? 'no base snapshot to merge against' : 'deleted on one side';
      if (policy === 'authority') return { winner: ctx.authority, by };
      if (policy === 'manual') return { manual: why, by };
      // The whole record is the collision: the function's value is the record, and no value
      // (it could not decide, or would delete the record) leaves it to a person.
      const kept = policy({ path: '', base: ctx.base, ours, theirs });
      return kept === undefined
        ? { manual: `${why}; the collision policy kept no record`, by }
        : merged(kept, by);
    }
    const result = mergeThreeWay(ctx.base, ours, theirs, {
      onCollision: policy === 'authority' ? 'ours' : policy,
    });
    if (result.merged === undefined) {
      return {
        manual: `changed differently on both sides: ${result.collisions.map((c) => c.path).join(', ')}`,
        by,
      };
    }
    return { merged: result.merged, by };
  };
}

/**
 * Queues every conflict for an operator: nothing is written, the record waits in the
 * dead-letter queue until `writer.resolveDeadLetter(id, resolution)`. With `task: true` the
 * writer also creates a FHIR `Task` in Medplum whose `focus` is the resource, for teams that
 * work their review queue in Medplum.
 *
 * @param options - Whether to create a `Task`.
 * @returns The resolver.
 * @throws {@link ConfigurationError} naming `options`, an unknown option, or `task`.
 * @example
 * ```ts
 * new DualWriter({ ...options, resolver: manualReview({ task: true }) });
 * ```
 */
export function manualReview(options: { readonly task?: boolean | undefined } = {}): ConflictResolver {
  const task = checkOptions(options, 'options', 'configuration', { task: trueOrFalse }).task === true;
  return () => ({ manual: 'manual review', task, by: 'manual-review' });
}

/**
 * Picks a resolver per resource type, with a fallback for the others.
 *
 * @param resolvers - Resolvers by FHIR resource type.
 * @param fallback - The resolver for other types.
 * @returns The combined resolver.
 * @throws {@link ConfigurationError} naming `resolvers`, a key that is not a resource type
 *   name, a resolver that is not a function, or `fallback`.
 * @example
 * ```ts
 * const resolver = byResourceType({ Patient: threeWayMerge(), Observation: legacyWins }, authorityWins);
 * ```
 */
export function byResourceType(
  resolvers: Readonly<Partial<Record<Resource['resourceType'], ConflictResolver>>>,
  fallback: ConflictResolver = authorityWins,
): ConflictResolver {
  checkValue(resolvers, anObject, 'resolvers', 'configuration');
  // A copy: a later change to the caller's object must not change the routing unchecked.
  const byType = new Map<string, ConflictResolver>();
  for (const [type, resolver] of Object.entries(resolvers)) {
    checkValue(type, resourceTypeName, `resolvers.${type}`, 'configuration');
    if (typeof resolver !== 'function') {
      throw new ConfigurationError(`resolvers.${type}`, resolver, 'must be a resolver function');
    }
    byType.set(type, resolver);
  }
  checkValue(fallback, aFunction, 'fallback', 'configuration');
  return (ctx) => (byType.get(ctx.resourceType) ?? fallback)(ctx);
}

const collisionPolicy: Rule<CollisionPolicy> = {
  test: (value): value is CollisionPolicy =>
    value === 'authority' || value === 'manual' || typeof value === 'function',
  problem: "must be 'authority', 'manual' or a function",
};

function merged(resource: unknown, by: string): Resolution {
  return { merged: resource as Resource, by };
}

function timeOf(iso: string | undefined): number | undefined {
  if (iso === undefined) return undefined;
  const time = Date.parse(iso);
  return Number.isNaN(time) ? undefined : time;
}

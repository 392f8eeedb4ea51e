import type { Resource } from '@medplum/fhirtypes';
import { formatPath } from '../divergence/diff.ts';
import {
  compileNormaliseOptions,
  normaliseCompiled,
  type NormaliseOptions,
} from '../divergence/normalise.ts';
import { ConfigurationError, InvalidInputError } from '../errors.ts';
import { anObject, checkValue } from '../option-checks.ts';

/**
 * A field both sides changed, differently, since the base: what an `onCollision` function is
 * given. Values are as the resources hold them (not normalised); `undefined` means absent.
 *
 * @example
 * ```ts
 * const collision: MergeCollision = { path: 'gender', base: 'unknown', ours: 'female', theirs: 'other' };
 * ```
 */
export interface MergeCollision {
  /** Where: `gender`, `maritalStatus.coding`; `''` is the whole record. */
  readonly path: string;
  /** The value in the base (last-synced) copy. */
  readonly base: unknown;
  /** The value in `ours`. */
  readonly ours: unknown;
  /** The value in `theirs`. */
  readonly theirs: unknown;
}

/**
 * Who decides a collision: `'ours'` or `'theirs'` keeps that side's value, `'manual'` leaves the
 * record for a person (no merged resource), and a function returns the value to keep
 * (`undefined` removes the field).
 *
 * @example
 * ```ts
 * const policy: MergeCollisionPolicy = (c) => (c.path === 'telecom' ? c.theirs : c.ours);
 * ```
 */
export type MergeCollisionPolicy = 'ours' | 'theirs' | 'manual' | ((collision: MergeCollision) => unknown);

/**
 * Options of {@link mergeThreeWay}: the collision policy, and how values are compared (the
 * {@link NormaliseOptions} of the divergence checks, so what is noise there is noise here).
 *
 * @example
 * ```ts
 * const options: MergeThreeWayOptions = { onCollision: 'ours', unordered: ['identifier', 'telecom'] };
 * ```
 */
export interface MergeThreeWayOptions extends NormaliseOptions {
  /** Who decides a field both sides changed differently. Required: there is no safe default. */
  readonly onCollision: MergeCollisionPolicy;
}

/**
 * A collision and how it was decided: `'function'` when an `onCollision` function chose.
 *
 * @example
 * ```ts
 * const decided: DecidedCollision = { path: 'birthDate', decidedBy: 'manual' };
 * ```
 */
export interface DecidedCollision {
  /** As in {@link MergeCollision}. */
  readonly path: string;
  /** The policy that decided it. */
  readonly decidedBy: 'ours' | 'theirs' | 'manual' | 'function';
}

/**
 * What {@link mergeThreeWay} returns.
 *
 * @example
 * ```ts
 * const { merged, collisions, manual } = mergeThreeWay(base, ours, theirs, { onCollision: 'manual' });
 * if (manual) console.log(collisions.map((c) => c.path));
 * ```
 */
export interface MergeResult<T extends Resource = Resource> {
  /** The merged resource; `undefined` when `manual`. */
  readonly merged: T | undefined;
  /** Every collision, in the order met, with who decided it. Empty when the changes were disjoint. */
  readonly collisions: readonly DecidedCollision[];
  /** At least one collision was left to a person (`onCollision: 'manual'`). */
  readonly manual: boolean;
}

type Json = Record<string, unknown>;

interface MergeState {
  readonly policy: MergeCollisionPolicy;
  readonly collisions: DecidedCollision[];
  manual: boolean;
}

/**
 * Merges two changed copies of a FHIR resource field by field against the copy both last agreed
 * on. Pure: no I/O, inputs never modified.
 *
 * The roles, as the dual writer uses them: `base` is the last-synced snapshot (the link's base),
 * `ours` the authority's current copy, `theirs` the other system's current copy. For each field:
 * changed on one side only → that side's value; changed on both to the same value → that value;
 * changed on both differently → a collision, decided by `onCollision`. Changed means different
 * in normal form ({@link normalise} with these options), so key order, empty values, the
 * configured dateTime precision and order of unordered arrays are not changes.
 *
 * Granularity: objects are merged field by field, recursively (a collision inside `maritalStatus`
 * is reported at `maritalStatus.coding`); arrays are one value each, because FHIR arrays (`name`,
 * `telecom`, `identifier`) have no stable keys to match elements by — an array listed in
 * `unordered` is compared as a multiset, so reordering it is no change. `id` and `meta`, the
 * fields `ignore` lists and a generated `text` are not compared and come from `ours`. Unchanged
 * fields keep `ours`'s representation. Without a `base` every field present on one side only is
 * taken, and every field the two sides hold differently is a collision.
 *
 * @param base - The last-synced copy, or `undefined` when none was kept.
 * @param ours - The authority's copy; supplies `id`, `meta` and ignored fields.
 * @param theirs - The other side's copy.
 * @param options - The collision policy and the normalisation options.
 * @returns The merged resource (or `undefined` when a person must decide), and the collisions.
 * @throws {@link ConfigurationError} when `options` is not an object or `onCollision` not a policy.
 * @throws {@link InvalidInputError} when the copies are not resources of one type.
 * @example
 * ```ts
 * const base = { resourceType: 'Patient', gender: 'female', birthDate: '1980-05-06' };
 * const ours = { ...base, gender: 'other' }; // the authority changed gender
 * const theirs = { ...base, birthDate: '1980-06-05' }; // the other side changed birthDate
 * mergeThreeWay(base, ours, theirs, { onCollision: 'manual' }).merged;
 * // { resourceType: 'Patient', gender: 'other', birthDate: '1980-06-05' }
 * ```
 */
export function mergeThreeWay<T extends Resource>(
  base: T | undefined,
  ours: T,
  theirs: T,
  options: MergeThreeWayOptions,
): MergeResult<T> {
  checkValue(options, anObject, 'options', 'configuration');
  const policy: unknown = options.onCollision;
  if (policy !== 'ours' && policy !== 'theirs' && policy !== 'manual' && typeof policy !== 'function') {
    throw new ConfigurationError('onCollision', policy, "must be 'ours', 'theirs', 'manual' or a function");
  }
  checkResource('ours', ours, ours);
  checkResource('theirs', theirs, ours);
  if (base !== undefined) checkResource('base', base, ours);
  const compiled = compileNormaliseOptions(options);
  const state: MergeState = { policy: options.onCollision, collisions: [], manual: false };
  const merged = mergeObject(
    [base, ours, theirs],
    [
      asObject(base === undefined ? undefined : normaliseCompiled(base, compiled)),
      asObject(normaliseCompiled(ours, compiled)),
      asObject(normaliseCompiled(theirs, compiled)),
    ],
    [],
    state,
  );
  return {
    merged: state.manual ? undefined : (merged as T),
    collisions: state.collisions,
    manual: state.manual,
  };
}

/** Raw values of base, ours, theirs at one path. */
type Triple = readonly [unknown, unknown, unknown];
/** Their normal forms at the same path. */
type NormalTriple = readonly [Json | undefined, Json | undefined, Json | undefined];

function mergeObject(raw: Triple, normal: NormalTriple, path: readonly string[], state: MergeState): Json {
  const [rawBase, rawOurs, rawTheirs] = raw.map(asObject);
  const out: Json = {};
  const keys = new Set([
    ...Object.keys(rawOurs ?? {}),
    ...Object.keys(rawTheirs ?? {}),
    ...Object.keys(rawBase ?? {}),
  ]);
  for (const key of keys) {
    const value = mergeField(
      [own(rawBase, key), own(rawOurs, key), own(rawTheirs, key)],
      [own(normal[0], key), own(normal[1], key), own(normal[2], key)],
      [...path, key],
      state,
    );
    if (value === undefined) continue;
    // Plain assignment of `__proto__` would set the prototype and lose the field.
    Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function mergeField(raw: Triple, normal: Triple, path: readonly string[], state: MergeState): unknown {
  const [base, ours, theirs] = normal.map((value) =>
    value === undefined ? undefined : JSON.stringify(value),
  );
  // Fields absent from the normal forms (id, meta, ignored paths, empty values) compare equal
  // here, so they take ours's raw value.
  if (ours === theirs || theirs === base) return raw[1];
  if (ours === base) return raw[2];
  const [normalBase, normalOurs, normalTheirs] = normal.map(asObject);
  if (normalOurs !== undefined && normalTheirs !== undefined) {
    return mergeObject(raw, [normalBase, normalOurs, normalTheirs], path, state);
  }
  return decide({ path: formatPath(path), base: raw[0], ours: raw[1], theirs: raw[2] }, state);
}

function decide(collision: MergeCollision, state: MergeState): unknown {
  const { policy } = state;
  if (typeof policy === 'function') {
    state.collisions.push({ path: collision.path, decidedBy: 'function' });
    return policy(collision);
  }
  state.collisions.push({ path: collision.path, decidedBy: policy });
  if (policy === 'manual') state.manual = true;
  return policy === 'theirs' ? collision.theirs : collision.ours;
}

/** A field's value, never one inherited from Object.prototype (`toString`, `constructor`). */
function own(object: Json | undefined, key: string): unknown {
  return object !== undefined && Object.hasOwn(object, key) ? object[key] : undefined;
}

function asObject(value: unknown): Json | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : undefined;
}

function checkResource(field: string, resource: unknown, ours: Resource): void {
  if (asObject(resource) === undefined || typeof (resource as Json).resourceType !== 'string') {
    throw new InvalidInputError(field, 'must be a FHIR resource (an object with a resourceType)');
  }
  if ((resource as Resource).resourceType !== ours.resourceType) {
    throw new InvalidInputError(`${field}.resourceType`, `must match ours (${ours.resourceType})`);
  }
}

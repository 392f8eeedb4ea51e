import microdiff from 'microdiff';
import {
  compileNormaliseOptions,
  normaliseCompiled,
  type NormaliseOptions,
  type PathRules,
} from './normalise.ts';
import { valueHash, type ValueHashOptions } from '../events/redact.ts';
import { anObject, checkValue, trueOrFalse, type Rule } from '../option-checks.ts';

/**
 * What happened at a path, going from the first copy to the second.
 *
 * @example
 * ```ts
 * const kind: DiffKind = 'changed';
 * ```
 */
export type DiffKind = 'added' | 'removed' | 'changed';

/**
 * One difference between two copies, safe to log: the path and the kind, and — only when asked
 * for with `hashValues` — short hashes of the values ({@link valueHash}).
 *
 * @example
 * ```ts
 * const entry: DiffEntry = { path: 'name[0].given[1]', kind: 'changed' };
 * ```
 */
export interface DiffEntry {
  /** JSON-path-ish: `name[0].given[1]`; `''` for the whole value; the array's path for an unordered array. */
  readonly path: string;
  /** `added`: only in the second copy; `removed`: only in the first; `changed`: in both, different. */
  readonly kind: DiffKind;
  /** Hash of the first copy's (normalised) value; with `hashValues`, when the path is in it. */
  readonly before?: string;
  /** Hash of the second copy's (normalised) value; with `hashValues`, when the path is in it. */
  readonly after?: string;
}

/**
 * A difference with the values themselves, from `revealValues: true`. These carry PHI: keep
 * them out of logs and events.
 *
 * @example
 * ```ts
 * const entry: RevealedDiffEntry = { path: 'birthDate', kind: 'changed', before: '1980-05-06', after: '1980-06-05' };
 * ```
 */
export interface RevealedDiffEntry {
  /** As in {@link DiffEntry}. */
  readonly path: string;
  /** As in {@link DiffEntry}. */
  readonly kind: DiffKind;
  /** The first copy's normalised value at the path, when present. */
  readonly before?: unknown;
  /** The second copy's normalised value at the path, when present. */
  readonly after?: unknown;
}

/**
 * Options of {@link diff}: how to normalise both copies, and what to say about values. A union,
 * so asking for hashes and for values at once does not compile.
 *
 * @example
 * ```ts
 * const options: DiffOptions = { unordered: ['telecom'], hashValues: { key: secret } };
 * ```
 */
export type DiffOptions = NormaliseOptions &
  (
    | {
        /**
         * Attach {@link valueHash}es of the values (`true`, or the hash options with an HMAC key).
         * @default false
         */
        readonly hashValues?: boolean | ValueHashOptions | undefined;
        /** @default false */
        readonly revealValues?: false | undefined;
      }
    | {
        /**
         * Attach the values themselves (PHI). For a person looking at one record, never for logs.
         * @default false
         */
        readonly revealValues: true;
        readonly hashValues?: false | undefined;
      }
  );

type Segment = string | number;

/**
 * The paths at which two copies of a record differ, compared in normal form ({@link normalise}
 * with the same options), so key order, empty values, bookkeeping and the configured noise are
 * not differences. Arrays are compared index by index, except unordered ones, which are reported
 * once at the array's path. By default an entry holds no value at all: it is what reaches logs
 * and events.
 *
 * @param a - The first copy (e.g. the authority's).
 * @param b - The second copy.
 * @param options - Normalisation options, plus `hashValues` or `revealValues`.
 * @returns The differences, in a deterministic order; empty when the copies agree.
 * @example
 * ```ts
 * diff(
 *   { resourceType: 'Patient', name: [{ given: ['Jane', 'Q'] }] },
 *   { resourceType: 'Patient', name: [{ given: ['Jane', 'R'] }], gender: 'female' },
 * );
 * // [{ path: 'name[0].given[1]', kind: 'changed' }, { path: 'gender', kind: 'added' }]
 * ```
 */
export function diff(
  a: unknown,
  b: unknown,
  options: DiffOptions & { readonly revealValues: true },
): RevealedDiffEntry[];
export function diff(
  a: unknown,
  b: unknown,
  options?: DiffOptions & { readonly revealValues?: false | undefined },
): DiffEntry[];
export function diff(a: unknown, b: unknown, options?: DiffOptions): RevealedDiffEntry[] {
  const compiled = compileNormaliseOptions(options);
  const before = normaliseCompiled(a, compiled);
  const after = normaliseCompiled(b, compiled);
  const describe = valueDescriber(options);
  if (!isContainer(before) || !isContainer(after) || Array.isArray(before) !== Array.isArray(after)) {
    if (JSON.stringify(before) === JSON.stringify(after)) return [];
    const kind: DiffKind = before === undefined ? 'added' : after === undefined ? 'removed' : 'changed';
    return [entry('', kind, before, after, describe)];
  }
  // microdiff (zero dependencies, ~100 lines) walks two JSON trees and reports paths as segment
  // arrays, which is all this needs. It tests keys with `in`, which sees inherited names
  // (`toString`, `constructor`), so it gets prototype-free copies; values are read from the
  // normal forms by path, never from its output.
  const entries: RevealedDiffEntry[] = [];
  const collapsed = new Set<string>();
  for (const change of microdiff(bare(before), bare(after), { cyclesFix: false })) {
    const cut = unorderedPrefix(change.path, compiled.rules);
    const at = cut === undefined ? change.path : change.path.slice(0, cut);
    const path = formatPath(at);
    if (cut !== undefined) {
      if (collapsed.has(path)) continue;
      collapsed.add(path);
    }
    const kind: DiffKind =
      cut !== undefined || change.type === 'CHANGE'
        ? 'changed'
        : change.type === 'CREATE'
          ? 'added'
          : 'removed';
    entries.push(entry(path, kind, valueAt(before, at), valueAt(after, at), describe));
  }
  return entries;
}

type Describer = ((value: unknown) => unknown) | undefined;

const hashRule: Rule<boolean | ValueHashOptions> = {
  test: (value): value is boolean | ValueHashOptions => typeof value === 'boolean' || anObject.test(value),
  problem: 'must be true, false or the hash options ({ key })',
  // A key passed where its options were expected must not reach a log.
  secret: true,
};

function valueDescriber(options: DiffOptions | undefined): Describer {
  const reveal: unknown = options?.revealValues;
  const hashes: unknown = options?.hashValues;
  if (reveal !== undefined) checkValue(reveal, trueOrFalse, 'revealValues', 'configuration');
  if (hashes !== undefined) checkValue(hashes, hashRule, 'hashValues', 'configuration');
  if (reveal === true) return (value) => value;
  const hashing = options?.hashValues;
  if (hashing === undefined || hashing === false) return undefined;
  const hashOptions = hashing === true ? undefined : hashing;
  return (value) => valueHash(value, hashOptions);
}

function entry(
  path: string,
  kind: DiffKind,
  before: unknown,
  after: unknown,
  describe: Describer,
): RevealedDiffEntry {
  if (describe === undefined) return { path, kind };
  return {
    path,
    kind,
    ...(before === undefined ? {} : { before: describe(before) }),
    ...(after === undefined ? {} : { after: describe(after) }),
  };
}

function isContainer(value: unknown): value is Record<string, unknown> | unknown[] {
  return typeof value === 'object' && value !== null;
}

/** The length of the path up to an unordered array the change lies inside, if any. */
function unorderedPrefix(path: readonly Segment[], rules: PathRules | undefined): number | undefined {
  let node = rules;
  for (let i = 0; i < path.length && node !== undefined; i++) {
    const segment = path[i];
    if (typeof segment !== 'string') continue;
    node = node.children.get(segment);
    if (node?.unordered === true && typeof path[i + 1] === 'number') return i + 1;
  }
  return undefined;
}

function valueAt(root: unknown, path: readonly Segment[]): unknown {
  let value = root;
  for (const segment of path) {
    if (typeof value !== 'object' || value === null || !Object.hasOwn(value, segment)) return undefined;
    value = (value as Record<Segment, unknown>)[segment];
  }
  return value;
}

/** A copy whose objects have no prototype, for microdiff's `key in object` tests. */
function bare<T extends Record<string, unknown> | unknown[]>(value: T): T {
  const copy = (field: unknown): unknown => {
    if (typeof field !== 'object' || field === null) return field;
    if (Array.isArray(field)) return field.map(copy);
    const out = Object.create(null) as Record<string, unknown>;
    for (const [key, inner] of Object.entries(field)) out[key] = copy(inner);
    return out;
  };
  return copy(value) as T;
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/**
 * Writes a path as `name[0].given[1]`; a key that is not an identifier as `["a key"]`. Internal:
 * the three-way merge names collisions the same way.
 *
 * @param path - Object keys and array indices from the root.
 * @returns The path string; `''` for the root.
 * @example
 * ```ts
 * formatPath(['name', 0, 'given', 1]); // 'name[0].given[1]'
 * ```
 */
export function formatPath(path: readonly Segment[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (IDENTIFIER.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

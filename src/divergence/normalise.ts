import { createHash } from 'node:crypto';
import { ConfigurationError } from '../errors.ts';
import { anObject, checkValue } from '../option-checks.ts';

/**
 * How to compare two copies of a record beyond the defaults. Paths are dotted FHIR element
 * names from the resource's root, without the resource type and without array indices: a
 * segment that crosses an array applies to every element (`name.period` is the `period` of
 * every `name`). A path names one place; `extension` is the resource's own extensions, not
 * those of nested elements (name those as `name.extension`, `address.extension`, …).
 *
 * Use one set of options per deployment: hashes made with different options differ.
 *
 * @example
 * ```ts
 * const options: NormaliseOptions = {
 *   ignore: ['extension', 'name.period'],
 *   unordered: ['identifier', 'telecom', 'address', 'name'],
 *   dateTimePrecision: 'millisecond',
 * };
 * ```
 */
export interface NormaliseOptions {
  /**
   * Paths dropped before comparing, on top of the defaults (`id`, `meta`, and `text` whose
   * `status` is `generated`).
   * @default []
   */
  readonly ignore?: readonly string[] | undefined;
  /**
   * Arrays compared regardless of order: their elements, once normalised, are sorted by their
   * canonical JSON. Duplicates are kept (the array is compared as a multiset).
   * @default []
   */
  readonly unordered?: readonly string[] | undefined;
  /**
   * How FHIR `instant` and `dateTime` strings with a time are compared. Any string of the form
   * `YYYY-MM-DDThh:mm:ss[.fraction](Z|±hh:mm)` is converted to UTC and written as
   * `YYYY-MM-DDThh:mm:ssZ` (`'second'`, the fraction dropped) or `YYYY-MM-DDThh:mm:ss.sssZ`
   * (`'millisecond'`, the fraction truncated, not rounded, to three digits and padded with
   * zeros), so `2026-01-02T03:04:05Z`, `2026-01-02T03:04:05.000Z` and
   * `2026-01-02T04:04:05+01:00` compare equal. Dates without a time (`2026`, `2026-01`,
   * `2026-01-02`), times without a date, strings without a time zone and impossible dates are
   * left as they are. The shape decides, not the element's FHIR type: a `valueString` that
   * holds an instant is converted too.
   *
   * `'as-is'` compares the strings exactly: it is the default because it keeps every stored
   * content hash unchanged and costs nothing on the hot path.
   * @default 'as-is'
   */
  readonly dateTimePrecision?: 'second' | 'millisecond' | 'as-is' | undefined;
}

/**
 * Compiled options: one node per path segment. Internal; the diff walks it to find unordered
 * arrays.
 */
export interface PathRules {
  /** The value at this path is dropped. */
  readonly ignored: boolean;
  /** The array at this path is sorted by canonical JSON. */
  readonly unordered: boolean;
  /** Rules of the fields below, by name. */
  readonly children: ReadonlyMap<string, PathRules>;
}

/** Compiled {@link NormaliseOptions}. Internal. */
export interface CompiledNormalise {
  /** Rules from the root, or `undefined` when no path has one (the fast path). */
  readonly rules: PathRules | undefined;
  /** `undefined` for `'as-is'`. */
  readonly precision: 'second' | 'millisecond' | undefined;
}

interface MutableRules {
  ignored: boolean;
  unordered: boolean;
  children: Map<string, MutableRules>;
}

const SEGMENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
const AS_IS: CompiledNormalise = { rules: undefined, precision: undefined };
const compiledCache = new WeakMap<NormaliseOptions, CompiledNormalise>();

/**
 * Validates and compiles options once per options object (cached by identity).
 *
 * @param options - The options, or `undefined` for the defaults.
 * @returns The compiled form.
 * @throws {@link ConfigurationError} naming `options` or the option at fault.
 * @example
 * ```ts
 * const compiled = compileNormaliseOptions({ unordered: ['telecom'] });
 * ```
 */
export function compileNormaliseOptions(options: NormaliseOptions | undefined): CompiledNormalise {
  if (options === undefined) return AS_IS;
  const cached = compiledCache.get(options);
  if (cached !== undefined) return cached;
  checkValue(options, anObject, 'options', 'configuration');
  const root: MutableRules = { ignored: false, unordered: false, children: new Map() };
  let any = false;
  for (const field of ['ignore', 'unordered'] as const) {
    const paths: unknown = options[field];
    if (paths === undefined) continue;
    if (!Array.isArray(paths)) throw new ConfigurationError(field, paths, 'must be an array of paths');
    for (const [i, path] of (paths as unknown[]).entries()) {
      if (typeof path !== 'string' || !path.split('.').every((s) => SEGMENT.test(s))) {
        throw new ConfigurationError(
          `${field}[${i}]`,
          path,
          'must be a dotted path of FHIR element names, e.g. name.period',
        );
      }
      let node = root;
      for (const segment of path.split('.')) {
        let child = node.children.get(segment);
        if (child === undefined) {
          child = { ignored: false, unordered: false, children: new Map() };
          node.children.set(segment, child);
        }
        node = child;
      }
      if (field === 'ignore') node.ignored = true;
      else node.unordered = true;
      any = true;
    }
  }
  // Checked at run time too: options may come from JavaScript or from a configuration file.
  const precision: unknown = options.dateTimePrecision ?? 'as-is';
  if (precision !== 'as-is' && precision !== 'second' && precision !== 'millisecond') {
    throw new ConfigurationError(
      'dateTimePrecision',
      precision,
      "must be 'second', 'millisecond' or 'as-is'",
    );
  }
  const compiled: CompiledNormalise = {
    rules: any ? root : undefined,
    precision: precision === 'as-is' ? undefined : precision,
  };
  compiledCache.set(options, compiled);
  return compiled;
}

/**
 * The comparable form of a FHIR resource. By default: top-level `id` and `meta` dropped, a
 * top-level `text` dropped when its `status` is `generated` (narrative a server or a mapping
 * derives from the data; any other narrative is content and kept), `null`, empty strings,
 * arrays and objects dropped (bottom-up, so an object left empty goes too), keys sorted. Options
 * add ignored paths, order-insensitive arrays and dateTime precision. Two copies of a record
 * agree when their normalised forms are equal; normalising twice changes nothing.
 *
 * @param resource - A FHIR resource (or any JSON value).
 * @param options - What else to ignore or canonicalise; the defaults when omitted.
 * @returns The normalised JSON value, or `undefined` when nothing is left.
 * @example
 * ```ts
 * normalise({ resourceType: 'Patient', id: '1', meta: { versionId: '2' }, name: [] });
 * // { resourceType: 'Patient' }
 * normalise(
 *   { resourceType: 'Patient', telecom: [{ value: 'b' }, { value: 'a' }] },
 *   { unordered: ['telecom'] },
 * );
 * // { resourceType: 'Patient', telecom: [{ value: 'a' }, { value: 'b' }] }
 * ```
 */
export function normalise(resource: unknown, options?: NormaliseOptions): unknown {
  return normaliseCompiled(resource, compileNormaliseOptions(options));
}

/**
 * {@link normalise} with compiled options. Internal.
 *
 * @param resource - A FHIR resource (or any JSON value).
 * @param compiled - From {@link compileNormaliseOptions}.
 * @returns The normalised JSON value, or `undefined` when nothing is left.
 * @example
 * ```ts
 * normaliseCompiled(patient, compileNormaliseOptions(options));
 * ```
 */
export function normaliseCompiled(resource: unknown, compiled: CompiledNormalise): unknown {
  if (resource === null || typeof resource !== 'object' || Array.isArray(resource)) {
    return clean(resource, compiled.rules, compiled.precision);
  }
  return cleanObject(resource as Record<string, unknown>, compiled.rules, compiled.precision, true);
}

function clean(
  value: unknown,
  rules: PathRules | undefined,
  precision: CompiledNormalise['precision'],
): unknown {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'string') {
    if (value === '') return undefined;
    return precision === undefined ? value : canonicalDateTime(value, precision);
  }
  if (Array.isArray(value)) {
    const items: unknown[] = [];
    for (const item of value) {
      const cleaned = clean(item, rules, precision);
      if (cleaned !== undefined) items.push(cleaned);
    }
    if (items.length === 0) return undefined;
    return rules?.unordered === true ? sortByCanonicalJson(items) : items;
  }
  if (typeof value === 'object')
    return cleanObject(value as Record<string, unknown>, rules, precision, false);
  return value;
}

function cleanObject(
  value: Record<string, unknown>,
  rules: PathRules | undefined,
  precision: CompiledNormalise['precision'],
  root: boolean,
): Record<string, unknown> | undefined {
  const out: Record<string, unknown> = {};
  let empty = true;
  for (const key of Object.keys(value).sort()) {
    const field = value[key];
    if (root && isBookkeeping(key, field)) continue;
    const child = rules?.children.get(key);
    if (child?.ignored === true) continue;
    const cleaned = clean(field, child, precision);
    if (cleaned === undefined) continue;
    // Plain assignment of `__proto__` would set the prototype and lose the field.
    if (key === '__proto__')
      Object.defineProperty(out, key, {
        value: cleaned,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    else out[key] = cleaned;
    empty = false;
  }
  return empty ? undefined : out;
}

/** Top-level fields that say nothing about a record's content: server bookkeeping. */
function isBookkeeping(key: string, value: unknown): boolean {
  if (key === 'id' || key === 'meta') return true;
  return (
    key === 'text' &&
    typeof value === 'object' &&
    value !== null &&
    'status' in value &&
    value.status === 'generated'
  );
}

function sortByCanonicalJson(items: unknown[]): unknown[] {
  // Normalised values have sorted keys, so JSON.stringify is canonical; compared by code unit
  // (not localeCompare) so the order is the same on every machine.
  const keyed = items.map((item) => [JSON.stringify(item), item] as const);
  keyed.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return keyed.map(([, item]) => item);
}

// FHIR dateTime/instant with a time and a zone: seconds are required by the FHIR regex.
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$/;

function canonicalDateTime(value: string, precision: 'second' | 'millisecond'): string {
  // Cheap pre-check: most strings are not date-times.
  if (value.length < 20 || value.charCodeAt(10) !== 84 /* T */) return value;
  const match = DATE_TIME.exec(value);
  if (match === null) return value;
  const [, y, mo, d, h, mi, s, fraction = '', zone = 'Z'] = match;
  const year = Number(y);
  const month = Number(mo) - 1;
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  if (hour > 23 || minute > 59 || second > 59) return value; // leap seconds and nonsense stay as written
  const offset =
    zone === 'Z'
      ? 0
      : (zone.startsWith('-') ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4)));
  const date = new Date(0);
  date.setUTCFullYear(year, month, day);
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month || date.getUTCDate() !== day)
    return value;
  date.setUTCHours(hour, minute - offset, second, 0);
  const utcYear = date.getUTCFullYear();
  if (utcYear < 1 || utcYear > 9999) return value;
  // toISOString writes years 0000–9999 with four digits and always three fraction digits.
  const iso = date.toISOString().slice(0, 19);
  return precision === 'second' ? `${iso}Z` : `${iso}.${fraction.slice(0, 3).padEnd(3, '0')}Z`;
}

/**
 * A stable hash of a resource's normalised content, used to tell whether a copy changed since
 * the last sync and whether a write would change anything. With the default options the hash
 * of a resource is the same across releases unless its normal form changes; pass the same
 * options wherever hashes are compared.
 *
 * @param resource - A FHIR resource.
 * @param options - Normalisation options; the defaults when omitted.
 * @returns `sha256:` and the hex digest.
 * @example
 * ```ts
 * contentHash(a) === contentHash(b); // the two copies agree
 * ```
 */
export function contentHash(resource: unknown, options?: NormaliseOptions): string {
  return `sha256:${createHash('sha256')
    .update(JSON.stringify(normalise(resource, options) ?? null))
    .digest('hex')}`;
}

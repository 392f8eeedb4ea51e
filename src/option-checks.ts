import { ConfigurationError, InvalidInputError } from './errors.ts';

/**
 * The one way the library checks what a caller hands it: an options object (undefined or a
 * plain object, with known keys only, each checked by a {@link Rule}) and single values. Options
 * arrive from JavaScript callers and configuration files too, so everything is checked as an
 * unknown value. Internal: not exported from the package.
 *
 * Who is at fault decides the error: options given to a constructor or factory are a
 * {@link ConfigurationError} (`field: problem (got value)`); a call's arguments are an
 * {@link InvalidInputError} (`field: problem, got kind`, never echoing the value).
 */

/**
 * Which error a refused value makes: `configuration` for options given to a constructor or a
 * factory (a {@link ConfigurationError}), `input` for a call's arguments (an
 * {@link InvalidInputError}).
 *
 * @example
 * ```ts
 * const blame: Blame = 'input';
 * ```
 */
export type Blame = 'configuration' | 'input';

/**
 * A check of one value: a type guard, and the problem to report when it fails, worded as the
 * library words problems (`must be a positive integer`).
 *
 * @typeParam T - What the value is when the check passes.
 * @example
 * ```ts
 * const rate: Rule<number> = { test: (v): v is number => typeof v === 'number' && v >= 0 && v <= 1, problem: 'must be a number from 0 to 1' };
 * ```
 */
export interface Rule<T = unknown> {
  /** Whether the value is acceptable. */
  readonly test: (value: unknown) => value is T;
  /** What is wrong with a value that fails, e.g. `must be true or false`. */
  readonly problem: string;
  /**
   * Whether the value may be a secret (a key): a {@link ConfigurationError} then shows only its
   * kind. An {@link InvalidInputError} never shows a refused value, whatever the rule.
   * @default false
   */
  readonly secret?: boolean | undefined;
}

/**
 * The rules of an options object: its known keys, each with the rule its value must pass when
 * it is not `undefined`.
 *
 * @example
 * ```ts
 * const shape: Shape = { reason: nonEmptyString, force: trueOrFalse };
 * ```
 */
export type Shape = Readonly<Record<string, Rule>>;

/**
 * A non-empty string that is not only white space.
 *
 * @example
 * ```ts
 * checkValue(id, nonEmptyString, 'id', 'input');
 * ```
 */
export const nonEmptyString: Rule<string> = {
  test: (value): value is string => typeof value === 'string' && value.trim() !== '',
  problem: 'must be a non-empty string',
};

/** The longest unit name (and `by`) the journal stores. */
export const MAX_NAME_LENGTH = 200;
/** The longest reason or note the journal stores. */
export const MAX_TEXT_LENGTH = 1000;

/**
 * A unit's name, or who did something (`by`): a non-empty string of at most
 * {@link MAX_NAME_LENGTH} characters. The journal keeps it in every outbox entry, event and plan
 * row; without a bound a caller could store megabytes per row.
 *
 * @example
 * ```ts
 * checkValue(unit, unitName, 'unit', 'input');
 * ```
 */
export const unitName: Rule<string> = {
  test: (value): value is string => nonEmptyString.test(value) && value.length <= MAX_NAME_LENGTH,
  problem: `must be a non-empty string of at most ${MAX_NAME_LENGTH} characters`,
};

/**
 * A reason or a note kept in the journal (a stage change's, a pause's, a discard's, a
 * cancellation's): a non-empty string of at most {@link MAX_TEXT_LENGTH} characters.
 *
 * @example
 * ```ts
 * checkValue(note, storedText, 'note', 'input');
 * ```
 */
export const storedText: Rule<string> = {
  test: (value): value is string => nonEmptyString.test(value) && value.length <= MAX_TEXT_LENGTH,
  problem: `must be a non-empty string of at most ${MAX_TEXT_LENGTH} characters`,
};

/**
 * `true` or `false`, nothing truthy or falsy.
 *
 * @example
 * ```ts
 * checkOptions(options, 'options', 'configuration', { task: trueOrFalse });
 * ```
 */
export const trueOrFalse: Rule<boolean> = {
  test: (value): value is boolean => typeof value === 'boolean',
  problem: 'must be true or false',
};

/**
 * A function.
 *
 * @example
 * ```ts
 * checkOptions(options, 'options', 'configuration', { onError: aFunction });
 * ```
 */
export const aFunction: Rule<(...args: never[]) => unknown> = {
  test: (value): value is (...args: never[]) => unknown => typeof value === 'function',
  problem: 'must be a function',
};

/**
 * An object holding its values as properties (a row, a resource, an options object; a class
 * instance too): not `null`, and not an array or a collection whose entries are no properties
 * (a `Map`, a `Set`), which would pass for an object with no options at all.
 *
 * @example
 * ```ts
 * checkValue(row, anObject, 'row', 'input');
 * ```
 */
export const anObject: Rule<Record<string, unknown>> = {
  test: (value): value is Record<string, unknown> =>
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    !(value instanceof Map) &&
    !(value instanceof Set),
  problem: 'must be an object',
};

/**
 * An integer of at least 1.
 *
 * @example
 * ```ts
 * checkOptions(options, 'options', 'input', { limit: positiveInteger });
 * ```
 */
export const positiveInteger: Rule<number> = {
  test: (value): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= 1,
  problem: 'must be a positive integer',
};

/**
 * A finite number of milliseconds above 0.
 *
 * @example
 * ```ts
 * checkOptions(options, 'options', 'input', { windowMs: positiveMs });
 * ```
 */
export const positiveMs: Rule<number> = {
  test: (value): value is number => typeof value === 'number' && Number.isFinite(value) && value > 0,
  problem: 'must be a positive number of milliseconds',
};

/**
 * A finite number of milliseconds, 0 or more.
 *
 * @example
 * ```ts
 * checkOptions(options, 'options', 'input', { timeoutMs: nonNegativeMs });
 * ```
 */
export const nonNegativeMs: Rule<number> = {
  test: (value): value is number => typeof value === 'number' && Number.isFinite(value) && value >= 0,
  problem: 'must be a finite number of milliseconds >= 0',
};

/**
 * A finite number of at least 0 (a factor, a count of anything but milliseconds).
 *
 * @example
 * ```ts
 * checkOptions(options, 'backoff', 'configuration', { factor: nonNegativeNumber });
 * ```
 */
export const nonNegativeNumber: Rule<number> = {
  test: (value): value is number => typeof value === 'number' && Number.isFinite(value) && value >= 0,
  problem: 'must be a finite number >= 0',
};

const RESOURCE_TYPE = /^[A-Z][A-Za-z]+$/;

/**
 * A FHIR resource type name, by its shape (`Patient`; not `patient`, not `Patient/1`).
 *
 * @example
 * ```ts
 * checkValue(type, resourceTypeName, 'resourceType', 'input');
 * ```
 */
export const resourceTypeName: Rule<string> = {
  test: (value): value is string => typeof value === 'string' && RESOURCE_TYPE.test(value),
  problem: 'must be a FHIR resource type such as "Patient"',
};

const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;

/**
 * A FHIR resource id (`[A-Za-z0-9\-.]{1,64}`): what may be put in a URL path as a Medplum id.
 * Anything else (`../AuditEvent`, `a/b`) would name another path on the server.
 *
 * @example
 * ```ts
 * checkValue(id, fhirId, 'id', 'input');
 * ```
 */
export const fhirId: Rule<string> = {
  test: (value): value is string => typeof value === 'string' && FHIR_ID.test(value),
  problem: 'must be a FHIR id: 1 to 64 letters, digits, "-" or "."',
};

/**
 * One of a fixed set of strings.
 *
 * @param values - The strings allowed.
 * @returns The rule, whose problem lists them: `must be 'sync' or 'async'`.
 * @example
 * ```ts
 * checkOptions(options, 'options', 'input', { status: oneOf('open', 'retried', 'discarded', 'all') });
 * ```
 */
export function oneOf<const T extends string>(...values: readonly T[]): Rule<T> {
  const quoted = values.map((value) => `'${value}'`);
  const last = quoted.pop();
  return {
    test: (value): value is T => (values as readonly unknown[]).includes(value),
    problem: `must be ${quoted.length === 0 ? String(last) : `${quoted.join(', ')} or ${String(last)}`}`,
  };
}

/**
 * Throws the error a refused value makes: a {@link ConfigurationError} showing the value (when a
 * primitive, and not a secret), or an {@link InvalidInputError} showing only its kind: a call's
 * arguments can hold PHI, and a value that was refused can be anything.
 *
 * @param blame - Configuration or input.
 * @param field - The option's path or the argument's name.
 * @param value - The value refused.
 * @param problem - What is wrong with it.
 * @param secret - For configuration: the value may be a secret; show only its kind.
 * @throws Always.
 * @example
 * ```ts
 * refuse('input', 'limit', 0, 'must be a positive integer'); // InvalidInputError: limit: must be a positive integer, got a number
 * ```
 */
export function refuse(blame: Blame, field: string, value: unknown, problem: string, secret = false): never {
  if (blame === 'configuration') throw new ConfigurationError(field, value, problem, secret);
  throw new InvalidInputError(field, `${problem}, got ${kindOf(value)}`);
}

/**
 * Checks one value against a rule.
 *
 * @param value - The value.
 * @param rule - What it must be.
 * @param field - The option's path or the argument's name.
 * @param blame - Configuration or input.
 * @throws {@link ConfigurationError} or {@link InvalidInputError} naming `field`.
 * @example
 * ```ts
 * checkValue(legacyId, nonEmptyString, 'legacyId', 'input');
 * ```
 */
export function checkValue<T>(
  value: unknown,
  rule: Rule<T>,
  field: string,
  blame: Blame,
): asserts value is T {
  if (!rule.test(value)) refuse(blame, field, value, rule.problem, rule.secret);
}

/**
 * Checks an options object: `undefined` (no options) or a plain object whose keys are all in
 * `shape`, each value `undefined` or passing its rule. A key the shape does not know is refused,
 * naming it and the known ones, so a typo (`resorceType`) is an error rather than silently
 * ignored.
 *
 * @param value - What the caller passed.
 * @param field - The name of the options object in errors (`options`, `readiness`).
 * @param blame - Configuration or input.
 * @param shape - The known keys and their rules.
 * @param prefix - Put before a key in errors: `readiness.` names `readiness.windowMs`; `''` (the default) names just `windowMs`.
 * @returns The object (an empty one for `undefined`), to read the values from.
 * @throws {@link ConfigurationError} or {@link InvalidInputError} naming the object or the key at fault.
 * @example
 * ```ts
 * const given = checkOptions(options, 'options', 'input', { unit: nonEmptyString, limit: positiveInteger });
 * // InvalidInputError: resorceType: is not an option (options: unit, limit)
 * ```
 */
export function checkOptions(
  value: unknown,
  field: string,
  blame: Blame,
  shape: Shape,
  prefix = '',
): Readonly<Record<string, unknown>> {
  const given = optionsObject(value, field, blame, Object.keys(shape));
  refuseUnknownKeys(given, blame, Object.keys(shape), prefix);
  for (const [key, rule] of Object.entries(shape)) {
    const option = given[key];
    if (option !== undefined) checkValue(option, rule, `${prefix}${key}`, blame);
  }
  return given;
}

/**
 * Checks that a value is `undefined` or a plain object (not `null`, not an array), without
 * looking at its keys: for options objects whose keys are checked elsewhere.
 *
 * @param value - What the caller passed.
 * @param field - The name of the options object in errors.
 * @param blame - Configuration or input.
 * @param example - Keys to show in the problem: `must be an object such as { key }`.
 * @returns The object (an empty one for `undefined`).
 * @throws {@link ConfigurationError} or {@link InvalidInputError} naming `field`.
 * @example
 * ```ts
 * const given = optionsObject(options.divergence, 'divergence', 'configuration');
 * ```
 */
export function optionsObject(
  value: unknown,
  field: string,
  blame: Blame,
  example: readonly string[] = [],
): Readonly<Record<string, unknown>> {
  if (value === undefined) return EMPTY;
  if (!anObject.test(value)) {
    const problem =
      example.length === 0 ? 'must be an object' : `must be an object such as { ${example.join(', ')} }`;
    // Only the kind: a string where options belong is often a key passed on its own.
    refuse(blame, field, value, problem, true);
  }
  return value;
}

/**
 * Refuses the keys of an object that are not in `known`, naming the first (and any others) and
 * listing the known ones. A key whose value is `undefined` counts too: it is still a typo.
 *
 * @param given - The object.
 * @param blame - Configuration or input.
 * @param known - The keys allowed.
 * @param prefix - Put before a key in errors (`valueHash.`).
 * @param what - What the keys are, one and many: `['an option', 'options']` (the default), or
 *   `['a column', 'columns']` for a row.
 * @throws {@link ConfigurationError} or {@link InvalidInputError} naming the unknown key.
 * @example
 * ```ts
 * refuseUnknownKeys({ secret: 'k' }, 'configuration', ['key'], 'valueHash.');
 * // ConfigurationError: valueHash.secret: is not an option (options: key) (got "string")
 * ```
 */
export function refuseUnknownKeys(
  given: Readonly<Record<string, unknown>>,
  blame: Blame,
  known: readonly string[],
  prefix = '',
  what: readonly [one: string, many: string] = ['an option', 'options'],
): void {
  // Own keys only, `__proto__` and `constructor` included (a row parsed from JSON can hold them).
  const unknown = Object.keys(given).filter((key) => !known.includes(key));
  const [first, ...others] = unknown;
  if (first === undefined) return;
  const [one, many] = what;
  const options = known.length === 0 ? 'none' : known.join(', ');
  const problem =
    others.length === 0
      ? `is not ${one} (${many}: ${options})`
      : `is not ${one}, nor ${others.join(', ')} (${many}: ${options})`;
  // The value is not shown: a mistyped secret must not reach a log.
  if (blame === 'configuration')
    throw new ConfigurationError(`${prefix}${first}`, given[first], problem, true);
  throw new InvalidInputError(`${prefix}${first}`, problem);
}

/**
 * How a value is described in an {@link InvalidInputError}: its kind, or a number or boolean as
 * written; never a string's content (it may be PHI).
 *
 * @param value - Anything.
 * @returns `null`, `an array`, `an empty string`, `a string`, `-1`, `NaN`, `an object`, …
 * @example
 * ```ts
 * kindOf(''); // 'an empty string'
 * ```
 */
export function kindOf(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (Array.isArray(value)) return 'an array';
  switch (typeof value) {
    case 'string':
      return value.trim() === '' ? (value === '' ? 'an empty string' : 'a blank string') : 'a string';
    case 'number':
      // A number can be a date of birth or a record number: only those that cannot are shown.
      return Number.isFinite(value) ? 'a number' : String(value);
    case 'boolean':
      return String(value);
    case 'object':
      return 'an object';
    default:
      return `a ${typeof value}`;
  }
}

const EMPTY: Readonly<Record<string, unknown>> = Object.freeze({});

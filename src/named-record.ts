/*
 * Records keyed by names that come from users: units, resource types, reasons, resolvers. A plain
 * `{}` is the wrong map for them: `record['__proto__'] = x` sets the object's prototype instead of
 * a key (a unit named `__proto__` was stored, then dropped when the plan was rebuilt), and
 * `'toString' in record` or `record.constructor` find what every object inherits (a unit named
 * `toString` was "known"). Internal.
 */

/**
 * An empty record without a prototype: every name, `__proto__` included, is a key like any other.
 *
 * @returns The record.
 * @example
 * ```ts
 * const counts = namedRecord<number>();
 * counts['__proto__'] = 1; // a key
 * ```
 */
export function namedRecord<V>(entries: Iterable<readonly [string, V]> = []): Record<string, V> {
  const record = Object.create(null) as Record<string, V>;
  for (const [name, value] of entries) record[name] = value;
  return record;
}

/**
 * A record's own value for a name, never one it inherits (`toString`, `constructor`).
 *
 * @param record - The record.
 * @param name - The name.
 * @returns The value, or `undefined` when the record has no such key of its own.
 * @example
 * ```ts
 * ownValue(plan.units, 'toString'); // undefined
 * ```
 */
export function ownValue<V>(record: Readonly<Record<string, V>>, name: string): V | undefined {
  return Object.hasOwn(record, name) ? record[name] : undefined;
}

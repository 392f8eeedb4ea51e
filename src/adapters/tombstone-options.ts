import { ConfigurationError } from '../errors.ts';

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The tombstone table a table adapter's `tombstones` option names, checked, before each
 * database quotes it: `true` for the defaults, or `{ table?, <namespace>? }` where the
 * namespace is PostgreSQL's schema or MySQL's database.
 *
 * @internal
 * @example
 * ```ts
 * const names: TombstoneNames = { table: 'dualwrite_tombstones', namespace: 'legacy' };
 * ```
 */
export interface TombstoneNames {
  readonly table: string;
  /** `undefined`: the connection's own (MySQL's current database). */
  readonly namespace: string | undefined;
}

/**
 * Checks a table adapter's `tombstones` option.
 *
 * @internal
 * @param value - `undefined` (no tombstones), `true` or the options object.
 * @param namespace - The option naming where the table lives (`schema`, `database`), and its
 *   default (`undefined`: none).
 * @returns The names, or `undefined` when tombstones are off.
 * @throws {@link ConfigurationError} naming `tombstones`, `tombstones.table` or
 *   `tombstones.<namespace>`.
 * @example
 * ```ts
 * tombstoneNames({ schema: 'legacy' }, { option: 'schema', fallback: 'public' }); // { table: 'dualwrite_tombstones', namespace: 'legacy' }
 * ```
 */
export function tombstoneNames(
  value: unknown,
  namespace: { readonly option: 'schema' | 'database'; readonly fallback: string | undefined },
): TombstoneNames | undefined {
  if (value === undefined) return undefined;
  if (value !== true && (typeof value !== 'object' || value === null))
    throw new ConfigurationError('tombstones', value, `must be true or { table?, ${namespace.option}? }`);
  const options = value === true ? {} : (value as Record<string, unknown>);
  const identifier = (option: string, fallback: string | undefined): string | undefined => {
    const given = options[option] ?? fallback;
    if (given === undefined) return undefined;
    if (typeof given !== 'string' || !IDENTIFIER.test(given)) {
      throw new ConfigurationError(
        `tombstones.${option}`,
        given,
        'must be an SQL identifier: a letter or _ followed by letters, digits or _',
      );
    }
    return given;
  };
  return {
    table: identifier('table', 'dualwrite_tombstones') ?? 'dualwrite_tombstones',
    namespace: identifier(namespace.option, namespace.fallback),
  };
}

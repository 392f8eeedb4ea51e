import type { ResourceMapping } from '../mapping/resource-mapping.ts';
import { withWrappedMethods, type AdapterCall } from './adapter-methods.ts';
import { LegacyVersionConflictError, type LegacyAdapter, type LegacyChangePage } from './legacy-adapter.ts';

/**
 * The legacy adapter as the library calls it when some mappings are parts of another's records
 * (`ResourceMapping.partOf`): every call for a part's type goes to its owner's type, so the
 * adapter knows only the records it stores (a RelatedPerson is read from, and written to, the
 * Patient's `patient_data` row). Two calls differ for a part: `delete` removes nothing (a part
 * never deletes its record; deleting the owner's record deletes it), and `create` never inserts
 * (a part is written into a record that exists: it reports the id as taken, so the caller reads
 * and updates the record). Changes read are reported under the part's type. Everything else of
 * the adapter (a transactional adapter's `sql`, `within`) is the adapter's own.
 *
 * @param adapter - The user's adapter.
 * @param mappings - Every mapping of the writer.
 * @returns The adapter itself when no mapping is a part, else a view over it.
 * @example
 * ```ts
 * const legacy = recordPartsAdapter(adapter, [patients, guardians]);
 * await legacy.read('RelatedPerson', '42'); // the Patient's record 42
 * ```
 */
export function recordPartsAdapter<L>(
  adapter: LegacyAdapter<L>,
  mappings: readonly ResourceMapping<L>[],
): LegacyAdapter<L> {
  const parts = new Map<string, ResourceMapping<L>>(
    mappings
      .filter((mapping) => mapping.partOf !== undefined)
      .map((mapping) => [mapping.resourceType, mapping]),
  );
  if (parts.size === 0) return adapter;
  const ownerOf = (type: unknown): unknown =>
    typeof type === 'string' ? (parts.get(type)?.partOf ?? type) : type;
  const asPart = (type: unknown, page: LegacyChangePage<L>): LegacyChangePage<L> =>
    typeof type === 'string' && parts.has(type)
      ? { ...page, changes: page.changes.map((change) => ({ ...change, resourceType: type })) }
      : page;
  const overrides: Partial<Record<string | symbol, (call: AdapterCall, args: unknown[]) => unknown>> = {
    create: (call, [type, row, ...rest]) => {
      const part = typeof type === 'string' ? parts.get(type) : undefined;
      if (part === undefined) return call(type, row, ...rest);
      return Promise.reject(
        new LegacyVersionConflictError(
          part.resourceType,
          part.legacyId(row as L) ?? '',
          undefined,
          undefined,
        ),
      );
    },
    delete: (call, [type, ...rest]) =>
      typeof type === 'string' && parts.has(type) ? Promise.resolve() : call(type, ...rest),
    changesSince: async (call, [type, ...rest]) =>
      asPart(type, (await call(ownerOf(type), ...rest)) as LegacyChangePage<L>),
  };
  return withWrappedMethods(adapter, (property, call) => {
    if (!BY_TYPE.has(property)) return undefined;
    const override = overrides[property];
    return override === undefined
      ? (type, ...rest) => call(ownerOf(type), ...rest)
      : (...args) => override(call, args);
  });
}

/** The adapter's methods whose first argument is a resource type. */
const BY_TYPE: ReadonlySet<string | symbol> = new Set([
  'create',
  'update',
  'delete',
  'read',
  'readMany',
  'newId',
  'scan',
  'changesSince',
]);

import { createHash } from 'node:crypto';

/** Top-level fields that say nothing about a record's content: server bookkeeping. */
const BOOKKEEPING = new Set(['id', 'meta', 'text']);

/**
 * The comparable form of a FHIR resource: `id`, `meta` and generated `text` dropped, empty
 * strings, arrays and objects dropped, keys sorted. Two copies of a record agree when their
 * normalised forms are equal.
 *
 * @param resource - A FHIR resource (or any JSON value).
 * @returns The normalised JSON value, or `undefined` when nothing is left.
 * @example
 * ```ts
 * normalise({ resourceType: 'Patient', id: '1', meta: { versionId: '2' }, name: [] });
 * // { resourceType: 'Patient' }
 * ```
 */
export function normalise(resource: unknown): unknown {
  return clean(resource, true);
}

function clean(value: unknown, topLevel: boolean): unknown {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'string') return value === '' ? undefined : value;
  if (Array.isArray(value)) {
    const items = value.map((item) => clean(item, false)).filter((item) => item !== undefined);
    return items.length === 0 ? undefined : items;
  }
  if (typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      if (topLevel && BOOKKEEPING.has(key)) continue;
      const cleaned = clean((value as Record<string, unknown>)[key], false);
      if (cleaned !== undefined) out[key] = cleaned;
    }
    return Object.keys(out).length === 0 ? undefined : out;
  }
  return value;
}

/**
 * A stable hash of a resource's normalised content, used to tell whether a copy changed since
 * the last sync and whether a write would change anything.
 *
 * @param resource - A FHIR resource.
 * @returns `sha256:` and the hex digest.
 * @example
 * ```ts
 * contentHash(a) === contentHash(b); // the two copies agree
 * ```
 */
export function contentHash(resource: unknown): string {
  return `sha256:${createHash('sha256')
    .update(JSON.stringify(normalise(resource) ?? null))
    .digest('hex')}`;
}

import type { SqlQueryable } from '../sql/sql-client.ts';
import type { Link } from './link.ts';
import { LINK_COLUMNS, toLink, type JournalTables, type LinkRow } from './postgres-tables.ts';
import { LinkConflictError } from './sync-store.ts';

/*
 * The link table's SQL for `PostgresStore`. Writing a link is a check, then an upsert:
 *
 * - The check reads who holds the Medplum id and, if it is another legacy id, throws
 *   LinkConflictError with that id before anything is written (an operator needs it, and a
 *   unique violation does not carry it).
 * - The upsert on the legacy key replaces the record's previous link (and so frees its old
 *   Medplum id) in one statement.
 * - A concurrent writer can still take the Medplum id between the two; the unique constraint
 *   then fails the upsert, which aborts the caller's transaction. That race is reported as
 *   {@link LinkRace} so the caller can roll back and run the whole write again: the second
 *   run's check sees the winner and throws a LinkConflictError that names it.
 */

/**
 * The constraint the initial migration names; its violation is a link conflict.
 *
 * @example
 * ```ts
 * if (isViolationOf(err, MEDPLUM_KEY)) throw new LinkRace(err);
 * ```
 */
export const MEDPLUM_KEY = 'links_medplum_id_key';

/**
 * A link write lost a race for its Medplum id to a concurrent writer. Internal: callers retry
 * the write, whose check then raises {@link LinkConflictError}.
 *
 * @example
 * ```ts
 * try { await saveLink(tx, tables, link); } catch (err) { if (err instanceof LinkRace) retry(); }
 * ```
 */
export class LinkRace extends Error {
  override readonly name = 'LinkRace' as const;
  /**
   * @param cause - The unique violation.
   */
  constructor(cause: unknown) {
    super('a concurrent write took the Medplum id', { cause });
  }
}

/** The link columns a write sets, besides its key (resource type, legacy id). */
export const LINK_WRITE_COLUMNS =
  'medplum_id, legacy_version, medplum_version, content_hash, synced_at, base';

/** How a link write replaces the record's previous link (and so frees its old Medplum id). */
export const LINK_UPSERT = `ON CONFLICT (resource_type, legacy_id) DO UPDATE SET
  medplum_id = excluded.medplum_id, legacy_version = excluded.legacy_version,
  medplum_version = excluded.medplum_version, content_hash = excluded.content_hash,
  synced_at = excluded.synced_at, base = excluded.base`;

/**
 * The placeholders of {@link LINK_WRITE_COLUMNS}, numbered from `first`.
 *
 * @param first - The first parameter's number.
 * @returns The placeholder list.
 * @example
 * ```ts
 * `VALUES ($1, $2, ${linkWritePlaceholders(3)})`;
 * ```
 */
export function linkWritePlaceholders(first: number): string {
  const n = (i: number) => `$${String(first + i)}`;
  return `${n(0)}, ${n(1)}, ${n(2)}, ${n(3)}, ${n(4)}::timestamptz, ${n(5)}::jsonb`;
}

/**
 * The values of {@link LINK_WRITE_COLUMNS} for a link.
 *
 * @param link - The link.
 * @returns The parameters, in column order.
 * @example
 * ```ts
 * await q.query(sql, [link.resourceType, link.legacyId, ...linkWriteValues(link)]);
 * ```
 */
export function linkWriteValues(link: Link): unknown[] {
  return [
    link.medplumId,
    link.legacyVersion ?? null,
    link.medplumVersion ?? null,
    link.contentHash,
    link.syncedAt,
    link.base === undefined ? null : JSON.stringify(link.base),
  ];
}

/**
 * Reads the link of a legacy record.
 *
 * @param q - Where to run.
 * @param tables - The store's tables.
 * @param resourceType - The resource type.
 * @param legacyId - The legacy id.
 * @returns The link, if any.
 * @example
 * ```ts
 * const link = await getLink(sql, tables, 'Patient', 'p-1');
 * ```
 */
export async function getLink(
  q: SqlQueryable,
  tables: JournalTables,
  resourceType: string,
  legacyId: string,
): Promise<Link | undefined> {
  const { rows } = await q.query<LinkRow>(
    `SELECT ${LINK_COLUMNS} FROM ${tables.links} WHERE resource_type = $1 AND legacy_id = $2`,
    [resourceType, legacyId],
  );
  return rows[0] === undefined ? undefined : toLink(rows[0]);
}

/**
 * Reads the links of many legacy records in one query (`legacy_id = ANY($2)`, an index look-up
 * per id): a job's page asked one `getLink` per record, a round trip each (5,000 linked records
 * reconciled at 414/s on an embedded journal, on this machine under a load average of 8).
 *
 * @param q - Where to run.
 * @param tables - The store's tables.
 * @param resourceType - The resource type.
 * @param legacyIds - The legacy ids.
 * @returns The links found, by legacy id.
 * @example
 * ```ts
 * const found = await getLinks(sql, tables, 'Patient', ['p-1', 'p-2']);
 * ```
 */
export async function getLinks(
  q: SqlQueryable,
  tables: JournalTables,
  resourceType: string,
  legacyIds: readonly string[],
): Promise<Map<string, Link>> {
  const found = new Map<string, Link>();
  if (legacyIds.length === 0) return found;
  const { rows } = await q.query<LinkRow>(
    `SELECT ${LINK_COLUMNS} FROM ${tables.links} WHERE resource_type = $1 AND legacy_id = ANY($2::text[])`,
    [resourceType, [...new Set(legacyIds)]],
  );
  for (const row of rows) {
    const link = toLink(row);
    found.set(link.legacyId, link);
  }
  return found;
}

/**
 * Reads the link of a Medplum resource.
 *
 * @param q - Where to run.
 * @param tables - The store's tables.
 * @param resourceType - The resource type.
 * @param medplumId - The Medplum id.
 * @returns The link, if any.
 * @example
 * ```ts
 * const link = await getLinkByMedplumId(sql, tables, 'Patient', '0b3c…');
 * ```
 */
export async function getLinkByMedplumId(
  q: SqlQueryable,
  tables: JournalTables,
  resourceType: string,
  medplumId: string,
): Promise<Link | undefined> {
  const { rows } = await q.query<LinkRow>(
    `SELECT ${LINK_COLUMNS} FROM ${tables.links} WHERE resource_type = $1 AND medplum_id = $2`,
    [resourceType, medplumId],
  );
  return rows[0] === undefined ? undefined : toLink(rows[0]);
}

/**
 * Links of one resource type after a legacy id, in the column's collation order. Paging by
 * the key (not by offset) keeps each page an index range scan on `(resource_type, legacy_id)`
 * however many links there are, and a link saved meanwhile cannot shift a later page.
 *
 * @param q - Where to run.
 * @param tables - The store's tables.
 * @param resourceType - The resource type.
 * @param options - `after`: the last legacy id of the previous page; `limit`: the page size.
 * @returns Up to `limit` links.
 * @example
 * ```ts
 * const page = await listLinks(sql, tables, 'Patient', { after: 'p-100', limit: 100 });
 * ```
 */
export async function listLinks(
  q: SqlQueryable,
  tables: JournalTables,
  resourceType: string,
  options: { readonly after?: string | undefined; readonly limit: number },
): Promise<Link[]> {
  const { rows } = await q.query<LinkRow>(
    `SELECT ${LINK_COLUMNS} FROM ${tables.links}
      WHERE resource_type = $1 AND ($2::text IS NULL OR legacy_id > $2::text)
      ORDER BY legacy_id LIMIT $3`,
    [resourceType, options.after ?? null, options.limit],
  );
  return rows.map(toLink);
}

/**
 * Inserts or replaces the link of `(link.resourceType, link.legacyId)`.
 *
 * @param q - Where to run; a transaction when the write must be atomic with others.
 * @param tables - The store's tables.
 * @param link - The link.
 * @returns When written.
 * @throws {@link LinkConflictError} when another legacy id holds the Medplum id.
 * @throws {@link LinkRace} when a concurrent write took the Medplum id meanwhile.
 * @example
 * ```ts
 * await sql.transaction((tx) => saveLink(tx, tables, link));
 * ```
 */
export async function saveLink(q: SqlQueryable, tables: JournalTables, link: Link): Promise<void> {
  const owner = await getLinkByMedplumId(q, tables, link.resourceType, link.medplumId);
  if (owner !== undefined && owner.legacyId !== link.legacyId) {
    throw new LinkConflictError(link.resourceType, link.medplumId, owner.legacyId, link.legacyId);
  }
  try {
    await q.query(
      `INSERT INTO ${tables.links} (resource_type, legacy_id, ${LINK_WRITE_COLUMNS})
       VALUES ($1, $2, ${linkWritePlaceholders(3)}) ${LINK_UPSERT}`,
      [link.resourceType, link.legacyId, ...linkWriteValues(link)],
    );
  } catch (err) {
    if (isViolationOf(err, MEDPLUM_KEY)) throw new LinkRace(err);
    throw err;
  }
}

/**
 * Removes the link of a legacy record, if any.
 *
 * @param q - Where to run.
 * @param tables - The store's tables.
 * @param resourceType - The resource type.
 * @param legacyId - The legacy id.
 * @returns When done.
 * @example
 * ```ts
 * await deleteLink(sql, tables, 'Patient', 'p-1');
 * ```
 */
export async function deleteLink(
  q: SqlQueryable,
  tables: JournalTables,
  resourceType: string,
  legacyId: string,
): Promise<void> {
  await q.query(`DELETE FROM ${tables.links} WHERE resource_type = $1 AND legacy_id = $2`, [
    resourceType,
    legacyId,
  ]);
}

/**
 * Runs a write that saves a link (in its own transaction), again when it lost a race for the
 * Medplum id. Its rollback undid everything, and a rerun either succeeds or reports the
 * conflict with the winner's legacy id. Races on one Medplum id are rare (the journal keeps one
 * mirror per record in flight), so a few reruns settle any that happen.
 *
 * @param write - The whole write, starting its own transaction.
 * @returns What the write returns.
 * @example
 * ```ts
 * await retryingLinkRaces(() => sql.transaction((tx) => saveLink(tx, tables, link)));
 * ```
 */
export async function retryingLinkRaces<T>(write: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await write();
    } catch (err) {
      if (!(err instanceof LinkRace) || attempt >= 5) throw err;
    }
  }
}

/**
 * Whether a driver error is a unique violation of the named constraint.
 *
 * @param err - The error.
 * @param constraint - The constraint's name.
 * @returns Whether it is.
 * @example
 * ```ts
 * if (isViolationOf(err, MEDPLUM_KEY)) throw new LinkRace(err);
 * ```
 */
export function isViolationOf(err: unknown, constraint: string): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const { code, constraint: name } = err as { code?: unknown; constraint?: unknown };
  return code === '23505' && name === constraint;
}

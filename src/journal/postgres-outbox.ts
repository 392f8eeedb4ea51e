import { notPaused } from './postgres-housekeeping.ts';
import type { SqlClient, SqlQueryable } from '../sql/sql-client.ts';
import type { WriteStatement } from '../sql/write-statement.ts';
import type { Link } from './link.ts';
import type {
  Lease,
  LeaseOutcome,
  OutboxBacklog,
  OutboxCounts,
  OutboxEntry,
  OutboxError,
  OutboxIntent,
  OutboxTicket,
} from './outbox.ts';
import {
  ENTRY_COLUMNS,
  iso,
  isRowId,
  jsonParam,
  millis,
  toEntry,
  toLink,
  type EntryRow,
  type JournalTables,
} from './postgres-tables.ts';
import { WAIT_LOCK_CLASS } from './migrations/0012-waiting-for.ts';
import { parseWaitingFor } from './waiting-for.ts';
import { laneClaimable } from './postgres-lanes.ts';

/*
 * The outbox's SQL for `PostgresStore`: the same semantics as MemoryStore, made safe for many
 * workers on one database.
 *
 * - Every time comes from `clock_timestamp()`: instances' clocks disagree, the database's is one.
 * - A lease is fenced by its token alone, exactly like MemoryStore: a lease that expired but was
 *   not re-claimed may still finish, since a re-claim would have drawn a new token.
 * - Finishing a lease locks the entry (`FOR UPDATE`) first, so a concurrent `intend` (bumping
 *   `seq`) either lands before — and the lease is requeued — or waits until the entry is gone
 *   and then inserts a fresh one. Either way the newer write is not lost.
 */

/** A lease as the SQL layer returns it: the entry row with its token. */
function toLease(row: EntryRow, owner: string): Lease {
  return { entry: toEntry(row), token: row.lease_token ?? '', owner };
}

/** The link columns a claim adds to each entry row (all NULL when the record has no link). */
interface ClaimedLinkRow {
  readonly link_medplum_id: string | null;
  readonly link_legacy_version: string | null;
  readonly link_medplum_version: string | null;
  readonly link_content_hash: string | null;
  readonly link_synced_at: string | null;
  readonly link_base: unknown;
}

/** The link columns {@link linkJoin} adds to an entry row, as {@link ClaimedLinkRow} names them. */
const LINK_COLUMNS = `l.medplum_id AS link_medplum_id, l.legacy_version AS link_legacy_version,
  l.medplum_version AS link_medplum_version, l.content_hash AS link_content_hash,
  ${iso('l.synced_at')} AS link_synced_at, l.snapshot AS link_base`;

/**
 * Joins each leased entry to its record's link, so the mirror need not look it up in a round
 * trip of its own (nothing else changes a link while a lease holds the record).
 */
function linkJoin(tables: JournalTables): string {
  // Renamed: the outbox has a `base` column of its own (the caller's resource).
  return `LEFT JOIN (
    SELECT resource_type, legacy_id, medplum_id, legacy_version, medplum_version, content_hash, synced_at,
      base AS snapshot
    FROM ${tables.links}
  ) l USING (resource_type, legacy_id)`;
}

function claimedLink(row: EntryRow & ClaimedLinkRow): Link | null {
  if (row.link_medplum_id === null) return null;
  return toLink({
    resource_type: row.resource_type,
    legacy_id: row.legacy_id,
    medplum_id: row.link_medplum_id,
    legacy_version: row.link_legacy_version,
    medplum_version: row.link_medplum_version,
    content_hash: row.link_content_hash ?? '',
    synced_at: row.link_synced_at ?? '',
    base: row.link_base,
  });
}

/** The lease columns set when granting one (`$owner` and `$leaseMs` are placeholders). */
function grant(tables: JournalTables, owner: string, leaseMs: string): string {
  return `lease_owner = ${owner},
    lease_token = nextval('${tables.leaseTokens}'),
    lease_expires_at = clock_timestamp() + ${millis(leaseMs)}`;
}

/**
 * Whether another entry of the same record (its other direction) is leased now: one mirror of a
 * record in flight at a time, whichever side it goes to.
 */
function otherLeased(tables: JournalTables, alias: string): string {
  // Named by the other target, so the lookup is one probe of the (target, resource_type,
  // legacy_id) unique index rather than a scan per candidate.
  return `EXISTS (SELECT 1 FROM ${tables.outbox} other
    WHERE other.target = CASE ${alias}.target WHEN 'medplum' THEN 'legacy' ELSE 'medplum' END
      AND other.resource_type = ${alias}.resource_type AND other.legacy_id = ${alias}.legacy_id
      AND other.lease_expires_at > clock_timestamp())`;
}

/**
 * A transaction-scoped advisory lock per record, taken by a claim or a commit before it leases
 * an entry: two transactions racing for a record's two directions cannot both see the other
 * unleased (neither lease is committed yet).
 */
function recordLockKey(tables: JournalTables, alias: string): string {
  return `pg_catalog.hashtextextended('${tables.outbox}:' || ${alias}.resource_type || '/' || ${alias}.legacy_id, 0)`;
}

/**
 * Whether the entry `alias` may be leased as far as its record's other direction goes: the
 * record's advisory lock is taken, then the other direction is checked with a fresh snapshot
 * (migration 6). The statement's own snapshot predates the lock; a lease another transaction
 * committed in between, releasing the lock, would pass unseen and both directions would run.
 * CASE fixes the order: the check runs only once the lock is held.
 */
function recordFree(tables: JournalTables, alias: string): string {
  return `CASE WHEN pg_try_advisory_xact_lock(${recordLockKey(tables, alias)})
    THEN NOT ${tables.schema}.other_direction_leased(${alias}.resource_type, ${alias}.legacy_id, ${alias}.target)
    ELSE false END`;
}

const RELEASE = 'lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL';
const UNLEASED = '(lease_expires_at IS NULL OR lease_expires_at <= clock_timestamp())';
/** An entry waiting for a record it references, and not due yet. */
const WAITING = '(waiting_for IS NOT NULL AND next_attempt_at > clock_timestamp())';

/**
 * Records a write's intent: inserts the record's entry (seq 1, due now) or bumps the existing
 * one's `seq`, taking the newest unit and kind and merging the base (see {@link OutboxIntent.base});
 * either way held for `holdMs`.
 *
 * @param q - Where to run.
 * @param tables - The store's tables.
 * @param intent - The write's intent.
 * @param holdMs - How long no worker may claim the entry.
 * @returns The ticket that commits this intent.
 * @example
 * ```ts
 * const ticket = await intend(sql, tables, intent, 30_000);
 * ```
 */
export async function intend(
  q: SqlQueryable,
  tables: JournalTables,
  intent: OutboxIntent,
  holdMs: number,
): Promise<OutboxTicket> {
  const { rows } = await q.query<{ id: string; seq: number }>(
    `INSERT INTO ${tables.outbox} AS o (resource_type, legacy_id, target, unit, kind, base, hold_until, holders,
                                        trace_parent, lane)
     VALUES ($1, $2, $3, $4, $5, $6::text::jsonb,
             CASE WHEN $7::float8 > 0 THEN clock_timestamp() + ${millis('$7')} END,
             CASE WHEN $7::float8 > 0 THEN 1 ELSE 0 END, $8, $9)
     ON CONFLICT (target, resource_type, legacy_id) DO UPDATE SET ${COALESCE_INTENT}
     RETURNING id::text AS id, seq`,
    [
      intent.resourceType,
      intent.legacyId,
      intent.target,
      intent.unit,
      intent.kind,
      jsonParam(intent.base),
      holdMs,
      intent.traceParent ?? null,
      intent.lane ?? null,
    ],
  );
  const row = rows[0];
  if (row === undefined) throw new Error('INSERT … ON CONFLICT DO UPDATE returned no row');
  return { id: row.id, seq: row.seq, held: holdMs > 0, intent };
}

/**
 * The columns of {@link intendMany}'s input, one text array each, zipped by `ROWS FROM`.
 */
const INTENT_ARRAYS = Array.from(
  { length: 8 },
  (_, i) => `pg_catalog.unnest($${String(i + 1)}::text[])`,
).join(', ');

/**
 * Records many intents, each exactly as {@link intend} would, in one statement per round: one
 * round when the intents name distinct records (a backfill's page), more when a record comes
 * again (`ON CONFLICT DO UPDATE` cannot touch a row twice in one statement), the rounds then in
 * one transaction. Rows are inserted in key order, so two batches locking the same entries
 * take them in the same order and never deadlock.
 *
 * A page of 200 intents queued one statement each took 11–14 ms a statement with eight in
 * flight (PostgreSQL committing each, the machine at load 6–9): about 0.3 s a page, most of a
 * backfill's scan; in one statement it is one commit.
 *
 * @param sql - Where to run.
 * @param tables - The store's tables.
 * @param intents - The intents, in order.
 * @param holdMs - How long no worker may claim the entries.
 * @returns The tickets, in the intents' order.
 * @example
 * ```ts
 * const tickets = await intendMany(sql, tables, [intentA, intentB], 0);
 * ```
 */
export async function intendMany(
  sql: SqlClient,
  tables: JournalTables,
  intents: readonly OutboxIntent[],
  holdMs: number,
): Promise<OutboxTicket[]> {
  // Each round holds the positions of intents of distinct records.
  const rounds: { readonly i: number; readonly intent: OutboxIntent }[][] = [];
  const roundOf = new Map<string, number>();
  for (const [i, intent] of intents.entries()) {
    const key = JSON.stringify([intent.target, intent.resourceType, intent.legacyId]);
    const round = (roundOf.get(key) ?? -1) + 1;
    roundOf.set(key, round);
    (rounds[round] ??= []).push({ i, intent });
  }
  const tickets: (OutboxTicket | undefined)[] = intents.map(() => undefined);
  const insert = async (
    q: SqlQueryable,
    round: readonly { readonly i: number; readonly intent: OutboxIntent }[],
  ): Promise<void> => {
    const column = (value: (intent: OutboxIntent) => string | null | undefined): (string | null)[] =>
      round.map(({ intent }) => value(intent) ?? null);
    const { rows } = await q.query<{ n: number; id: string; seq: number }>(
      `WITH input AS (
         SELECT * FROM ROWS FROM (${INTENT_ARRAYS})
           WITH ORDINALITY AS i(resource_type, legacy_id, target, unit, kind, base, trace_parent, lane, n)
       ), written AS (
         INSERT INTO ${tables.outbox} AS o (resource_type, legacy_id, target, unit, kind, base, hold_until, holders,
                                            trace_parent, lane)
         SELECT resource_type, legacy_id, target, unit, kind, base::jsonb,
                CASE WHEN $9::float8 > 0 THEN clock_timestamp() + ${millis('$9')} END,
                CASE WHEN $9::float8 > 0 THEN 1 ELSE 0 END, trace_parent, lane
         FROM input ORDER BY target, resource_type, legacy_id
         ON CONFLICT (target, resource_type, legacy_id) DO UPDATE SET ${COALESCE_INTENT}
         RETURNING o.id, o.seq, o.target, o.resource_type, o.legacy_id
       )
       SELECT i.n::integer AS n, w.id::text AS id, w.seq FROM input i
       JOIN written w USING (target, resource_type, legacy_id)`,
      [
        column((intent) => intent.resourceType),
        column((intent) => intent.legacyId),
        column((intent) => intent.target),
        column((intent) => intent.unit),
        column((intent) => intent.kind),
        column((intent) => jsonParam(intent.base)),
        column((intent) => intent.traceParent),
        column((intent) => intent.lane),
        holdMs,
      ],
    );
    for (const row of rows) {
      const at = round[row.n - 1];
      if (at !== undefined) tickets[at.i] = { id: row.id, seq: row.seq, held: holdMs > 0, intent: at.intent };
    }
  };
  const [only] = rounds;
  if (rounds.length === 1 && only !== undefined) await insert(sql, only);
  else if (rounds.length > 1)
    await sql.transaction(async (tx) => {
      for (const round of rounds) await insert(tx, round);
    });
  return tickets.map((ticket) => {
    if (ticket === undefined) throw new Error('INSERT … ON CONFLICT DO UPDATE returned no row for an intent');
    return ticket;
  });
}

/**
 * How an intent merges into a record's pending entry: `seq` moves on (a lease in flight then
 * ends `requeued` and the newest state is mirrored), the newest unit and kind win, and holds
 * add up — an intent without a hold (a change feed's, a retried dead letter's, a
 * transactional write's) never releases another writer's, and a hold that expired (its holder
 * crashed) counts no more.
 *
 * The base merges as `MemoryStore`'s does (see {@link OutboxIntent.base}): a newer base
 * replaces the pending one, an intent without one keeps it, a delete drops it.
 */
const COALESCE_INTENT = `seq = o.seq + 1, unit = excluded.unit, kind = excluded.kind,
       lane = CASE WHEN excluded.lane IS NULL THEN NULL ELSE o.lane END,
       base = CASE WHEN excluded.kind = 'delete' THEN excluded.base ELSE COALESCE(excluded.base, o.base) END,
       trace_parent = COALESCE(excluded.trace_parent, o.trace_parent),
       holders = CASE WHEN o.hold_until > clock_timestamp() THEN o.holders ELSE 0 END + excluded.holders,
       hold_until = CASE WHEN o.hold_until > clock_timestamp() THEN GREATEST(o.hold_until, excluded.hold_until)
                         ELSE excluded.hold_until END`;

/** The columns the combined statement of {@link intendAlong} adds to the written row. */
const ENTRY_ID = '__dualwrite_entry_id';
const ENTRY_SEQ = '__dualwrite_entry_seq';
const WRITTEN = '__dualwrite_written';

/**
 * Runs a legacy write and records its intent in one statement (a transactional outbox in one
 * round trip): the write is a CTE, and the entry is inserted, or its `seq` bumped exactly as
 * {@link intend} does, only when the write returned a row or succeeds without one. Atomic
 * like any single statement: both land or neither does, so no hold is needed.
 *
 * @param q - Where to run (the database the legacy table and the journal share).
 * @param tables - The store's tables.
 * @param statement - The adapter's write.
 * @param intent - The write's intent; `legacyId` `undefined` takes it from the written row
 *   (the database assigned it).
 * @returns The write's rows, as the statement alone would have returned them, and the ticket
 *   when an entry was recorded.
 * @example
 * ```ts
 * const { rows, ticket } = await intendAlong(sql, tables, statement, { ...intent, legacyId: undefined });
 * ```
 */
export async function intendAlong(
  q: SqlQueryable,
  tables: JournalTables,
  statement: WriteStatement,
  intent: Omit<OutboxIntent, 'legacyId'> & { readonly legacyId: string | undefined },
): Promise<{ readonly rows: Record<string, unknown>[]; readonly ticket: OutboxTicket | undefined }> {
  const n = statement.params.length;
  const params = [
    ...statement.params,
    intent.resourceType,
    intent.target,
    intent.unit,
    intent.kind,
    jsonParam(intent.base),
    intent.traceParent ?? null,
  ];
  let id: string;
  if (intent.legacyId === undefined) id = `written.${statement.idColumn}::text`;
  else {
    params.push(intent.legacyId);
    id = `$${n + 7}::text`;
  }
  // Two shapes, because every extra join or subquery costs planning time on each call: a
  // count(*) of the written rows and a LEFT JOIN from a one-row relation made the statement
  // 1.65× a bare insert (microbenchmark, median of 900), against 1.35× without them.
  const withoutRow = statement.succeedsWithoutRow && intent.legacyId !== undefined;
  const entry = `INSERT INTO ${tables.outbox} AS o (resource_type, legacy_id, target, unit, kind, base, trace_parent)
       SELECT $${n + 1}, ${id}, $${n + 2}, $${n + 3}, $${n + 4}, $${n + 5}::text::jsonb, $${n + 6}::text
       ${withoutRow ? '' : 'FROM written'}
       ON CONFLICT (target, resource_type, legacy_id) DO UPDATE SET ${COALESCE_INTENT}
       RETURNING id::text AS id, seq`;
  const select = withoutRow
    ? `SELECT written.*, entry.id AS ${ENTRY_ID}, entry.seq AS ${ENTRY_SEQ},
         (SELECT count(*) FROM written)::integer AS ${WRITTEN}
       FROM entry LEFT JOIN written ON true`
    : `SELECT written.*, entry.id AS ${ENTRY_ID}, entry.seq AS ${ENTRY_SEQ}
       FROM written LEFT JOIN entry ON true`;
  const { rows } = await q.query(
    `WITH written AS (${statement.text}), entry AS (${entry}) ${select}`,
    params,
  );
  const first = rows[0];
  const entryId = first?.[ENTRY_ID];
  const ticket =
    typeof entryId === 'string' ? { id: entryId, seq: Number(first?.[ENTRY_SEQ]), held: false } : undefined;
  const written = first?.[WRITTEN] === 0 ? [] : rows;
  return {
    rows: written.map(({ [ENTRY_ID]: _id, [ENTRY_SEQ]: _seq, [WRITTEN]: _n, ...row }) => row),
    ticket,
  };
}

/**
 * Records that an intent's authority write is done: moves `seq` on (so a mirror in flight ends
 * `requeued` and the next one reads what this write left), releases the intent's hold (the
 * entry is claimable once no holder is left), and with `lease` leases the entry to that worker
 * in the same statement when nobody else holds or leases it. If the entry is gone — applied and
 * completed while this write still ran, after its hold expired — the record is queued again.
 *
 * @param q - Where to run.
 * @param tables - The store's tables.
 * @param ticket - The intent's ticket.
 * @param lease - The worker that wants the entry at once, and for how long.
 * @returns The lease when one was asked for and granted.
 * @example
 * ```ts
 * const lease = await commit(sql, tables, ticket, { owner: 'writer-1', leaseMs: 30_000 });
 * ```
 */
export async function commit(
  q: SqlQueryable,
  tables: JournalTables,
  ticket: OutboxTicket,
  lease?: { readonly owner: string; readonly leaseMs: number },
): Promise<Lease | undefined> {
  if (!isRowId(ticket.id)) return undefined;
  const held = ticket.held === true;
  // The CTE locks the row and decides from its pre-update state whether it is free; the
  // UPDATE's RETURNING could only show the new state, which looks leased either way.
  const { rows } = await q.query<EntryRow & ClaimedLinkRow & { granted: boolean }>(
    `WITH target AS MATERIALIZED (
       SELECT id, CASE WHEN ${UNLEASED} AND $3::text IS NOT NULL
                AND NOT (o.holders - CASE WHEN $2 THEN 1 ELSE 0 END > 0 AND o.hold_until > clock_timestamp())
                AND NOT ${otherLeased(tables, 'o')}
                AND ${notPaused(tables, 'o')}
                THEN ${recordFree(tables, 'o')} ELSE false END AS free
       FROM ${tables.outbox} o WHERE id = $1::bigint FOR UPDATE
     ), updated AS (
       UPDATE ${tables.outbox} o SET seq = o.seq + 1,
         holders = CASE WHEN $2 THEN GREATEST(o.holders - 1, 0) ELSE o.holders END,
         hold_until = CASE WHEN $2 AND o.holders <= 1 THEN NULL ELSE o.hold_until END,
         lease_owner = CASE WHEN t.free THEN $3 ELSE o.lease_owner END,
         lease_token = CASE WHEN t.free THEN nextval('${tables.leaseTokens}') ELSE o.lease_token END,
         lease_expires_at = CASE WHEN t.free THEN clock_timestamp() + ${millis('$4')} ELSE o.lease_expires_at END
       FROM target t WHERE o.id = t.id
       RETURNING o.*, t.free AS granted
     )
     SELECT ${ENTRY_COLUMNS}, granted, ${LINK_COLUMNS} FROM updated ${linkJoin(tables)}`,
    [ticket.id, held, lease?.owner ?? null, lease?.leaseMs ?? 0],
  );
  const row = rows[0];
  if (row === undefined) {
    // The entry is gone: it was applied and completed while this write was still running (its
    // hold expired first). Queue the record again so its mirror reads what this write left.
    if (ticket.intent !== undefined) await intend(q, tables, ticket.intent, 0);
    return undefined;
  }
  return row.granted && lease !== undefined
    ? { ...toLease(row, lease.owner), link: claimedLink(row) }
    : undefined;
}

/**
 * Ends an intent whose authority write did not happen: deletes the entry when this intent
 * created it (`seq` 1, still 1) and no worker leases it; otherwise releases the intent's hold
 * without moving `seq` (nothing was written for a lease in flight to re-read).
 *
 * @param q - Where to run.
 * @param tables - The store's tables.
 * @param ticket - The intent's ticket.
 * @returns When done.
 * @example
 * ```ts
 * await withdraw(sql, tables, ticket);
 * ```
 */
export async function withdraw(q: SqlQueryable, tables: JournalTables, ticket: OutboxTicket): Promise<void> {
  if (!isRowId(ticket.id)) return;
  await q.query(
    `WITH target AS MATERIALIZED (
       SELECT id, seq = 1 AND $2::integer = 1 AND ${UNLEASED} AS created FROM ${tables.outbox}
       WHERE id = $1::bigint FOR UPDATE
     ), gone AS (
       DELETE FROM ${tables.outbox} o USING target t WHERE o.id = t.id AND t.created RETURNING o.id
     )
     UPDATE ${tables.outbox} o SET holders = GREATEST(o.holders - 1, 0),
       hold_until = CASE WHEN o.holders <= 1 THEN NULL ELSE o.hold_until END
     FROM target t WHERE o.id = t.id AND NOT t.created AND $3`,
    [ticket.id, ticket.seq, ticket.held === true],
  );
}

/**
 * Leases up to `limit` due, unheld, unleased entries to `owner`, oldest due first.
 *
 * `FOR UPDATE SKIP LOCKED` lets concurrent claimers pass over each other's candidates instead of
 * queueing on them; a candidate another claimer leased and committed meanwhile is re-checked
 * against the WHERE clause when locked (READ COMMITTED), so it drops out rather than being
 * leased twice. The candidates are a MATERIALIZED CTE, not `id IN (subquery)`, so the planner
 * cannot re-run the LIMITed locking scan inside a join.
 *
 * @param q - Where to run.
 * @param tables - The store's tables.
 * @param owner - The worker's name.
 * @param limit - The most entries to lease.
 * @param leaseMs - How long the leases last.
 * @param lane - Only this lane's entries; without it, entries of no lane or of a lane nobody holds.
 * @returns The leases, oldest due first.
 * @example
 * ```ts
 * const leases = await claim(sql, tables, 'worker-1', 10, 30_000);
 * ```
 */
export async function claim(
  q: SqlQueryable,
  tables: JournalTables,
  owner: string,
  limit: number,
  leaseMs: number,
  lane?: string,
): Promise<Lease[]> {
  const { rows } = await q.query<EntryRow & ClaimedLinkRow>(
    `WITH locked AS MATERIALIZED (
       SELECT id, resource_type, legacy_id, target, next_attempt_at FROM ${tables.outbox} o
       WHERE next_attempt_at <= clock_timestamp()
         AND (hold_until IS NULL OR hold_until <= clock_timestamp())
         AND ${UNLEASED}
         AND NOT ${otherLeased(tables, 'o')}
         AND ${notPaused(tables, 'o')}
         AND ${laneClaimable(tables, 'o', '$4')}
       ORDER BY next_attempt_at, id
       LIMIT $1 * 2
       FOR UPDATE SKIP LOCKED
     ), firsts AS MATERIALIZED (
       -- One entry per record: its two directions (a write mirrored one way, a change feed's the
       -- other) must not run at once, or both would see the same link and act on it twice.
       SELECT id, resource_type, legacy_id, target, next_attempt_at FROM (
         SELECT id, resource_type, legacy_id, target, next_attempt_at,
           row_number() OVER (PARTITION BY resource_type, legacy_id ORDER BY next_attempt_at, id) AS n
         FROM locked
       ) ranked WHERE n = 1
     ), candidates AS MATERIALIZED (
       -- The record lock is tried here, on the few rows this claim already holds, not in the
       -- scan above: there the planner may test every row of the outbox before sorting, and a
       -- claim would lock every record, leaving concurrent claimers nothing.
       SELECT id FROM firsts o
       WHERE ${recordFree(tables, 'o')}
       ORDER BY next_attempt_at, id
       LIMIT $1
     ), claimed AS (
       UPDATE ${tables.outbox} o SET ${grant(tables, '$2', '$3')}
       FROM candidates c WHERE o.id = c.id
       RETURNING o.*
     )
     -- RETURNING has no order; sort here, on full-precision times. Qualified, because bare
     -- names in ORDER BY would mean the select list's text columns of the same names.
     -- Each record's link comes along: a mirror would otherwise look it up in a round trip of
     -- its own, and nothing else changes it while the lease holds the record.
     SELECT ${ENTRY_COLUMNS}, ${LINK_COLUMNS}
     FROM claimed ${linkJoin(tables)}
     ORDER BY claimed.next_attempt_at, claimed.id`,
    [limit, owner, leaseMs, lane ?? null],
  );
  return rows.map((row) => ({ ...toLease(row, owner), link: claimedLink(row) }));
}

/**
 * Finishes a lease in one transaction: locks the entry, answers `fenced` if the token moved on,
 * releases it and answers `requeued` if a newer intent bumped `seq`, and otherwise runs `done`
 * (which removes the entry and writes what goes with it) and answers `done`. When `done`
 * throws, everything rolls back and the lease stands. When the entry is gone and `doneBefore`
 * finds this lease's own finish recorded (an earlier try committed, its answer was lost), the
 * answer is `done` again.
 *
 * @param sql - The database.
 * @param tables - The store's tables.
 * @param lease - The worker's lease.
 * @param done - The writes that finish the entry, given the transaction.
 * @param doneBefore - Whether this lease's finish is already recorded, given the transaction.
 * @returns What happened.
 * @example
 * ```ts
 * await finish(sql, tables, lease, (tx) => tx.query(`DELETE FROM ${tables.outbox} WHERE id = $1`, [lease.entry.id]));
 * ```
 */
export async function finish(
  sql: SqlClient,
  tables: JournalTables,
  lease: Lease,
  done: (tx: SqlQueryable) => Promise<unknown>,
  doneBefore?: (tx: SqlQueryable) => Promise<boolean>,
): Promise<LeaseOutcome> {
  if (!isRowId(lease.entry.id)) return 'fenced';
  return sql.transaction(async (tx) => {
    const { rows } = await tx.query<{ seq: number; lease_token: string | null }>(
      `SELECT seq, lease_token::text AS lease_token FROM ${tables.outbox} WHERE id = $1::bigint FOR UPDATE`,
      [lease.entry.id],
    );
    const row = rows[0];
    if (row === undefined && doneBefore !== undefined && (await doneBefore(tx))) return 'done';
    if (row?.lease_token !== lease.token) return 'fenced';
    if (row.seq !== lease.entry.seq) {
      await tx.query(`UPDATE ${tables.outbox} SET ${RELEASE} WHERE id = $1::bigint`, [lease.entry.id]);
      return 'requeued';
    }
    await done(tx);
    return 'done';
  });
}

/**
 * Deletes a finished entry (inside {@link finish}).
 *
 * @param tx - The finishing transaction.
 * @param tables - The store's tables.
 * @param id - The entry's id.
 * @returns When deleted.
 * @example
 * ```ts
 * await finish(sql, tables, lease, (tx) => deleteEntry(tx, tables, lease.entry.id));
 * ```
 */
export async function deleteEntry(tx: SqlQueryable, tables: JournalTables, id: string): Promise<void> {
  await tx.query(`DELETE FROM ${tables.outbox} WHERE id = $1::bigint`, [id]);
}

/**
 * Records a failed attempt and releases the lease; the entry is due again after `delayMs`. One
 * statement, fenced by the token in its WHERE clause; the attempt is recorded even when a newer
 * intent arrived (then the outcome is `requeued`).
 *
 * @param q - Where to run.
 * @param tables - The store's tables.
 * @param lease - The worker's lease.
 * @param error - Why the attempt failed.
 * @param delayMs - The backoff.
 * @returns What happened.
 * @example
 * ```ts
 * await retryLater(sql, tables, lease, { name: 'UnavailableError', message: '503' }, 5_000);
 * ```
 */
export async function retryLater(
  q: SqlQueryable,
  tables: JournalTables,
  lease: Lease,
  error: OutboxError,
  delayMs: number,
): Promise<LeaseOutcome> {
  if (!isRowId(lease.entry.id)) return 'fenced';
  const { rows } = await q.query<{ seq: number }>(
    `UPDATE ${tables.outbox} SET attempts = attempts + 1, last_error = $3::text::jsonb,
       next_attempt_at = clock_timestamp() + ${millis('$4')}, waiting_for = NULL, ${RELEASE}
     WHERE id = $1::bigint AND lease_token::text = $2
     RETURNING seq`,
    [lease.entry.id, lease.token, jsonParam(error), delayMs],
  );
  const row = rows[0];
  if (row === undefined) return 'fenced';
  return row.seq === lease.entry.seq ? 'done' : 'requeued';
}

/**
 * Releases a lease whose mirror waits for a record it references, without counting an attempt:
 * keeps the reason and names the dependency in `waiting_for`, due after `delayMs` — or at once
 * if the dependency was linked meanwhile (its link's trigger found nothing waiting yet). Fenced
 * by the token.
 *
 * @param sql - The database.
 * @param tables - The store's tables.
 * @param lease - The worker's lease.
 * @param wait - The dependency (`Patient/42`, or `Patient#<medplum id>`), and whether the
 *   mirror saw its entry pending.
 * @param error - The visible reason.
 * @param delayMs - When to look again if nothing wakes the entry first.
 * @returns What happened.
 * @example
 * ```ts
 * await defer(sql, tables, lease, { waitingFor: 'Patient/42', whilePending: true }, { name: 'DependencyError', message: '…' }, 30_000);
 * ```
 */
export async function defer(
  sql: SqlClient,
  tables: JournalTables,
  lease: Lease,
  wait: { readonly waitingFor: string; readonly whilePending: boolean },
  error: OutboxError,
  delayMs: number,
): Promise<LeaseOutcome> {
  if (!isRowId(lease.entry.id)) return 'fenced';
  const { waitingFor, whilePending } = wait;
  const dependency = parseWaitingFor(waitingFor);
  return sql.transaction(async (tx) => {
    // The wake's lock (migration 12), taken first: the UPDATE's snapshot then sees a link whose
    // wake came before, and a wake after it sees this entry waiting.
    await tx.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [WAIT_LOCK_CLASS, waitingFor]);
    const { rows } = await tx.query<{ seq: number }>(
      `UPDATE ${tables.outbox} SET last_error = $3::text::jsonb, waiting_for = $4,
         next_attempt_at = CASE
           WHEN EXISTS (SELECT 1 FROM ${tables.links} WHERE $7 AND resource_type = $5 AND legacy_id = $6)
             OR EXISTS (SELECT 1 FROM ${tables.links} WHERE NOT $7 AND resource_type = $5 AND medplum_id = $6)
             -- Seen pending, finished since (dead-lettered, or with nothing to mirror): look again.
             OR ($9 AND $7 AND NOT EXISTS (SELECT 1 FROM ${tables.outbox} WHERE resource_type = $5 AND legacy_id = $6))
           THEN clock_timestamp() ELSE clock_timestamp() + ${millis('$8')} END,
         ${RELEASE}
       WHERE id = $1::bigint AND lease_token::text = $2
       RETURNING seq`,
      [
        lease.entry.id,
        lease.token,
        jsonParam(error),
        waitingFor,
        dependency.resourceType,
        dependency.legacyId ?? dependency.medplumId,
        dependency.legacyId !== undefined,
        delayMs,
        whilePending,
      ],
    );
    const row = rows[0];
    if (row === undefined) return 'fenced';
    return row.seq === lease.entry.seq ? 'done' : 'requeued';
  });
}

/**
 * Records the content hash a lease is about to write (fenced by the token).
 *
 * @param q - Where to run.
 * @param tables - The store's tables.
 * @param lease - The lease.
 * @param hash - The content hash.
 * @returns Whether the lease was still this worker's.
 * @example
 * ```ts
 * await markApplying(sql, tables, lease, 'sha256:…');
 * ```
 */
export async function markApplying(
  q: SqlQueryable,
  tables: JournalTables,
  lease: Lease,
  hash: string,
): Promise<boolean> {
  if (!isRowId(lease.entry.id)) return false;
  const { rows } = await q.query(
    // Newest first, space-separated, at most eight (hashes contain no spaces).
    `UPDATE ${tables.outbox}
       SET applying_hash = array_to_string((string_to_array(concat_ws(' ', $3::text, applying_hash), ' '))[1:8], ' ')
     WHERE id = $1::bigint AND lease_token::text = $2 RETURNING id`,
    [lease.entry.id, lease.token, hash],
  );
  return rows.length > 0;
}

/**
 * Records several leases' content hashes in one statement, each as {@link markApplying} would
 * (fenced by its token), never waiting for a lock on an entry: one locked by another
 * transaction is answered `skipped` and left alone, for the caller to mark on its own.
 *
 * @param q - Where to run.
 * @param tables - The store's tables.
 * @param marks - The leases (of distinct entries) and their hashes.
 * @returns Per mark, in order: `true` (recorded), `false` (fenced) or `skipped`.
 * @example
 * ```ts
 * const [first, second] = await markApplyingMany(sql, tables, [{ lease, hash: 'sha256:…' }, { lease: other, hash: 'sha256:…' }]);
 * ```
 */
export async function markApplyingMany(
  q: SqlQueryable,
  tables: JournalTables,
  marks: readonly { readonly lease: Lease; readonly hash: string }[],
): Promise<(boolean | 'skipped')[]> {
  const rowIds = marks.filter(({ lease }) => isRowId(lease.entry.id));
  if (rowIds.length === 0) return marks.map(() => false);
  const { rows } = await q.query<{ id: string; outcome: 'marked' | 'skipped' | 'fenced' }>(
    `WITH input AS MATERIALIZED (
       SELECT * FROM ROWS FROM (pg_catalog.unnest($1::bigint[]), pg_catalog.unnest($2::text[]),
         pg_catalog.unnest($3::text[])) AS i(id, token, hash)
     ), entry AS MATERIALIZED (
       SELECT o.id FROM ${tables.outbox} o WHERE o.id IN (SELECT id FROM input) ORDER BY o.id FOR UPDATE SKIP LOCKED
     ), marked AS (
       UPDATE ${tables.outbox} o
          SET applying_hash = array_to_string((string_to_array(concat_ws(' ', i.hash, o.applying_hash), ' '))[1:8], ' ')
         FROM input i
        WHERE o.id = i.id AND o.id IN (SELECT id FROM entry) AND o.lease_token::text = i.token
       RETURNING o.id
     )
     SELECT i.id::text AS id,
            CASE WHEN m.id IS NOT NULL THEN 'marked'
                 WHEN e.id IS NULL AND EXISTS (SELECT 1 FROM ${tables.outbox} x WHERE x.id = i.id) THEN 'skipped'
                 ELSE 'fenced' END AS outcome
       FROM input i LEFT JOIN marked m ON m.id = i.id LEFT JOIN entry e ON e.id = i.id`,
    [
      rowIds.map(({ lease }) => lease.entry.id),
      rowIds.map(({ lease }) => lease.token),
      rowIds.map(({ hash }) => hash),
    ],
  );
  const outcomes = new Map(rows.map((row) => [row.id, row.outcome]));
  return marks.map(({ lease }) => {
    const outcome = isRowId(lease.entry.id) ? outcomes.get(lease.entry.id) : undefined;
    return outcome === 'skipped' ? 'skipped' : outcome === 'marked';
  });
}

/**
 * Extends a lease that is still current (its token unchanged), so a worker whose mirror takes
 * long keeps the entry.
 *
 * @param q - Where to run.
 * @param tables - The store's tables.
 * @param lease - The lease.
 * @param leaseMs - The new lifetime from now.
 * @returns Whether the lease was still this worker's.
 * @example
 * ```ts
 * if (!(await renew(sql, tables, lease, 30_000))) console.warn('lease lost');
 * ```
 */
export async function renew(
  q: SqlQueryable,
  tables: JournalTables,
  lease: Lease,
  leaseMs: number,
): Promise<boolean> {
  if (!isRowId(lease.entry.id)) return false;
  const { rows } = await q.query(
    `UPDATE ${tables.outbox} SET lease_expires_at = clock_timestamp() + ${millis('$3')}
     WHERE id = $1::bigint AND lease_token::text = $2
     RETURNING id`,
    [lease.entry.id, lease.token, leaseMs],
  );
  return rows.length > 0;
}

/**
 * Outbox entries, oldest first.
 *
 * @param q - Where to run.
 * @param tables - The store's tables.
 * @param limit - The most entries to return; all when `undefined`.
 * @returns The entries.
 * @example
 * ```ts
 * const entries = await listOutbox(sql, tables, 100);
 * ```
 */
export async function listOutbox(
  q: SqlQueryable,
  tables: JournalTables,
  limit: number | undefined,
): Promise<OutboxEntry[]> {
  const { rows } = await q.query<EntryRow>(
    `SELECT ${ENTRY_COLUMNS} FROM ${tables.outbox} o ORDER BY o.id LIMIT $1`,
    [limit ?? null],
  );
  return rows.map(toEntry);
}

/**
 * Counts pending entries (including held and backing-off ones), leased ones (an unexpired
 * lease) and open dead letters, in one statement so the figures are from one snapshot.
 *
 * @param q - Where to run.
 * @param tables - The store's tables.
 * @returns The counts.
 * @example
 * ```ts
 * const { pending, leased, dead } = await outboxCounts(sql, tables);
 * ```
 */
export async function outboxCounts(
  q: SqlQueryable,
  tables: JournalTables,
  unit?: string,
): Promise<OutboxCounts> {
  const { rows } = await q.query<{
    pending: number;
    waiting: number;
    paused: number;
    leased: number;
    dead: number;
  }>(
    `SELECT count(*) FILTER (WHERE ${UNLEASED} AND NOT ${WAITING} AND ${notPaused(tables, 'o')})::integer AS pending,
       count(*) FILTER (WHERE ${UNLEASED} AND ${WAITING} AND ${notPaused(tables, 'o')})::integer AS waiting,
       count(*) FILTER (WHERE ${UNLEASED} AND NOT ${notPaused(tables, 'o')})::integer AS paused,
       count(*) FILTER (WHERE NOT ${UNLEASED})::integer AS leased,
       (SELECT count(*) FROM ${tables.deadLetters}
         WHERE status = 'open' AND ($1::text IS NULL OR unit = $1))::integer AS dead
     FROM ${tables.outbox} o WHERE $1::text IS NULL OR o.unit = $1`,
    [unit ?? null],
  );
  const { waiting, paused, ...rest } = rows[0] ?? { pending: 0, waiting: 0, paused: 0, leased: 0, dead: 0 };
  return { ...rest, ...(waiting > 0 ? { waiting } : {}), ...(paused > 0 ? { paused } : {}) };
}

/**
 * The outbox and open dead letters counted per unit, resource type and target.
 *
 * @param q - Where to run.
 * @param tables - The store's tables.
 * @returns One line per unit, resource type and target, in that order.
 * @example
 * ```ts
 * const lines = await outboxBacklog(sql, tables);
 * ```
 */
export async function outboxBacklog(q: SqlQueryable, tables: JournalTables): Promise<OutboxBacklog[]> {
  const { rows } = await q.query<{
    unit: string;
    resource_type: string;
    target: 'legacy' | 'medplum';
    pending: number;
    waiting: number;
    leased: number;
    dead: number;
    oldest_at: string | null;
  }>(
    `SELECT unit, resource_type, target, sum(pending)::integer AS pending, sum(waiting)::integer AS waiting,
       sum(leased)::integer AS leased, sum(dead)::integer AS dead, ${iso('min(oldest)')} AS oldest_at
     FROM (
       SELECT unit, resource_type, target,
         count(*) FILTER (WHERE ${UNLEASED} AND NOT ${WAITING}) AS pending,
         count(*) FILTER (WHERE ${UNLEASED} AND ${WAITING}) AS waiting,
         count(*) FILTER (WHERE NOT ${UNLEASED}) AS leased,
         0 AS dead, min(created_at) AS oldest
       FROM ${tables.outbox} GROUP BY unit, resource_type, target
       UNION ALL
       SELECT unit, resource_type, target, 0, 0, 0, count(*), NULL
       FROM ${tables.deadLetters} WHERE status = 'open' GROUP BY unit, resource_type, target
     ) lines
     GROUP BY unit, resource_type, target
     ORDER BY unit, resource_type, target`,
  );
  return rows.map((row) => ({
    unit: row.unit,
    resourceType: row.resource_type,
    target: row.target,
    pending: row.pending,
    waiting: row.waiting,
    leased: row.leased,
    dead: row.dead,
    oldestAt: row.oldest_at ?? undefined,
  }));
}

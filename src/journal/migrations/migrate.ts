import type { SqlClient } from '../../sql/sql-client.ts';
import { initial } from './0001-initial.ts';
import { applyingHash } from './0002-applying-hash.ts';
import { linkBase } from './0003-link-base.ts';
import { holdCount } from './0004-hold-count.ts';
import { eventCounts } from './0005-event-counts.ts';
import { otherDirection } from './0006-other-direction.ts';
import { planStages } from './0010-plan-rows.ts';
import { sharedRuntime } from './0011-shared-runtime.ts';
import { waitingFor } from './0012-waiting-for.ts';
import { jobs } from './0016-jobs.ts';
import { traceParent } from './0020-trace-parent.ts';
import { backlogSamples } from './0021-backlog-samples.ts';
import { unitPauses } from './0027-unit-pauses.ts';
import { letterLease } from './0048-letter-lease.ts';
import { seenCopies } from './0051-seen-copies.ts';
import { outboxLanes } from './0054-outbox-lanes.ts';
import { letterRepeats } from './0056-letter-repeats.ts';
import { resolvedLetters } from './0058-resolved-letters.ts';

/**
 * One numbered step of the journal's schema. Migrations are TypeScript modules, not `.sql`
 * files, because `tsc` does not copy `.sql` files into `dist`.
 *
 * @example
 * ```ts
 * const addIndex: Migration = { version: 2, name: 'events-by-unit', statements: ['CREATE INDEX events_unit ON events (unit, id)'] };
 * ```
 */
export interface Migration {
  /** Applied in increasing order; recorded once applied. */
  readonly version: number;
  /** A short name, recorded beside the version for operators. */
  readonly name: string;
  /** One SQL command each, unqualified (they run with `search_path` set to the schema). */
  readonly statements: readonly string[];
}

/**
 * Every migration of the journal, in order.
 *
 * @example
 * ```ts
 * const latest = JOURNAL_MIGRATIONS.at(-1)?.version;
 * ```
 */
export const JOURNAL_MIGRATIONS: readonly Migration[] = [
  initial,
  applyingHash,
  linkBase,
  holdCount,
  eventCounts,
  otherDirection,
  planStages,
  sharedRuntime,
  waitingFor,
  jobs,
  traceParent,
  backlogSamples,
  unitPauses,
  letterLease,
  seenCopies,
  outboxLanes,
  letterRepeats,
  resolvedLetters,
];

/*
 * Concurrent openers (every service instance starting at once) are serialised by a transaction
 * advisory lock keyed by the schema name, taken before anything else: even `CREATE SCHEMA IF NOT
 * EXISTS` and `CREATE TABLE IF NOT EXISTS` fail with a unique violation on the catalog when two
 * sessions run them at the same time. The lock is released by the transaction's end, so a
 * crashed opener cannot leave it held. PGlite has the same function; with its single connection
 * it never waits, which is also all it needs.
 *
 * The two-integer form keeps the library's locks in their own key space (the first key) apart
 * from whatever single-bigint keys the application uses.
 */
const LOCK_CLASS = 0x64770001; // "dw" 1

/**
 * Applies the migrations `schema` has not had yet, in order, in one transaction (all or none),
 * creating the schema and its `migrations` table if missing. Safe to call from many processes
 * at once and on every start: what was applied is never applied again.
 *
 * @param sql - The database.
 * @param schema - A schema name already checked by `isSchemaName`.
 * @param migrations - The migrations to bring the schema to.
 * @returns The versions applied by this call (empty when the schema was up to date).
 * @example
 * ```ts
 * const applied = await migrate(sqlClientFromPg(pool), 'dualwrite');
 * ```
 */
export async function migrate(
  sql: SqlClient,
  schema: string,
  migrations: readonly Migration[] = JOURNAL_MIGRATIONS,
): Promise<number[]> {
  const ordered = [...migrations].sort((a, b) => a.version - b.version);
  const q = `"${schema}"`;
  return sql.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1::integer, $2::integer)', [LOCK_CLASS, lockKey(schema)]);
    await tx.query(`CREATE SCHEMA IF NOT EXISTS ${q}`);
    await tx.query(`CREATE TABLE IF NOT EXISTS ${q}.migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
    )`);
    const { rows } = await tx.query<{ version: number }>(`SELECT version FROM ${q}.migrations`);
    const done = new Set(rows.map((row) => row.version));
    const pending = ordered.filter((migration) => !done.has(migration.version));
    if (pending.length === 0) return [];
    // LOCAL: the path reverts when the transaction ends, so a pooled connection goes back clean.
    await tx.query(`SET LOCAL search_path TO ${q}`);
    for (const migration of pending) {
      for (const statement of migration.statements) await tx.query(statement);
      await tx.query(`INSERT INTO ${q}.migrations (version, name) VALUES ($1, $2)`, [
        migration.version,
        migration.name,
      ]);
    }
    return pending.map((migration) => migration.version);
  });
}

/** A stable 32-bit key for the schema name (FNV-1a), as a signed integer for `integer`. */
function lockKey(schema: string): number {
  let hash = 0x811c9dc5;
  for (const char of schema) {
    hash ^= char.charCodeAt(0);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash | 0;
}

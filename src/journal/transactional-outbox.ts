import type { LegacyAdapter } from '../sides/legacy-adapter.ts';
import type { SqlClient, SqlQueryable } from '../sql/sql-client.ts';
import type { OutboxIntent, OutboxTicket } from './outbox.ts';
import type { SyncStore } from './sync-store.ts';

/**
 * A store that can record an intent inside a caller's transaction (`PostgresStore`).
 */
interface JournalInTransactions {
  readonly sql: SqlClient;
  intendWithin(tx: SqlQueryable, intent: OutboxIntent): Promise<OutboxTicket>;
}

/**
 * A legacy adapter that can work inside a transaction of its database (`PostgresTableAdapter`).
 */
interface LegacyInTransactions<L> {
  readonly sql: SqlClient;
  within(tx: SqlQueryable): LegacyAdapter<L>;
}

/**
 * One transaction that holds both a legacy write and its outbox entry: a transactional outbox.
 * Either both commit or neither does, so no hold is needed while the write runs and a crash
 * can leave nothing half done.
 */
export interface TransactionalOutbox<L> {
  /**
   * Runs `fn` in one transaction of the shared database.
   *
   * @param fn - Gets the legacy adapter and the journal, both bound to the transaction.
   * @returns What `fn` returns, once committed.
   */
  run<T>(
    fn: (legacy: LegacyAdapter<L>, intend: (intent: OutboxIntent) => Promise<OutboxTicket>) => Promise<T>,
  ): Promise<T>;
}

/**
 * The transactional outbox of a store and a legacy adapter, when they share one database: both
 * built on the same `SqlClient` (a `PostgresStore` and a `PostgresTableAdapter` given the same
 * `sql`). `undefined` otherwise; the writer then records the intent before the legacy write and
 * holds it until the write returns.
 *
 * @param store - The writer's store.
 * @param legacy - The writer's legacy adapter.
 * @returns The transactional outbox, or `undefined`.
 */
export function transactionalOutboxOf<L>(
  store: SyncStore,
  legacy: LegacyAdapter<L>,
): TransactionalOutbox<L> | undefined {
  const journal = store as Partial<JournalInTransactions>;
  const adapter = legacy as Partial<LegacyInTransactions<L>>;
  const sql = journal.sql;
  if (
    sql === undefined ||
    adapter.sql !== sql ||
    typeof journal.intendWithin !== 'function' ||
    typeof adapter.within !== 'function'
  ) {
    return undefined;
  }
  const intendWithin = journal.intendWithin.bind(journal);
  const within = adapter.within.bind(adapter);
  return {
    run: (fn) => sql.transaction((tx) => fn(within(tx), (intent) => intendWithin(tx, intent))),
  };
}

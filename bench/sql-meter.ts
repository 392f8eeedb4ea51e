import { performance } from 'node:perf_hooks';
import type { SqlClient, SqlQueryable, SqlResult } from '../src/index.ts';
import { addKind, type KindTally } from './kind-tally.ts';

/** Round trips and time spent in SQL by one side (the journal, the legacy table). */
export interface SqlTally {
  /** Statements sent. */
  roundTrips: number;
  /** Wall time of the statements, summed (overlapping calls add up). */
  ms: number;
}

/** The side BEGIN and COMMIT (and their time) are counted under. */
export const TRANSACTION_SIDE = 'tx';

/**
 * Wraps a {@link SqlClient} so every statement is counted, timed and attributed to a side (the
 * journal's or the legacy table's, told apart by the statement's text), to tell where a write's
 * round trips and time go. A transaction's BEGIN and COMMIT count as two round trips of the
 * {@link TRANSACTION_SIDE} side, timed as the transaction's wall time minus its statements'.
 *
 * The store and the legacy adapter must be given the same `client` object when they share a
 * database: the writer only uses a transactional outbox for a store and adapter on one client.
 * {@link SqlMeter.separateClient} gives a second object, for measuring the path without it.
 *
 * @example
 * ```ts
 * const meter = new SqlMeter(sqlClientFromPg(pool), (sql) => (sql.includes('"journal".') ? 'journal' : 'legacy'));
 * const store = await PostgresStore.open({ sql: meter.client, schema: 'journal' });
 * meter.reset();
 * await writer.create('Patient', row, ctx);
 * console.log(meter.side('journal').roundTrips);
 * ```
 */
export class SqlMeter {
  readonly client: SqlClient;
  /** Count and time by side and statement kind (see {@link statementKind}). */
  readonly byKind: KindTally = new Map();
  readonly #sides = new Map<string, SqlTally>();
  readonly #inner: SqlClient;
  readonly #sideOf: (text: string) => string;
  #transactions = 0;

  /**
   * @param inner - The client to meter.
   * @param sideOf - The side a statement belongs to, from its text.
   */
  constructor(inner: SqlClient, sideOf: (text: string) => string) {
    this.#inner = inner;
    this.#sideOf = sideOf;
    this.client = this.separateClient();
  }

  /**
   * Another client object over the same connection pool and tallies: a store and an adapter
   * given different objects do not share transactions.
   *
   * @returns The client.
   */
  separateClient(): SqlClient {
    const top = this.#metered(this.#inner, { ms: 0 });
    return {
      query: top.query,
      transaction: async <T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T> => {
        this.#transactions += 1;
        const inside = { ms: 0 };
        const started = performance.now();
        try {
          return await this.#inner.transaction((tx) => fn(this.#metered(tx, inside)));
        } finally {
          this.#add(TRANSACTION_SIDE, 'BEGIN/COMMIT', 2, performance.now() - started - inside.ms);
        }
      },
    };
  }

  /**
   * The figures of one side since the last {@link SqlMeter.reset}.
   *
   * @param name - The side.
   * @returns Its round trips and time.
   */
  side(name: string): Readonly<SqlTally> {
    return { ...(this.#sides.get(name) ?? { roundTrips: 0, ms: 0 }) };
  }

  /** Every side's figures, summed. */
  get total(): Readonly<SqlTally & { transactions: number }> {
    let roundTrips = 0;
    let ms = 0;
    for (const tally of this.#sides.values()) {
      roundTrips += tally.roundTrips;
      ms += tally.ms;
    }
    return { roundTrips, ms, transactions: this.#transactions };
  }

  /** Starts counting from zero. */
  reset(): void {
    this.#sides.clear();
    this.byKind.clear();
    this.#transactions = 0;
  }

  #metered(q: SqlQueryable, inside: { ms: number }): SqlQueryable {
    return {
      query: async <R>(text: string, params?: readonly unknown[]): Promise<SqlResult<R>> => {
        const started = performance.now();
        try {
          return await q.query<R>(text, params);
        } finally {
          const elapsed = performance.now() - started;
          inside.ms += elapsed;
          this.#add(this.#sideOf(text), statementKind(text), 1, elapsed);
        }
      },
    };
  }

  #add(side: string, kind: string, roundTrips: number, ms: number): void {
    const tally = this.#sides.get(side) ?? { roundTrips: 0, ms: 0 };
    this.#sides.set(side, { roundTrips: tally.roundTrips + roundTrips, ms: tally.ms + ms });
    addKind(this.byKind, `${side} ${kind}`, roundTrips, ms);
  }
}

/**
 * A short label for a statement: its verb and the first table it names, e.g.
 * `INSERT outbox` or `WITH outbox`.
 *
 * @param text - The SQL.
 * @returns The label.
 */
export function statementKind(text: string): string {
  const verb = /^\s*(\w+)/.exec(text)?.[1]?.toUpperCase() ?? '?';
  // The bench numbers its legacy tables (patients_3): one kind for all of them.
  const table = /(?:FROM|INTO|UPDATE)\s+(?:"[^"]+"\.)?"?(\w+)/i.exec(text)?.[1]?.replace(/_\d+$/, '') ?? '';
  return `${verb} ${table}`.trim();
}

/**
 * Tells journal statements from legacy ones by the journal's schema name in their text (the
 * store qualifies every table with it).
 *
 * @param journalSchema - The store's schema.
 * @returns The side function for {@link SqlMeter}.
 */
export function journalOrLegacy(journalSchema: string): (text: string) => string {
  const marker = `"${journalSchema}".`;
  return (text) => (text.includes(marker) ? 'journal' : 'legacy');
}

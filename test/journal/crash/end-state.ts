/**
 * What a crash-test run left behind, read once every writer process is dead: the legacy table,
 * the journal (outbox, dead letters, links) and every Medplum copy carrying the run's
 * identifier system.
 */
import type { Patient } from '@medplum/fhirtypes';
import { createMedplumClient, type Link, type SqlClient } from '../../../src/index.ts';
import type { DeadLetter, OutboxCounts, OutboxEntry } from '../../../src/journal/outbox.ts';
import type { RecordedEvent } from '../../../src/journal/sync-store.ts';
import type { FhirTestServer } from '../../../src/testing/index.ts';
import { copiesByLegacyId } from '../workers/medplum-copies.ts';
import type { OpenBackend } from './crash-backend.ts';

/** The legacy row's mapped and legacy-only columns. */
export interface LegacyRow {
  readonly id: number;
  readonly clinic: string;
  readonly first_name: string;
  readonly last_name: string;
  readonly birth_date: string | null;
  readonly notes: string | null;
}

/** Everything the checks look at. */
export interface EndState {
  readonly rows: ReadonlyMap<number, LegacyRow>;
  readonly counts: OutboxCounts;
  readonly outbox: readonly OutboxEntry[];
  readonly openDeadLetters: readonly DeadLetter[];
  /** Conflict events the mirrors recorded. */
  readonly conflicts: readonly RecordedEvent[];
  /** Medplum copies by the legacy id in their identifier. */
  readonly copies: ReadonlyMap<string, readonly Patient[]>;
  readonly links: ReadonlyMap<string, Link>;
}

/**
 * Reads the end state.
 *
 * @param backend - The run's journal and legacy table, opened by the parent.
 * @param server - The FHIR test server (faults cleared).
 * @param system - The run's identifier system.
 * @returns The end state.
 */
export async function readEndState(
  backend: OpenBackend,
  server: FhirTestServer,
  system: string,
): Promise<EndState> {
  const { store, sql, table } = backend;
  const rows = await legacyRows(sql, table);
  const links = new Map<string, Link>();
  for (const id of rows.keys()) {
    const link = await store.getLink('Patient', String(id));
    if (link !== undefined) links.set(String(id), link);
  }
  const copies = await copiesByLegacyId(createMedplumClient({ baseUrl: server.baseUrl }), system);
  return {
    rows,
    counts: await store.outboxCounts(),
    outbox: await store.listOutbox(),
    openDeadLetters: await store.listDeadLetters({ status: 'open' }),
    conflicts: await store.listEvents({ type: 'conflict' }),
    copies,
    links,
  };
}

async function legacyRows(sql: SqlClient, table: string): Promise<Map<number, LegacyRow>> {
  // The date as text: pg would parse it into a Date in the local time zone.
  const { rows } = await sql.query<LegacyRow>(
    `select id, clinic, first_name, last_name, birth_date::text as birth_date, notes from ${table} order by id`,
  );
  return new Map(rows.map((row) => [row.id, row]));
}

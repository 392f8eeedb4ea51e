import type { MedplumClient } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import type { SyncStore } from '../journal/sync-store.ts';
import type { ResourceMapping } from '../mapping/resource-mapping.ts';
import type { LegacyAdapter } from '../sides/legacy-adapter.ts';

/**
 * A record as a job's `unitOf` sees it: the legacy row or the Medplum resource it read (the
 * same shape as the change feeds' `unitOf` takes, so one function serves both).
 *
 * @example
 * ```ts
 * const unitOf = (record: JobRecord<{ clinic: string }>) => record.row?.clinic;
 * ```
 */
export interface JobRecord<L> {
  /** The FHIR resource type. */
  readonly resourceType: string;
  /** The record's legacy id. */
  readonly legacyId: string;
  /** The legacy row, when the job read the legacy side. */
  readonly row?: L | undefined;
  /** The Medplum resource, when the job read Medplum. */
  readonly resource?: Resource | undefined;
}

/**
 * What keeps a job's Medplum requests within the server's quota. A job asks before each
 * request, with the request's cost in quota points (a search 20, a read 1); the pacer resolves
 * when the request may go. Plug in the quota-aware pacer the live writer shares, so that live
 * mirrors keep their share; without one, a job does not wait.
 *
 * @example
 * ```ts
 * const pacer: JobPacer = { take: async (points) => { await budget.reserve(points); } };
 * ```
 */
export interface JobPacer {
  /** Resolves when a request costing `points` may be sent; rejects when `signal` aborts. */
  take(points: number, signal?: AbortSignal): Promise<void>;
}

/**
 * What backfills and reconciliations need: the journal, the two systems and the mappings. A
 * writer passes its own (`writer.backfill`); an operator tool builds one without a writer.
 *
 * @typeParam L - The legacy row shape.
 * @example
 * ```ts
 * const ctx: JobContext<PostgresTableRow> = { store, legacy, medplum, mappings: [patients], unitOf: (r) => r.row?.clinic as string };
 * const job = await backfill(ctx, { resourceType: 'Patient', direction: 'to-medplum' });
 * ```
 */
export interface JobContext<L> {
  /** The journal: jobs, links and the outbox the records are queued in. */
  readonly store: SyncStore;
  /** The legacy system. */
  readonly legacy: LegacyAdapter<L>;
  /**
   * Medplum. A job may use a client of its own (its own user, so its own quota): see the
   * README's "Backfill and reconciliation".
   */
  readonly medplum: MedplumClient;
  /** One mapping per resource type. */
  readonly mappings: readonly ResourceMapping<L>[];
  /**
   * The unit of a record; `undefined` when it cannot tell (the record is counted as skipped).
   * Without it, every record belongs to the job's `unit`.
   */
  readonly unitOf?: ((record: JobRecord<L>) => string | undefined | Promise<string | undefined>) | undefined;
  /** Paces the job's Medplum requests (see {@link JobPacer}). */
  readonly pacer?: JobPacer | undefined;
}

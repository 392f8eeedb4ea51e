import type { MedplumClient } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import type { SyncStore } from '../journal/sync-store.ts';
import type { RetryOptions } from '../mirror/retry-policy.ts';
import type { QuotaPacer } from '../pacing/quota-pacer.ts';
import type { ResourceMapping } from '../mapping/resource-mapping.ts';
import type { LegacyAdapter } from '../sides/legacy-adapter.ts';
import type { LaneDrainers } from './own-client.ts';

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
   * Medplum: the client the job searches with (a backfill's `ownClient` replaces it for that
   * backfill, its writes included: see the README's "Pacing and the quota").
   */
  readonly medplum: MedplumClient;
  /** One mapping per resource type. */
  readonly mappings: readonly ResourceMapping<L>[];
  /**
   * The unit of a record; `undefined` when it cannot tell (the record is counted as skipped).
   * Without it, every record belongs to the job's `unit` (right only for an application of one
   * unit: the writer and the operator refuse a unit's job while the plan has other units).
   */
  readonly unitOf?: ((record: JobRecord<L>) => string | undefined | Promise<string | undefined>) | undefined;
  /**
   * The quota pacer of the Medplum client's user: the job's requests go in its background
   * lane, so live calls sharing the client keep their reserve. Give the writer's (`pacer`
   * option) when the job shares its client; without one, the job's requests are not paced.
   */
  readonly pacer?: QuotaPacer | undefined;
  /**
   * How long a job's Medplum request may go unanswered (once the pacer let it go) before it is
   * abandoned with a `RequestTimeoutError` and retried; a writer passes its own
   * `requestTimeoutMs`. @default 10000
   */
  readonly requestTimeoutMs?: number | undefined;
  /**
   * How a job retries a Medplum request that failed transiently (network errors, 408, 429,
   * 5xx); a writer passes its own `retry`. @default the library's ({@link RetryOptions})
   */
  readonly retry?: RetryOptions | undefined;
  /**
   * How a backfill given a client of its own (`ownClient`) applies its writes on it: a drainer
   * of the job's outbox lane with the writer's mirror path. A writer gives it (`writer.backfill`);
   * without it, `ownClient` is refused.
   */
  readonly laneDrainers?: LaneDrainers | undefined;
}

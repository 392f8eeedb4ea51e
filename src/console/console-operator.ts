import type { Side } from '../errors.ts';
import type { Job, JobFilter } from '../journal/job.ts';
import type { BacklogSample, LagPoint } from '../journal/operating-history.ts';
import type { OutboxError } from '../journal/outbox.ts';
import type { StoredPlan } from '../journal/stored-plan.ts';
import type { Readiness } from '../plan/readiness.ts';
import type { Stage } from '../plan/stage.ts';

/*
 * What the console reads and does, as a structural interface: the operator API (`Operator`)
 * answers it as it is, so the console constructs nothing of its own and every action it offers
 * is an operator call. Only the fields the console shows are listed.
 */

/**
 * A unit's stages and backlog, as the console reads it from the operator's status.
 *
 * @example
 * ```ts
 * const unit: ConsoleUnit = { unit: 'north', stages: { Patient: 'shadow' }, pending: 0, waiting: 0, leased: 0, dead: 1, oldestAgeMs: undefined };
 * ```
 */
export interface ConsoleUnit {
  readonly unit: string;
  /** The stage of each mapped resource type. */
  readonly stages: Readonly<Record<string, Stage>>;
  /** The unit's pause, when an operator paused its mirroring. */
  readonly paused?:
    | {
        readonly since: string;
        readonly by: string | undefined;
        readonly reason: string | undefined;
      }
    | undefined;
  readonly pending: number;
  readonly waiting: number;
  readonly leased: number;
  readonly dead: number;
  readonly oldestAgeMs: number | undefined;
}

/**
 * A dead letter as the console shows it: ids, unit, reason, never the record.
 *
 * @example
 * ```ts
 * const letter: ConsoleDeadLetter = { id: '7', resourceType: 'Patient', legacyId: 'p-1', target: 'medplum', unit: 'north', attempts: 1, reason: { name: 'RejectedError', message: 'refused' }, failedAt: new Date().toISOString() };
 * ```
 */
export interface ConsoleDeadLetter {
  readonly id: string;
  readonly resourceType: string;
  readonly legacyId: string;
  readonly target: Side;
  readonly unit: string;
  readonly attempts: number;
  readonly reason: OutboxError;
  readonly failedAt: string;
}

/**
 * Which open dead letters a bulk action takes: those of one reason (error name), optionally of
 * one unit, resource type and side.
 *
 * @example
 * ```ts
 * const selection: ConsoleSelection = { reason: 'RejectedError', unit: 'north' };
 * ```
 */
export interface ConsoleSelection {
  readonly reason?: string | undefined;
  readonly unit?: string | undefined;
  readonly resourceType?: string | undefined;
  readonly target?: Side | undefined;
}

/**
 * What a bulk action did.
 *
 * @example
 * ```ts
 * const outcome: ConsoleBulkOutcome = { matched: 3, done: ['1', '2'], skipped: ['3'] };
 * ```
 */
export interface ConsoleBulkOutcome {
  readonly matched: number;
  readonly done: readonly string[];
  readonly skipped: readonly string[];
}

/**
 * The operator calls the console makes. `Operator` (the operator API) is one.
 *
 * @example
 * ```ts
 * const operator: ConsoleOperator = new Operator({ store, mappings, plan });
 * await startConsole({ operator, store });
 * ```
 */
export interface ConsoleOperator {
  /** The plan as stored, every unit's stages and backlog. */
  status(): Promise<{
    readonly plan: StoredPlan;
    readonly units: readonly ConsoleUnit[];
  }>;
  /** A unit's readiness: each gate with its figure, limit and evidence. */
  readiness(unit: string): Promise<Readiness>;
  /** Open dead letters, oldest first. */
  deadLetters(filter?: { readonly limit?: number | undefined }): Promise<readonly ConsoleDeadLetter[]>;
  /** Queues a dead letter's record again; `false` when it was closed already. */
  retryDeadLetter(id: string): Promise<boolean>;
  /** Retries every open letter of a selection. */
  retryDeadLetters(selection: ConsoleSelection): Promise<ConsoleBulkOutcome>;
  /** Closes a dead letter with a note; `false` when it was closed already. */
  discardDeadLetter(id: string, note: string): Promise<boolean>;
  /** Discards every open letter of a selection. */
  discardDeadLetters(selection: ConsoleSelection, note: string): Promise<ConsoleBulkOutcome>;
  /** Backfills and reconciliations, newest first. */
  jobs(filter?: JobFilter): Promise<readonly Job[]>;
}

/**
 * What the console charts and where it records its audit events: the journal itself (a
 * `SyncStore` is one).
 *
 * @example
 * ```ts
 * const journal: ConsoleJournal = store;
 * ```
 */
export interface ConsoleJournal {
  recordBacklog(recording: { readonly stepMs: number; readonly keepMs: number }): Promise<void>;
  backlogHistory(options: { readonly since: string }): Promise<BacklogSample[]>;
  lagHistory(options: { readonly since: string; readonly stepMs: number }): Promise<LagPoint[]>;
  appendEvent(event: {
    readonly type: string;
    readonly unit?: string | undefined;
    readonly resourceType?: string | undefined;
    readonly legacyId?: string | undefined;
    readonly data?: Readonly<Record<string, unknown>> | undefined;
  }): Promise<void>;
}

import type { Side } from '../errors.ts';
import type { UnitPause } from '../journal/housekeeping.ts';
import type { Job } from '../journal/job.ts';
import type { DeadLetter, OutboxBacklog, OutboxError, OutboxKind } from '../journal/outbox.ts';
import type { StoredPlan } from '../journal/stored-plan.ts';
import type { Stage } from '../plan/stage.ts';

/*
 * What the operator API answers with. Every result is plain data: JSON-serialisable as is
 * (`JSON.stringify` gives the CLI's `--json`), with stable field names, and value-free — ids,
 * units, types, stages, counts, error names and paths, never a field of a record.
 */

/**
 * One line of the backlog: a unit's mirrors of one resource type towards one side, with how
 * long the oldest has been owed.
 *
 * @example
 * ```ts
 * for (const line of await operator.outbox()) console.log(line.unit, line.resourceType, line.pending, line.oldestAgeMs);
 * ```
 */
export interface BacklogLine extends OutboxBacklog {
  /** Milliseconds since the oldest entry of the line was recorded; `undefined` without one. */
  readonly oldestAgeMs: number | undefined;
}

/**
 * A dead letter as an operator sees it: everything but the record copy it may keep.
 *
 * @example
 * ```ts
 * const letter: DeadLetterView = await operator.deadLetter('42');
 * console.log(letter.reason.name, letter.reason.status, letter.attempts);
 * ```
 */
export interface DeadLetterView {
  /** The dead letter's id. */
  readonly id: string;
  /** The FHIR resource type. */
  readonly resourceType: string;
  /** The record's legacy id. */
  readonly legacyId: string;
  /** The side the mirror was writing to. */
  readonly target: Side;
  /** The unit of the last write. */
  readonly unit: string;
  /** `upsert` or `delete`. */
  readonly kind: OutboxKind;
  /** Attempts made before giving up. */
  readonly attempts: number;
  /** Why it failed: the error's name, message (no field values), HTTP status and side. */
  readonly reason: OutboxError;
  /** When it was dead-lettered (ISO 8601). */
  readonly failedAt: string;
  /**
   * How many times the same failure recurred while the letter was open (the record queued and
   * refused again the same way counts here, not as a second letter); `0` when it failed once.
   */
  readonly repeats: number;
  /** When the failure last recurred (ISO 8601); absent when it never did. */
  readonly lastFailedAt?: string | undefined;
  /** `open` until an operator retries, discards or resolves it. */
  readonly status: DeadLetter['status'];
  /** When an operator closed it. */
  readonly resolvedAt: string | undefined;
  /** The operator's note, for discards and resolutions. */
  readonly note: string | undefined;
  /** For a `resolved` letter, what decided it: the side that won, or a merged resource. */
  readonly resolution?: 'legacy' | 'medplum' | 'merged' | undefined;
  /** Whether the letter keeps the caller's copy of the record (never shown here). */
  readonly keepsRecordCopy: boolean;
}

/**
 * What a bulk dead-letter action did: the letters it matched, and which of them it closed.
 * A letter closed meanwhile by another operator is `skipped`.
 *
 * @example
 * ```ts
 * const { done, skipped } = await operator.retryDeadLetters({ reason: 'UnavailableError' });
 * ```
 */
export interface BulkOutcome {
  /** How many open letters matched the filter. */
  readonly matched: number;
  /** The ids of the letters acted on. */
  readonly done: readonly string[];
  /** The ids of letters found closed already. */
  readonly skipped: readonly string[];
}

/**
 * A conflict as recorded: which record, which resolver decided what, and which paths each
 * side had changed (paths only).
 *
 * @example
 * ```ts
 * for (const c of await operator.conflicts({ unit: 'north' })) console.log(c.at, c.resolvedBy, c.resolution);
 * ```
 */
export interface ConflictView {
  /** The event's id. */
  readonly id: string;
  /** When it was recorded (ISO 8601). */
  readonly at: string;
  /** The FHIR resource type. */
  readonly resourceType: string | undefined;
  /** The record's legacy id. */
  readonly legacyId: string | undefined;
  /** The Medplum id, when known. */
  readonly medplumId: string | undefined;
  /** The unit. */
  readonly unit: string | undefined;
  /** The stage the unit was in. */
  readonly stage: string | undefined;
  /** The side the mirror was writing to. */
  readonly target: string | undefined;
  /** The resolver's name. */
  readonly resolvedBy: string | undefined;
  /** What was decided: a side, `merged` or `manual`. */
  readonly resolution: string | undefined;
  /** The JSON paths each side changed since the last sync (`undefined` without a base). */
  readonly changedPaths: {
    readonly legacy: readonly string[] | undefined;
    readonly medplum: readonly string[] | undefined;
  };
}

/**
 * Conflicts recorded since an instant, counted by the resolver that decided them.
 *
 * @example
 * ```ts
 * const { byResolver } = await operator.conflictCounts({ unit: 'north' });
 * ```
 */
export interface ConflictCounts {
  /** The instant counted from (ISO 8601). */
  readonly since: string;
  /** The unit counted, or `undefined` for every unit. */
  readonly unit: string | undefined;
  /** How many, by resolver name. */
  readonly byResolver: Readonly<Record<string, number>>;
  /** How many in all. */
  readonly total: number;
}

/**
 * A unit as the status shows it: its stages per mapped type and its backlog.
 *
 * @example
 * ```ts
 * const north: UnitStatus | undefined = (await operator.status()).units.find((u) => u.unit === 'north');
 * ```
 */
export interface UnitStatus {
  /** The unit. */
  readonly unit: string;
  /** The stage of each mapped resource type. */
  readonly stages: Readonly<Record<string, Stage>>;
  /**
   * The unit's pause, when an operator paused its mirroring (`pauseUnit`): since when, by whom
   * and why. Its mirrors stay owed (counted in `pending`) until it resumes.
   */
  readonly paused: Omit<UnitPause, 'unit'> | undefined;
  /** Mirrors waiting. */
  readonly pending: number;
  /** Mirrors waiting for a record they reference. */
  readonly waiting: number;
  /** Mirrors a worker holds now. */
  readonly leased: number;
  /** Open dead letters. */
  readonly dead: number;
  /** Milliseconds the oldest mirror of the unit has been owed; `undefined` without one. */
  readonly oldestAgeMs: number | undefined;
}

/**
 * The migration at a glance: the plan, every unit's stages and backlog, the jobs still open.
 *
 * @example
 * ```ts
 * const status: OperatorStatus = await operator.status();
 * console.log(JSON.stringify(status));
 * ```
 */
export interface OperatorStatus {
  /** When the status was read (ISO 8601). */
  readonly at: string;
  /** The plan as stored (or as configured, for a plan that follows no store). */
  readonly plan: StoredPlan;
  /** Every unit the plan lists, the journal holds mirrors for or an operator paused, by name. */
  readonly units: readonly UnitStatus[];
  /** The whole backlog. */
  readonly totals: {
    readonly pending: number;
    readonly waiting: number;
    readonly leased: number;
    readonly dead: number;
    readonly oldestAgeMs: number | undefined;
  };
  /** Backfills and reconciliations still running or paused, newest first. */
  readonly openJobs: readonly Job[];
}

/**
 * A dead letter as an operator sees it.
 *
 * @param letter - The stored letter.
 * @returns It without the record copy.
 * @example
 * ```ts
 * const view = deadLetterView(await store.getDeadLetter('42'));
 * ```
 */
export function deadLetterView(letter: DeadLetter): DeadLetterView {
  return {
    id: letter.id,
    resourceType: letter.resourceType,
    legacyId: letter.legacyId,
    target: letter.target,
    unit: letter.unit,
    kind: letter.kind,
    attempts: letter.attempts,
    reason: {
      name: letter.reason.name,
      message: letter.reason.message,
      ...(letter.reason.status === undefined ? {} : { status: letter.reason.status }),
      ...(letter.reason.side === undefined ? {} : { side: letter.reason.side }),
      ...(letter.reason.fields === undefined || letter.reason.fields.length === 0
        ? {}
        : { fields: letter.reason.fields }),
    },
    failedAt: letter.failedAt,
    repeats: letter.repeats ?? 0,
    ...(letter.lastFailedAt === undefined ? {} : { lastFailedAt: letter.lastFailedAt }),
    status: letter.status,
    resolvedAt: letter.resolvedAt,
    note: letter.note,
    ...(letter.resolution === undefined ? {} : { resolution: letter.resolution }),
    keepsRecordCopy: letter.base !== undefined && letter.base !== null,
  };
}

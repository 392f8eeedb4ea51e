import type { RevealedDiffEntry } from '../divergence/diff.ts';
import { DualWriteError, type ErrorDetails, type Side } from '../errors.ts';
import type { ConflictContext } from './conflict-context.ts';

/**
 * What is recorded of a conflict: who changed which fields since the last sync, and how it was
 * resolved. Inside the writer the changes carry values; every event a sink sees has them
 * replaced by value hashes (unless that sink reveals values), and an error carries paths only.
 *
 * @example
 * ```ts
 * const onEvent = (event: DualWriteEvent): void => {
 *   if (event.type === 'conflict') console.log(event.changes.legacy?.map((c) => c.path));
 * };
 * ```
 */
export interface ConflictReport extends Pick<
  ConflictContext,
  'resourceType' | 'legacyId' | 'medplumId' | 'unit' | 'stage' | 'authority'
> {
  /** The side the mirror that found the conflict was writing to. */
  readonly target: Side;
  /** The resolver's name (`authority-wins`, `three-way-merge`, … or `custom`). */
  readonly resolvedBy: string;
  /** What was decided. */
  readonly resolution: Side | 'merged' | 'manual';
  /**
   * What each side changed since the last sync, as JSON paths; `undefined` without a base
   * snapshot (`baseSnapshot: 'hash-only'`).
   */
  readonly changes: {
    readonly legacy: readonly RevealedDiffEntry[] | undefined;
    readonly medplum: readonly RevealedDiffEntry[] | undefined;
  };
  /** Which sides had deleted the record. */
  readonly deleted: { readonly legacy: boolean; readonly medplum: boolean };
  /** The target's version at the last sync. */
  readonly expectedVersion: string | undefined;
  /** The target's version found. */
  readonly actualVersion: string | undefined;
}

/**
 * A conflict that a resolver left to a person (`{ manual }`). Not retryable: the entry waits in
 * the dead-letter queue until an operator decides with `writer.resolveDeadLetter(id, resolution)`;
 * both systems keep their copies meanwhile.
 *
 * @example
 * ```ts
 * if (err instanceof MirrorError && err.cause instanceof ReviewRequiredError) queueForReview(err.cause.report);
 * ```
 */
export class ReviewRequiredError extends DualWriteError {
  override readonly name = 'ReviewRequiredError' as const;
  readonly retryable = false as const;
  /** The conflict, with paths only (no values: errors get logged). */
  readonly report: ConflictReport;
  /** The resolver's reason. */
  readonly reason: string;
  /** Whether the resolver asked for a Medplum `Task`. */
  readonly task: boolean;
  /**
   * @param report - The conflict.
   * @param reason - The resolver's reason.
   * @param task - Whether a Medplum `Task` was asked for.
   * @param details - The record concerned.
   */
  constructor(report: ConflictReport, reason: string, task: boolean, details: ErrorDetails) {
    super(`${report.resourceType}/${report.legacyId} changed on both sides and awaits review: ${reason}`, {
      ...details,
      status: 409,
    });
    this.report = {
      ...report,
      changes: { legacy: pathsOnly(report.changes.legacy), medplum: pathsOnly(report.changes.medplum) },
    };
    fullReports.set(this, report);
    this.reason = reason;
    this.task = task;
  }
}

/** The reports with values, for sinks that reveal them; never on the error itself. */
const fullReports = new WeakMap<ReviewRequiredError, ConflictReport>();

/**
 * The conflict report of a {@link ReviewRequiredError} with its values, for the writer's event
 * publishing (which redacts per sink). Internal.
 *
 * @param error - The error.
 * @returns The full report.
 * @example
 * ```ts
 * publish({ type: 'conflict', ...fullReportOf(err) });
 * ```
 */
export function fullReportOf(error: ReviewRequiredError): ConflictReport {
  return fullReports.get(error) ?? error.report;
}

function pathsOnly(
  changes: readonly RevealedDiffEntry[] | undefined,
): readonly RevealedDiffEntry[] | undefined {
  return changes?.map(({ path, kind }) => ({ path, kind }));
}

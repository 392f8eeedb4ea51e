import type { ReviewRequiredError, ConflictReport } from '../conflict/conflict-report.ts';
import { reviewTaskOf } from '../conflict/review-task.ts';
import type { DivergenceChecks } from '../divergence/divergence-checks.ts';
import type { EventPublisher } from '../events/event-publisher.ts';
import type { DrainerPolicy } from '../mirror/drainer.ts';
import type { LeasePolicy } from '../mirror/lease-runner.ts';
import type { EvidenceRecorder } from '../plan/evidence-recorder.ts';
import type { MedplumSide } from '../sides/medplum-side.ts';
import type { WriteTracing } from '../telemetry/write-tracing.ts';

/** Where a writer's mirrors report to. */
export interface MirrorReportParts<L> {
  /** The drainer's policy: attempts, lease and backoff. */
  readonly drainer: DrainerPolicy;
  readonly events: EventPublisher;
  /** Readiness evidence: each applied mirror's lag. */
  readonly evidence: EvidenceRecorder;
  /** Sampled read-backs after applied mirrors. */
  readonly checks: DivergenceChecks<L>;
  /** Where a conflict left to review gets its `Task`. */
  readonly medplum: MedplumSide;
  /** Spans around each mirror; none when `undefined`. */
  readonly tracing: WriteTracing | undefined;
}

/**
 * The lease policy of a writer's mirrors, inline and drained alike: the drainer's attempts,
 * lease and backoff, and how each outcome is reported — conflicts and their resolutions as
 * events (a review `Task` for one left to review), dead letters and settled leases as events,
 * applied mirrors as mirror-lag evidence and read-back samples, each lease in a span.
 *
 * @param parts - The policy and the reports' destinations.
 * @returns The policy for the write path and the drainer.
 */
export function mirrorReportsOf<L>(parts: MirrorReportParts<L>): LeasePolicy {
  const { drainer, events, evidence, checks, medplum, tracing } = parts;
  return {
    maxAttempts: drainer.maxAttempts,
    leaseMs: drainer.leaseMs,
    backoff: drainer.backoff,
    onConflict: (report, review) => recordConflict(events, medplum, report, review),
    onDeadLetter: ({ resourceType, legacyId, unit, target }, error) => {
      // Published without making the mirror wait or fail.
      events
        .publish({
          type: 'dead-letter',
          resourceType,
          legacyId,
          unit,
          target,
          status: error.status,
          error: error.name,
        })
        .catch(() => undefined);
    },
    around: tracing === undefined ? undefined : (entry, run) => tracing.mirror(entry, run),
    onSettled: ({ resourceType, legacyId, unit, target, createdAt }, { status }) => {
      const settled = status === 'applied' || status === 'unchanged';
      events.emit({
        type: 'mirror-settled',
        resourceType,
        legacyId,
        unit,
        target,
        status,
        lagMs: settled ? Math.max(0, Date.now() - Date.parse(createdAt)) : undefined,
      });
    },
    onApplied: (entry, outcome) => {
      evidence.add({
        unit: entry.unit,
        kind: 'mirror-lag',
        value: Math.max(0, Date.now() - Date.parse(entry.createdAt)),
      });
      checks.afterMirror(entry, outcome);
    },
  };
}

/** Records a conflict's events; for one left to review, creates the `Task` it asked for. */
async function recordConflict(
  events: EventPublisher,
  medplum: MedplumSide,
  report: ConflictReport,
  review?: ReviewRequiredError,
): Promise<void> {
  await events.publish({ type: 'conflict', ...report });
  if (review === undefined) {
    const { resourceType, legacyId, medplumId, unit, resolvedBy, resolution } = report;
    if (resolution !== 'manual') {
      await events.publish({
        type: 'resolved',
        resourceType,
        legacyId,
        medplumId,
        unit,
        resolvedBy,
        resolution,
      });
    }
  } else if (review.task) {
    const task = reviewTaskOf(report);
    // Conditional on its identifier: a conflict seen again on the same versions is the same Task.
    await medplum
      .create(task, task.identifier?.[0] as { system: string; value: string }, {
        resourceType: 'Task',
      })
      .catch(() => undefined);
  }
}

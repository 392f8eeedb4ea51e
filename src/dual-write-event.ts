import type { ConflictReport } from './conflict/conflict-report.ts';
import type { ExistenceCheckHalt } from './feeds/existence-check.ts';
import type { RevealedDiffEntry } from './divergence/diff.ts';
import type { Side } from './errors.ts';
import type { LeaseStatus } from './mirror/lease-runner.ts';
import type { Stage } from './plan/stage.ts';

/**
 * A typed event from a `DualWriter`. Events carry resource types, ids, statuses and counts,
 * never field values, so they are safe to log as they are.
 *
 * - `mirrored`: a call completed; `mirror` says whether the other side changed.
 * - `retry`: an attempt failed transiently and will be retried after `delayMs`: within a call, or
 *   in the drainer after the entry's persisted backoff — never sooner than a rate limit's reset
 *   (a 429's `RateLimit` `t`), so a 429 is waited out once.
 * - `mirror-failed`: a call's authority write landed but its inline mirror failed for good
 *   (`error` names the typed error); the entry is dead-lettered.
 * - `drained`: the drainer applied an outbox entry.
 * - `dead-letter`: the drainer moved an entry to the dead-letter queue.
 * - `conflict`: a mirror found its target changed since the last sync (both sides changed the
 *   record): the paths each side changed, and the resolver's decision.
 * - `resolved`: a conflict's resolution was written to both sides (or an operator's, for
 *   `resolveDeadLetter`).
 * - `divergence`: the two copies differ when they should agree (a sampled read-back after a
 *   mirror, or a shadow read).
 * - `mirror-settled`: one attempt at an outbox entry ended, inline or in the drainer: applied,
 *   unchanged, retrying, waiting (for a record it references), dead-letter, requeued (a newer
 *   write came meanwhile) or fenced (its lease was taken over); `lagMs` is how long the record
 *   had been owed when it was applied.
 * - `feed-read`: one change feed (a side and resource type) finished a read: the changes it
 *   saw, how many were echoes of the writer's own mirrors, how many it queued, whether it failed.
 * - `existence-check-halted`: the change feeds' existence check found more of a type's linked
 *   resources missing in Medplum than `existenceCheckMaxMissingShare` allows (a writer pointed at
 *   the wrong Medplum, most likely) and journaled no delete: counts only. Also recorded in the
 *   store's events.
 * - `journal-error`: the background drainer could not reach the store (the journal's
 *   database); it backs off and goes on, and nothing is lost meanwhile.
 *
 * Field values never appear: paths, ids, statuses and value hashes only, unless a sink is
 * created with `revealValues`. `conflict`, `resolved`, `divergence` and `dead-letter` events are
 * also recorded in the store's event table (redacted).
 *
 * @example
 * ```ts
 * const writer = new DualWriter({
 *   ...options,
 *   onEvent: (event) => {
 *     if (event.type === 'retry') logger.warn(event, 'retrying');
 *   },
 * });
 * ```
 */
export type DualWriteEvent =
  | {
      readonly type: 'mirrored';
      readonly resourceType: string;
      readonly legacyId: string;
      readonly medplumId: string | undefined;
      readonly unit: string;
      readonly stage: Stage;
      readonly mirror: 'applied' | 'unchanged' | 'pending' | 'dead-letter' | 'not-required';
    }
  | {
      readonly type: 'retry';
      readonly side: Side;
      readonly resourceType: string | undefined;
      readonly legacyId: string | undefined;
      readonly status: number | undefined;
      readonly attempt: number;
      readonly delayMs: number | undefined;
      readonly error: string;
    }
  | {
      readonly type: 'drained';
      readonly resourceType: string;
      readonly legacyId: string;
      readonly unit: string;
      readonly target: Side;
      readonly outcome: 'applied' | 'unchanged';
    }
  | {
      readonly type: 'dead-letter';
      readonly resourceType: string;
      readonly legacyId: string;
      readonly unit: string;
      readonly target: Side;
      readonly status: number | undefined;
      readonly error: string;
    }
  | {
      readonly type: 'mirror-failed';
      readonly resourceType: string;
      readonly legacyId: string;
      readonly medplumId: string | undefined;
      readonly unit: string;
      readonly stage: Stage;
      readonly side: Side | undefined;
      readonly status: number | undefined;
      readonly attempts: number;
      readonly error: string;
    }
  | {
      readonly type: 'mirror-settled';
      readonly resourceType: string;
      readonly legacyId: string;
      readonly unit: string;
      readonly target: Side;
      readonly status: LeaseStatus;
      /** For `applied` and `unchanged`: milliseconds since the entry was first written. */
      readonly lagMs: number | undefined;
    }
  | {
      readonly type: 'feed-read';
      /** The system the feed reads. */
      readonly side: Side;
      readonly resourceType: string;
      /** Changes read (re-reads of the overlap window included). */
      readonly seen: number;
      /** Of those, the writer's own mirrors (or changes the other side already holds). */
      readonly echoes: number;
      /** Of those, journaled for the drainer to mirror. */
      readonly queued: number;
      /** Whether the read failed (it resumes from its stored cursor next pass). */
      readonly failed: boolean;
    }
  | ({ readonly type: 'existence-check-halted' } & ExistenceCheckHalt)
  | ({ readonly type: 'conflict' } & ConflictReport)
  | {
      readonly type: 'resolved';
      readonly resourceType: string;
      readonly legacyId: string;
      readonly medplumId: string | undefined;
      readonly unit: string;
      /** The resolver's name, or `operator` for `resolveDeadLetter`. */
      readonly resolvedBy: string;
      readonly resolution: Side | 'merged';
    }
  | {
      readonly type: 'divergence';
      readonly resourceType: string;
      readonly legacyId: string;
      readonly medplumId: string | undefined;
      readonly unit: string;
      /** `verify`: a sampled read-back after a mirror; `shadow-read`: a sampled read of the other side. */
      readonly source: 'verify' | 'shadow-read';
      /** The authority's copy compared with the other side's, as JSON paths (values hashed). */
      readonly differences: readonly FieldChange[];
    }
  | {
      readonly type: 'journal-error';
      /** The failure's name and code (`Error (ECONNREFUSED)`, `error (57P01)`); no message. */
      readonly error: string;
      /** How long the background drainer waits before it tries the store again. */
      readonly retryInMs: number;
    }
  | {
      /**
       * The stored cutover plan could not be re-read: this instance routes by the revision it
       * holds, which other instances may have moved past. Readiness says `stale` until a re-read
       * succeeds.
       */
      readonly type: 'plan-stale';
      /** The failure's name and code; no message. */
      readonly error: string;
      /** The stored revision this instance routes by. */
      readonly revision: number | undefined;
    };

/**
 * One field that differs, in an event: its JSON path and kind, and the values as
 * {@link valueHash} fingerprints — the values themselves only for a sink with `revealValues`.
 *
 * @example
 * ```ts
 * const change: FieldChange = { path: 'birthDate', kind: 'changed', before: 'sha256:1f…', after: 'sha256:9c…' };
 * ```
 */
export type FieldChange = RevealedDiffEntry;

import type { Side } from './errors.ts';
import type { Stage } from './plan/stage.ts';

/**
 * A typed event from a `DualWriter`. Events carry resource types, ids, statuses and counts,
 * never field values, so they are safe to log as they are.
 *
 * - `mirrored`: a call completed; `mirror` says whether the other side changed.
 * - `retry`: an attempt failed transiently and will be retried (after `delayMs` within a call;
 *   after the entry's persisted backoff in the drainer, where `delayMs` is undefined).
 * - `mirror-failed`: a call's authority write landed but its inline mirror failed for good
 *   (`error` names the typed error); the entry is dead-lettered.
 * - `drained`: the drainer applied an outbox entry.
 * - `dead-letter`: the drainer moved an entry to the dead-letter queue.
 * - `conflict`: a mirror found its target changed since the last sync; the authority's copy
 *   won (`conflicts: 'authority-wins'`). Also recorded in the store's event table.
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
      readonly type: 'conflict';
      readonly resourceType: string;
      readonly legacyId: string;
      readonly unit: string;
      readonly target: Side;
      readonly expectedVersion: string | undefined;
      readonly actualVersion: string | undefined;
      readonly resolution: 'authority-wins';
    };

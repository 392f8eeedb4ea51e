import type { DualWriter } from '../dual-writer.ts';
import type { SyncStore } from '../journal/sync-store.ts';
import { ProgressDisplay } from './progress-display.ts';
import type { CliTerminal } from './terminal.ts';

/** How long one round of the drain runs before the job's share of the outbox is counted again. */
const ROUND_MS = 2000;

/**
 * What the drain after a job did, as `--json` prints it (`drain` beside `job`).
 *
 * @example
 * ```ts
 * const drained: JobDrain = { applied: 900, retried: 3, deadLettered: 0, remaining: 0, timedOut: false };
 * ```
 */
export interface JobDrain {
  /** Mirrors applied here (any unit's: the drain takes the outbox in order). */
  readonly applied: number;
  /** Attempts that failed transiently and will be retried. */
  readonly retried: number;
  /** Mirrors moved to the dead-letter queue. */
  readonly deadLettered: number;
  /** The job's type and unit's mirrors still owed (pending, backing off or leased) at the end. */
  readonly remaining: number;
  /** Whether the time limit came with mirrors still owed. */
  readonly timedOut: boolean;
}

/** The records a job worked on: its type, and its unit when it had one. */
export interface JobScopeOf {
  readonly resourceType: string;
  readonly unit: string | undefined;
}

/**
 * The mirrors the job's scope still owes in the outbox: pending, backing off (waiting) or
 * leased, of its type and unit. Dead letters are not owed: they wait for an operator.
 *
 * @param store - The journal.
 * @param scope - The job's type and unit.
 * @returns How many.
 * @example
 * ```ts
 * const left = await owedMirrors(store, { resourceType: 'Patient', unit: 'north' });
 * ```
 */
export async function owedMirrors(store: SyncStore, scope: JobScopeOf): Promise<number> {
  const lines = await store.outboxBacklog();
  return lines
    .filter(
      (line) =>
        line.resourceType === scope.resourceType && (scope.unit === undefined || line.unit === scope.unit),
    )
    .reduce((sum, line) => sum + line.pending + line.waiting + line.leased, 0);
}

/**
 * Applies the mirrors a job queued, here, until its type and unit owe none, the time limit
 * passes or `stopped()` says so (Ctrl-C), showing progress on stderr. It drains the outbox in
 * rounds of two seconds and counts the job's share after each, so that live writes of other
 * units never keep it going.
 *
 * @param terminal - Where the progress goes.
 * @param label - What runs, without values (`backfill job 7 drain`).
 * @param writer - A writer built from the configuration, not started.
 * @param store - The journal.
 * @param scope - The job's type and unit.
 * @param timeoutMs - The time limit.
 * @param stopped - Whether to stop now.
 * @returns What was done and what is still owed.
 * @example
 * ```ts
 * const drained = await drainJob(terminal, 'backfill job 7 drain', writer, store, { resourceType: 'Patient', unit: 'north' }, 3_600_000, () => false);
 * ```
 */
export async function drainJob(
  terminal: CliTerminal,
  label: string,
  writer: DualWriter<unknown, unknown>,
  store: SyncStore,
  scope: JobScopeOf,
  timeoutMs: number,
  stopped: () => boolean,
): Promise<JobDrain> {
  const started = Date.now();
  const deadline = started + timeoutMs;
  let left = await owedMirrors(store, scope);
  let total = left;
  let applied = 0;
  let retried = 0;
  let deadLettered = 0;
  const display = new ProgressDisplay(terminal, label);
  const show = (): void => {
    total = Math.max(total, applied + left);
    const perSecond = applied / Math.max((Date.now() - started) / 1000, 0.001);
    display.update({
      done: Math.min(applied, total),
      total,
      perSecond,
      etaMs: perSecond === 0 ? undefined : (left / perSecond) * 1000,
      unit: 'applied',
    });
  };
  try {
    if (left > 0) show();
    while (left > 0 && Date.now() < deadline && !stopped()) {
      const report = await writer.drain({
        timeoutMs: Math.min(ROUND_MS, Math.max(deadline - Date.now(), 1)),
      });
      applied += report.applied;
      retried += report.retried;
      deadLettered += report.deadLettered;
      left = await owedMirrors(store, scope);
      show();
    }
  } finally {
    display.stop();
  }
  return { applied, retried, deadLettered, remaining: left, timedOut: left > 0 && !stopped() };
}

import { DualWriteError } from '../errors.ts';
import type { OutboxCounts } from '../journal/outbox.ts';
import type { SyncStore } from '../journal/sync-store.ts';

/**
 * What {@link drainUnit} found once the unit had nothing pending.
 *
 * @example
 * ```ts
 * const { remaining } = await writer.drainUnit('north', { timeoutMs: 60_000 });
 * if (remaining.dead > 0) console.warn(`${remaining.dead} dead letters to decide first`);
 * ```
 */
export interface UnitDrained {
  /** The unit. */
  readonly unit: string;
  /** Its outbox counts then: nothing pending, waiting or leased; open dead letters as they are. */
  readonly remaining: OutboxCounts;
}

/**
 * A unit still had mirrors owed when {@link drainUnit}'s time limit ran out, or it is paused
 * (a paused unit's mirrors wait for it to resume, so draining it cannot end).
 *
 * @example
 * ```ts
 * try {
 *   await writer.drainUnit('north', { timeoutMs: 30_000 });
 * } catch (err) {
 *   if (err instanceof UnitNotDrainedError) console.error(err.unit, err.remaining, err.paused);
 * }
 * ```
 */
export class UnitNotDrainedError extends DualWriteError {
  override readonly name = 'UnitNotDrainedError' as const;
  readonly retryable = true as const;
  /** The unit. */
  readonly unit: string;
  /** Its outbox counts when the call gave up. */
  readonly remaining: OutboxCounts;
  /** Whether the unit is paused. */
  readonly paused: boolean;
  /**
   * @param unit - The unit.
   * @param remaining - Its outbox counts.
   * @param paused - Whether it is paused.
   */
  constructor(unit: string, remaining: OutboxCounts, paused: boolean) {
    super(
      paused
        ? `unit ${unit} is paused: its ${owed(remaining)} mirrors wait for it to resume`
        : `unit ${unit} still has ${owed(remaining)} mirrors owed`,
    );
    this.unit = unit;
    this.remaining = remaining;
    this.paused = paused;
  }
}

function owed(counts: OutboxCounts): number {
  return counts.pending + counts.leased + (counts.waiting ?? 0) + (counts.paused ?? 0);
}

/**
 * Waits until a unit has no mirror owed in the journal (nothing pending, backing off, held by a
 * write in progress, waiting for a reference, or leased), whoever applies them: the background
 * drainers of any instance, or `work`, called between looks when given (a writer passes one
 * pass of its own drain when its drainer is not running). For use before a stage change.
 *
 * @param store - The journal.
 * @param unit - The unit.
 * @param options - `timeoutMs` (default 60000), `signal`, `pollMs` (default 200), `work`.
 * @returns The unit's counts once drained (open dead letters are not mirrors owed).
 * @throws {@link UnitNotDrainedError} at the time limit, or at once for a paused unit; the
 *   signal's reason when it aborts.
 * @example
 * ```ts
 * await drainUnit(store, 'north', { timeoutMs: 120_000 });
 * await plan.set('north', 'live', { by: 'ops' });
 * ```
 */
export async function drainUnit(
  store: SyncStore,
  unit: string,
  options: {
    readonly timeoutMs?: number | undefined;
    readonly signal?: AbortSignal | undefined;
    readonly pollMs?: number | undefined;
    readonly work?: ((untilMs: number) => Promise<unknown>) | undefined;
  } = {},
): Promise<UnitDrained> {
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  const pollMs = options.pollMs ?? 200;
  for (;;) {
    options.signal?.throwIfAborted();
    const remaining = await store.outboxCounts({ unit });
    if (owed(remaining) === 0) return { unit, remaining };
    if ((await store.unitPauses()).some((pause) => pause.unit === unit))
      throw new UnitNotDrainedError(unit, remaining, true);
    const left = deadline - Date.now();
    if (left <= 0) throw new UnitNotDrainedError(unit, remaining, false);
    if (options.work !== undefined) await options.work(Math.min(left, 1_000));
    else await wait(Math.min(pollMs, left), options.signal);
  }
}

function wait(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      signal?.removeEventListener('abort', aborted);
      resolve();
    }
    function aborted(): void {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    }
    signal?.addEventListener('abort', aborted, { once: true });
  });
}

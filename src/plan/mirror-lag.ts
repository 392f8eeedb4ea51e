/**
 * Mirror lag per unit over a sliding window, in this process: the time from a write's journal
 * entry to its applied mirror. Bounded: the oldest samples go first.
 *
 * @example
 * ```ts
 * const lag = new MirrorLag(3_600_000);
 * lag.record('north', Date.now() - 120);
 * lag.percentiles('north'); // { p50: 120, p95: 120, samples: 1 }
 * ```
 */
export class MirrorLag {
  readonly #windowMs: number;
  readonly #max: number;
  readonly #samples = new Map<string, { at: number; ms: number }[]>();

  /**
   * @param windowMs - How far back samples count.
   * @param max - Samples kept per unit (the oldest are dropped once there are twice as many).
   */
  constructor(windowMs: number, max = 10_000) {
    this.#windowMs = windowMs;
    this.#max = max;
  }

  /**
   * Records one applied mirror.
   *
   * @param unit - The record's unit.
   * @param writtenAt - When the write was journaled (epoch ms).
   * @param now - When the mirror was applied (epoch ms).
   */
  record(unit: string, writtenAt: number, now = Date.now()): void {
    let list = this.#samples.get(unit);
    if (list === undefined) {
      list = [];
      this.#samples.set(unit, list);
    }
    list.push({ at: now, ms: Math.max(0, now - writtenAt) });
    // Trimmed in halves, not one by one: shifting the array on every mirror is O(n) each.
    if (list.length >= this.#max * 2) list.splice(0, list.length - this.#max);
  }

  /**
   * The 50th and 95th percentiles of a unit's lag over the window.
   *
   * @param unit - The unit.
   * @param now - The window's end (epoch ms).
   * @param windowMs - The window, if not the default.
   * @returns The percentiles (undefined without samples) and the sample count.
   */
  percentiles(
    unit: string,
    now = Date.now(),
    windowMs = this.#windowMs,
  ): { p50: number | undefined; p95: number | undefined; samples: number } {
    const since = now - windowMs;
    const values = (this.#samples.get(unit) ?? [])
      .filter((sample) => sample.at >= since)
      .map((sample) => sample.ms)
      .sort((a, b) => a - b);
    const at = (p: number) =>
      values.length === 0
        ? undefined
        : values[Math.min(values.length - 1, Math.ceil((p / 100) * values.length) - 1)];
    return { p50: at(50), p95: at(95), samples: values.length };
  }
}

import type { ReadinessSample } from '../journal/readiness-evidence.ts';
import type { SyncStore } from '../journal/sync-store.ts';

/**
 * Collects readiness samples in this process and stores them in batches: one insert per
 * `batch` samples or per `flushMs`, rather than one per mirror on the write path. `readiness`
 * flushes first, so a process sees its own evidence at once; other instances see it within
 * `flushMs`. Samples a failed flush could not store are kept for the next one, up to `max`
 * (the oldest go first): evidence, unlike a mirror, may be lost.
 *
 * @example
 * ```ts
 * const recorder = new EvidenceRecorder(store);
 * recorder.add({ unit: 'north', kind: 'mirror-lag', value: 120 });
 * await recorder.flush();
 * ```
 */
export class EvidenceRecorder {
  readonly #store: SyncStore;
  readonly #batch: number;
  readonly #flushMs: number;
  readonly #max: number;
  #pending: ReadinessSample[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #flushing: Promise<void> = Promise.resolve();

  /**
   * @param store - Where the samples go.
   * @param options - Batch size, most time a sample waits, most samples kept.
   */
  constructor(
    store: SyncStore,
    options: { readonly batch?: number; readonly flushMs?: number; readonly max?: number } = {},
  ) {
    this.#store = store;
    this.#batch = options.batch ?? 200;
    this.#flushMs = options.flushMs ?? 1000;
    this.#max = options.max ?? 10_000;
  }

  /**
   * Adds a sample; stores the batch when it is full, else within `flushMs`.
   *
   * @param sample - The sample.
   */
  add(sample: ReadinessSample): void {
    this.#pending.push(sample);
    if (this.#pending.length > this.#max) this.#pending.splice(0, this.#pending.length - this.#max);
    if (this.#pending.length >= this.#batch) void this.flush();
    else if (this.#timer === undefined) {
      this.#timer = setTimeout(() => void this.flush(), this.#flushMs);
      this.#timer.unref();
    }
  }

  /**
   * Stores what was added so far (after any flush in progress).
   *
   * @returns When stored, or kept for the next flush when the store failed.
   */
  flush(): Promise<void> {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#flushing = this.#flushing.then(async () => {
      const samples = this.#pending;
      if (samples.length === 0) return;
      this.#pending = [];
      try {
        await this.#store.recordSamples(samples);
      } catch {
        this.#pending = [...samples, ...this.#pending].slice(-this.#max);
      }
    });
    return this.#flushing;
  }
}

import { DualWriteError } from '../errors.ts';
import type { JobPageResult } from '../journal/job.ts';

/** Samples kept per count and page; the job keeps its own `sampleSize` of them. */
const PAGE_SAMPLES = 20;

/**
 * The counts and sample ids of one page of a job. Samples are legacy ids (or Medplum ids of
 * resources without one), never values.
 *
 * @example
 * ```ts
 * const tally = new PageTally();
 * tally.add('scanned', '17');
 * await store.completeJobPage(lease, tally.result());
 * ```
 */
export class PageTally {
  readonly #counts: Record<string, number> = {};
  readonly #samples: Record<string, string[]> = {};

  /**
   * Counts one record under `name`, keeping its id as a sample (except for `scanned`).
   *
   * @param name - The count.
   * @param id - The record's id.
   */
  add(name: string, id: string): void {
    this.#counts[name] = (this.#counts[name] ?? 0) + 1;
    if (name.startsWith('scanned')) return;
    const samples = (this.#samples[name] ??= []);
    if (samples.length < PAGE_SAMPLES) samples.push(id);
  }

  /**
   * Counts a record that could not be handled as `failed`. A permanent error is kept as a
   * count per error name (`failed:MappingError`); a transient one is rethrown, so that the page
   * is taken again rather than counted as done.
   *
   * @param id - The record's id.
   * @param err - What was thrown.
   */
  fail(id: string, err: unknown): void {
    if (err instanceof DualWriteError && err.retryable) throw err;
    this.add('failed', id);
    this.#counts[`failed:${err instanceof Error ? err.name : 'Error'}`] =
      (this.#counts[`failed:${err instanceof Error ? err.name : 'Error'}`] ?? 0) + 1;
  }

  /** @returns The page's result. */
  result(): JobPageResult {
    return { counts: { ...this.#counts }, samples: structuredClone(this.#samples) };
  }
}

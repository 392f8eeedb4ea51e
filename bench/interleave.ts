import { performance } from 'node:perf_hooks';

/** How timed operations are interleaved. */
export interface InterleaveOptions {
  /** Untimed calls of each before timing starts (rounded up to whole batches). */
  readonly warmup: number;
  /** Timed calls of each, in total. */
  readonly samples: number;
  /** Calls of one before switching to the next. */
  readonly batch: number;
}

/**
 * Times several operations one call at a time, in alternating batches whose order reverses
 * every round (A B C, C B A, …), so that machine noise, table growth and caches hit all of
 * them alike. Each call gets a fresh sequence number, so every call writes a new record.
 *
 * @param ops - The operations, by name.
 * @param options - Warm-up, samples and batch size.
 * @returns Latencies in milliseconds by name, in call order.
 * @example
 * ```ts
 * const times = await interleave({ ours: (n) => writer.create(...), baseline: (n) => legacy.create(...) }, { warmup: 100, samples: 1000, batch: 50 });
 * ```
 */
export async function interleave<K extends string>(
  ops: Readonly<Record<K, (n: number) => Promise<unknown>>>,
  options: InterleaveOptions,
): Promise<Record<K, number[]>> {
  const names = Object.keys(ops) as K[];
  let n = 0;
  const run = async (name: K, count: number, into: number[] | undefined): Promise<void> => {
    for (let i = 0; i < count; i++) {
      const started = performance.now();
      await ops[name](++n);
      into?.push(performance.now() - started);
    }
  };
  for (let i = 0; i < options.warmup; i += options.batch) {
    for (const name of names) await run(name, options.batch, undefined);
  }
  const times = Object.fromEntries(names.map((name) => [name, [] as number[]])) as Record<K, number[]>;
  for (let round = 0, done = 0; done < options.samples; round++) {
    const count = Math.min(options.batch, options.samples - done);
    for (const name of round % 2 === 0 ? names : [...names].reverse()) await run(name, count, times[name]);
    done += count;
  }
  return times;
}

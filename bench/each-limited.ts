/**
 * Runs `task` over `items` with at most `limit` in flight, in order of the items.
 *
 * @param items - The work.
 * @param limit - The concurrency.
 * @param task - What to do with one item.
 * @returns When every task has settled; rejects with the first failure.
 * @example
 * ```ts
 * await eachLimited(resources, 8, (resource) => medplum.createResource(resource));
 * ```
 */
export async function eachLimited<T>(
  items: readonly T[],
  limit: number,
  task: (item: T) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await task(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

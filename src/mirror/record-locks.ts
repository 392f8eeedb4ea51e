/**
 * Serialises work per record key within one process, so that the writes of one record run
 * one at a time and in call order (promise 4, order per record). Across processes the journal
 * provides the same guarantee with leases.
 */
export class RecordLocks {
  readonly #tails = new Map<string, Promise<unknown>>();

  /**
   * Runs `fn` after every earlier call for the same key has settled.
   *
   * @param key - The record key.
   * @param fn - The work.
   * @returns What `fn` returns.
   */
  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const result = previous.then(fn, fn);
    const tail = result.catch(() => undefined);
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return result;
  }
}

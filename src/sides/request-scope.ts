import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * What bounds the requests one piece of work makes to either side: a leased mirror sets it for
 * the time it runs, and the sides read it for every request they make on the mirror's behalf,
 * without the mirror code passing it down by hand.
 *
 * @example
 * ```ts
 * await inRequestScope({ signal: keeper.signal, fence: () => keeper.fence() }, () => mirror());
 * ```
 */
export interface RequestScope {
  /**
   * Aborted when the work must stop writing (its lease can no longer be proven): requests in
   * flight are cancelled and no new one starts. Its `reason` is the typed error to throw.
   */
  readonly signal: AbortSignal;
  /**
   * Confirms, just before a write that nothing on the server guards (a plain create), that the
   * work may still write; throws the typed error that says why not.
   */
  readonly fence: () => Promise<void>;
}

const scopes = new AsyncLocalStorage<RequestScope>();

/**
 * Runs `fn` with `scope` bounding every request it makes.
 *
 * @param scope - The scope.
 * @param fn - The work.
 * @returns What `fn` returns.
 * @example
 * ```ts
 * const outcome = await inRequestScope(scope, () => mirrorEntry(ctx, entry));
 * ```
 */
export function inRequestScope<T>(scope: RequestScope, fn: () => Promise<T>): Promise<T> {
  return scopes.run(scope, fn);
}

/**
 * The scope of the work running now, if any.
 *
 * @returns The scope, or `undefined` outside one (a caller's own write, a feed's read).
 * @example
 * ```ts
 * await currentRequestScope()?.fence();
 * ```
 */
export function currentRequestScope(): RequestScope | undefined {
  return scopes.getStore();
}

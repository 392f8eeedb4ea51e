import type { ErrorDetails } from '../errors.ts';
import type { LegacyAdapter } from './legacy-adapter.ts';
import { withWrappedMethods } from './adapter-methods.ts';
import { requestSignal, untilAborted } from './request-deadline.ts';

/** The adapter's methods, whether each writes, and where its signal goes. */
const METHODS = {
  create: { write: true, options: 2 },
  update: { write: true, options: 3 },
  delete: { write: true, options: 2 },
  read: { write: false, options: 2 },
  readMany: { write: false, options: 2 },
  newId: { write: false, options: 1 },
  changesSince: { write: false, options: 3 },
  scan: { write: false, options: 1 },
} as const satisfies Record<string, { readonly write: boolean; readonly options: number }>;

/** The record ids the methods take second, for errors. */
const BY_ID = new Set(['update', 'delete', 'read']);

/**
 * The user's legacy adapter with a time limit on every call: each call gets a `signal` it may
 * honour (merged into its options argument), and the library stops waiting when the signal
 * aborts — after `timeoutMs`, or when the mirror making the call lost its lease — throwing a
 * {@link RequestTimeoutError} (or the lease's error). Everything else passes through untouched,
 * so the adapter is still recognised for what it is (a transactional outbox's shared database).
 *
 * @param adapter - The user's adapter.
 * @param timeoutMs - The time limit of each call.
 * @returns The adapter as the library calls it.
 * @example
 * ```ts
 * const legacy = timedLegacyAdapter(adapter, 10_000);
 * ```
 */
export function timedLegacyAdapter<L>(adapter: LegacyAdapter<L>, timeoutMs: number): LegacyAdapter<L> {
  return withWrappedMethods(adapter, (property, call) => {
    if (!Object.hasOwn(METHODS, property)) return undefined;
    const name = property as keyof typeof METHODS;
    const { write, options } = METHODS[name];
    return (...args: unknown[]): Promise<unknown> => {
      const signal = requestSignal(timeoutMs);
      const details: ErrorDetails = {
        side: 'legacy',
        resourceType: typeof args[0] === 'string' ? args[0] : undefined,
        legacyId: BY_ID.has(name) && typeof args[1] === 'string' ? args[1] : undefined,
      };
      // A mirror whose lease lapsed already must not start a write at all.
      signal.throwIfAborted();
      const given = args[options];
      const called = [...args];
      called[options] = { ...(typeof given === 'object' && given !== null ? given : {}), signal };
      return untilAborted(call(...called) as Promise<unknown>, signal, timeoutMs, write, details);
    };
  });
}

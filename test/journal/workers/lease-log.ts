/**
 * A {@link SyncStore} decorator that reports every lease a worker holds: when it was claimed,
 * when the worker began to finish it, and how it ended. The two-workers test reads these
 * reports from both drain processes to check that no entry was applied twice and that no two
 * workers held one record at the same time.
 */
import type { Lease, LeaseOutcome } from '../../../src/journal/outbox.ts';
import type { SyncStore } from '../../../src/journal/sync-store.ts';

/** How a lease ended, as reported on a drain process's stdout. */
export interface LeaseReport {
  readonly worker: string;
  readonly entryId: string;
  readonly seq: number;
  readonly token: string;
  /** `Patient/<legacy id>`. */
  readonly record: string;
  /** The store call that finished the lease. */
  readonly finish: 'complete' | 'retryLater' | 'deadLetter';
  readonly outcome: LeaseOutcome;
  /** `Date.now()` once the claim returned. */
  readonly claimedAt: number;
  /** `Date.now()` just before the finishing call. */
  readonly finishingAt: number;
}

/**
 * Wraps a store so that each finished lease is reported.
 *
 * @param store - The store the drainer uses.
 * @param worker - The drainer's worker id.
 * @param report - Receives one report per finished lease.
 * @returns The wrapped store.
 */
export function loggingLeases(
  store: SyncStore,
  worker: string,
  report: (lease: LeaseReport) => void,
): SyncStore {
  const claimedAt = new Map<string, number>();
  const finishing =
    (finish: LeaseReport['finish']) =>
    async (lease: Lease, ...rest: unknown[]): Promise<LeaseOutcome> => {
      const finishingAt = Date.now();
      const method = store[finish] as (lease: Lease, ...rest: unknown[]) => Promise<LeaseOutcome>;
      const outcome = await method.call(store, lease, ...rest);
      const { entry, token } = lease;
      report({
        worker,
        entryId: entry.id,
        seq: entry.seq,
        token,
        record: `${entry.resourceType}/${entry.legacyId}`,
        finish,
        outcome,
        claimedAt: claimedAt.get(token) ?? Number.NaN,
        finishingAt,
      });
      claimedAt.delete(token);
      return outcome;
    };
  const overrides: Partial<SyncStore> = {
    claim: async (owner, limit, leaseMs) => {
      const leases = await store.claim(owner, limit, leaseMs);
      const now = Date.now();
      for (const lease of leases) claimedAt.set(lease.token, now);
      return leases;
    },
    complete: finishing('complete'),
    retryLater: finishing('retryLater'),
    deadLetter: finishing('deadLetter'),
  };
  return new Proxy(store, {
    get(target, key) {
      if (typeof key === 'string' && key in overrides) return overrides[key as keyof SyncStore];
      // The target as receiver: its getters and methods read its own #private fields.
      const value: unknown = Reflect.get(target, key);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

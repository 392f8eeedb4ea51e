import { UnavailableError, type ErrorDetails } from '../errors.ts';
import type { Lease } from '../journal/outbox.ts';
import type { SyncStore } from '../journal/sync-store.ts';
import type { RequestScope } from '../sides/request-scope.ts';

/**
 * Keeps a lease while its mirror runs, and stops the mirror as soon as it can no longer prove
 * the lease is its own (fencing: a worker must not write after that, or a second worker that
 * took the entry over could be writing too).
 *
 * A lease is proven until `leaseMs` after the moment the claim or renewal that granted it was
 * sent: the store measures the expiry from when it handled the request, which is later. The
 * keeper renews every sixth of the lease, so two renewals in a row may fail before half of it
 * passes unconfirmed. At half, or as soon as the store answers that another worker holds the
 * lease, {@link LeaseKeeper.signal} aborts: requests in flight are cancelled and none starts.
 * A request's timeout is shorter than half the lease, so a request started while the lease is
 * proven ends (or is abandoned) before the lease can expire.
 *
 * @example
 * ```ts
 * const keeper = new LeaseKeeper(store, lease, 30_000, claimedAt);
 * keeper.start();
 * try {
 *   await inRequestScope(keeper.scope, () => mirrorEntry(ctx, lease.entry));
 * } finally {
 *   keeper.stop();
 * }
 * ```
 */
export class LeaseKeeper {
  readonly #store: SyncStore;
  readonly #lease: Lease;
  readonly #leaseMs: number;
  readonly #controller = new AbortController();
  #confirmedAt: number;
  #heartbeat: NodeJS.Timeout | undefined;
  #deadline: NodeJS.Timeout | undefined;

  /**
   * @param store - The store that granted the lease.
   * @param lease - The lease.
   * @param leaseMs - How long a claim or renewal grants it for.
   * @param confirmedAt - When (`Date.now()`) the claim or renewal that granted it was sent.
   */
  constructor(store: SyncStore, lease: Lease, leaseMs: number, confirmedAt: number) {
    this.#store = store;
    this.#lease = lease;
    this.#leaseMs = leaseMs;
    this.#confirmedAt = confirmedAt;
  }

  /** Aborted, with the typed error as its reason, once the lease can no longer be proven. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** The request scope a mirror under this lease runs in. */
  get scope(): RequestScope {
    return { signal: this.signal, fence: () => this.fence() };
  }

  /** Starts renewing, and the clock that aborts when renewals stay unconfirmed. */
  start(): void {
    this.#heartbeat = setInterval(() => void this.#renew(), this.#leaseMs / 6);
    this.#heartbeat.unref();
    this.#armDeadline();
  }

  /** Stops renewing (the mirror is over); the signal stays as it is. */
  stop(): void {
    clearInterval(this.#heartbeat);
    clearTimeout(this.#deadline);
    this.#heartbeat = undefined;
  }

  /**
   * Throws the typed error when the lease can no longer be proven: aborted already, or half the
   * lease passed since the last confirmation (timers can run late; the clock cannot).
   */
  check(): void {
    this.#lapseIfUnconfirmed();
    this.#controller.signal.throwIfAborted();
  }

  /**
   * Confirms the lease before a write nothing on the server guards (a plain create): a lease
   * confirmed within half its life is proven for the write's whole duration; an older one is
   * renewed first, and a lease the store no longer grants stops the mirror.
   *
   * @throws {@link UnavailableError} (retryable) when the lease is lost, or the store could not
   *   be asked.
   */
  async fence(): Promise<void> {
    this.#controller.signal.throwIfAborted();
    if (Date.now() - this.#confirmedAt < this.#leaseMs / 2) return;
    const sentAt = Date.now();
    let granted: boolean;
    try {
      granted = await this.#store.renew(this.#lease, this.#leaseMs);
    } catch (err) {
      throw new UnavailableError(
        `could not confirm the lease on ${this.#record()} before creating it; not writing`,
        { ...this.#details(), cause: err },
      );
    }
    if (!granted) this.#abort('another worker took it over');
    else this.#confirmed(sentAt);
    this.#controller.signal.throwIfAborted();
  }

  async #renew(): Promise<void> {
    if (this.#controller.signal.aborted) return;
    const sentAt = Date.now();
    let granted: boolean;
    try {
      granted = await this.#store.renew(this.#lease, this.#leaseMs);
    } catch {
      // The journal is away: the deadline aborts the mirror if it stays away too long.
      return;
    }
    if (granted) this.#confirmed(sentAt);
    else this.#abort('another worker took it over');
  }

  #lapseIfUnconfirmed(): void {
    if (this.#controller.signal.aborted) return;
    if (Date.now() - this.#confirmedAt >= this.#leaseMs / 2)
      this.#abort('its renewal was not confirmed within half of it');
    else if (this.#heartbeat !== undefined) this.#armDeadline();
  }

  #confirmed(sentAt: number): void {
    if (sentAt <= this.#confirmedAt) return;
    this.#confirmedAt = sentAt;
    if (this.#heartbeat !== undefined) this.#armDeadline();
  }

  #armDeadline(): void {
    clearTimeout(this.#deadline);
    const remaining = this.#confirmedAt + this.#leaseMs / 2 - Date.now();
    this.#deadline = setTimeout(() => this.#lapseIfUnconfirmed(), Math.max(remaining, 0));
    this.#deadline.unref();
  }

  #abort(why: string): void {
    if (this.#controller.signal.aborted) return;
    this.stop();
    this.#controller.abort(
      new UnavailableError(`the lease on ${this.#record()} can no longer be proven (${why}); not writing`, {
        ...this.#details(),
      }),
    );
  }

  #record(): string {
    return `${this.#lease.entry.resourceType}/${this.#lease.entry.legacyId}`;
  }

  #details(): ErrorDetails {
    const { resourceType, legacyId, target } = this.#lease.entry;
    return { resourceType, legacyId, side: target };
  }
}

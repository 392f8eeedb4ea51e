import { checkOptions, nonNegativeMs, type Rule } from '../option-checks.ts';
import { rateLimitPolicies } from '../sides/rate-limit.ts';

/**
 * Who is spending: `live` for a caller waiting on the answer (a synchronous mirror, a read),
 * `background` for work nobody waits on (the drainer, change feeds, a backfill). Background
 * work leaves part of each window's budget to live calls; live calls may spend all of it.
 *
 * @example
 * ```ts
 * await pacer.acquire({ fhirInteractions: 100, requests: 1 }, 'background');
 * ```
 */
export type PacerLane = 'live' | 'background';

/**
 * What one request costs, per rate-limit policy the server announces (by the policy's name in
 * the `RateLimit` header). Medplum 5 counts `requests` (1 per HTTP request) and
 * `fhirInteractions` (see {@link interactionCost}).
 *
 * @example
 * ```ts
 * const cost: RequestCost = { fhirInteractions: 2000, requests: 1 }; // a batch of 20 creates
 * ```
 */
export type RequestCost = Readonly<Record<string, number>>;

/**
 * Options of a {@link QuotaPacer}.
 *
 * @example
 * ```ts
 * const pacer = new QuotaPacer({ reserve: 0.1 });
 * ```
 */
export interface QuotaPacerOptions {
  /**
   * Share of each window's budget that background work leaves for live calls (0 to 1): with
   * Medplum's default 50,000 points a minute, 0.05 keeps 2,500 points (25 writes) a minute for
   * the writer's own calls while a drain runs.
   * @default 0.05
   */
  readonly reserve?: number | undefined;
  /**
   * Added to the reset time the server announces before spending again: Medplum rounds it to
   * whole seconds.
   * @default 250
   */
  readonly marginMs?: number | undefined;
}

/**
 * What a {@link QuotaPacer} has done, for metrics and tests.
 *
 * @example
 * ```ts
 * const { waits, waitedMs } = pacer.stats();
 * ```
 */
export interface PacerStats {
  /** Times a request waited for budget. */
  readonly waits: number;
  /** Milliseconds spent waiting, summed over requests. */
  readonly waitedMs: number;
  /** Responses that announced a policy exhausted (`r=0`), 429s included. */
  readonly exhausted: number;
}

/** One policy's budget as this process knows it. */
interface Budget {
  /** What the server announced last, less nothing: requests in flight are counted apart. */
  remaining: number;
  /** When the window resets (epoch ms). */
  resetAt: number;
  /** The largest window budget seen: `remaining` + the cost of the request it answered. */
  limit: number;
  /** Cost of the requests sent and not yet answered. */
  inFlight: number;
}

const RESERVE: Rule<number> = {
  test: (value): value is number => typeof value === 'number' && value >= 0 && value <= 1,
  problem: 'must be a number from 0 to 1',
};

/** Every option of {@link QuotaPacerOptions} and its rule; the compiler keeps the two in step. */
const PACER_SHAPE = {
  reserve: RESERVE,
  marginMs: nonNegativeMs,
} satisfies Record<keyof QuotaPacerOptions, Rule>;

/** How often a request that waits for answers in flight (not for a reset) looks again. */
const RECHECK_MS = 50;

/**
 * Keeps a client's requests within the rate limits its server announces, instead of running
 * into them: every response's `RateLimit` header (`"fhirInteractions";r=49900;t=60`) says what
 * is left of each policy's window and when it resets; each request reserves its cost before it
 * is sent and waits for the reset when the rest of the window cannot pay for it. Background
 * work keeps a {@link QuotaPacerOptions.reserve | reserve} for live calls, so a drain at full
 * speed never starves the writer's own writes.
 *
 * Until the first answer the budget is unknown, and one request at a time goes (a probe). A
 * server that announces no limits (no `RateLimit` header) is not paced. One pacer belongs to
 * one user of one server (Medplum's quota is per user): share it between everything that sends
 * with the same client — the writer, its drainer and feeds, a backfill.
 *
 * @example
 * ```ts
 * const pacer = new QuotaPacer();
 * await pacer.acquire({ fhirInteractions: 100, requests: 1 }, 'background');
 * const response = await fetch(url, { method: 'POST', body });
 * pacer.observe(response.headers, { fhirInteractions: 100, requests: 1 });
 * ```
 */
export class QuotaPacer {
  readonly #reserve: number;
  readonly #marginMs: number;
  readonly #budgets = new Map<string, Budget>();
  /** `unknown` until the first answer; `unmetered` while answers carry no `RateLimit`. */
  #state: 'unknown' | 'metered' | 'unmetered' = 'unknown';
  #probing = 0;
  #stats = { waits: 0, waitedMs: 0, exhausted: 0 };

  /**
   * @param options - The reserve for live calls and the reset margin.
   * @throws {@link ConfigurationError} naming the option.
   */
  constructor(options: QuotaPacerOptions = {}) {
    const given = checkOptions(options, 'pacer', 'configuration', PACER_SHAPE, 'pacer.') as QuotaPacerOptions;
    this.#reserve = given.reserve ?? 0.05;
    this.#marginMs = given.marginMs ?? 250;
  }

  /**
   * Waits until the request may be sent, then reserves its cost until {@link QuotaPacer.observe}
   * is told of its answer.
   *
   * @param cost - What the request costs.
   * @param lane - Live or background.
   * @param signal - Stops waiting (rejects with the signal's reason).
   * @example
   * ```ts
   * await pacer.acquire(interactionCost('create'), 'live');
   * ```
   */
  async acquire(cost: RequestCost, lane: PacerLane, signal?: AbortSignal): Promise<void> {
    let waited = false;
    for (;;) {
      signal?.throwIfAborted();
      const now = Date.now();
      const waitMs = this.#waitFor(cost, lane, now);
      if (waitMs === 0) {
        this.#take(cost);
        return;
      }
      if (!waited) this.#stats.waits += 1;
      waited = true;
      await sleep(waitMs, signal);
      this.#stats.waitedMs += Date.now() - now;
    }
  }

  /**
   * For requests sent outside the library on the same Medplum user, whose answers the pacer
   * never sees (a script's own searches on a client of its own; the library's writes, drains and
   * jobs go through {@link QuotaPacer.acquire} and report their answers): waits as a background
   * request would, then counts the points as spent. What is left is learnt again from the next
   * answer the pacer reads.
   *
   * @param points - The request's `fhirInteractions` cost (a search 20, a read 1).
   * @param signal - Stops waiting.
   * @example
   * ```ts
   * await pacer.take(20); // then send the search on your own client
   * ```
   */
  async take(points: number, signal?: AbortSignal): Promise<void> {
    const cost = { fhirInteractions: points, requests: 1 };
    await this.acquire(cost, 'background', signal);
    for (const [name, units] of Object.entries(cost)) {
      const budget = this.#budgets.get(name);
      if (budget === undefined) continue;
      budget.inFlight = Math.max(0, budget.inFlight - units);
      budget.remaining -= units;
    }
    if (this.#state === 'unknown') this.#probing = Math.max(0, this.#probing - 1);
  }

  /**
   * How many requests of this cost the lane could send now without waiting: what a bundle may
   * hold. `Infinity` when the server announces no limit.
   *
   * @param cost - The cost of one request (or one entry of a batch).
   * @param lane - Live or background.
   * @returns A count, 0 when the lane must wait for a reset.
   * @example
   * ```ts
   * const entries = Math.min(20, pacer.affordable(interactionCost('create'), 'background'));
   * ```
   */
  affordable(cost: RequestCost, lane: PacerLane): number {
    if (this.#state !== 'metered') return Number.POSITIVE_INFINITY;
    const now = Date.now();
    let count = Number.POSITIVE_INFINITY;
    for (const [name, units] of Object.entries(cost)) {
      const budget = this.#budgets.get(name);
      if (budget === undefined || units <= 0) continue;
      const spare = this.#available(budget, now) - this.#kept(budget, lane);
      count = Math.min(count, Math.max(0, Math.floor(spare / units)));
    }
    return count;
  }

  /**
   * Records an answer: releases the request's reserved cost and takes the limits its headers
   * announce (a 429's included).
   *
   * @param headers - The response's headers; `undefined` when no answer came.
   * @param cost - What the request was reserved as (as given to {@link QuotaPacer.acquire}).
   * @example
   * ```ts
   * pacer.observe(response.headers, interactionCost('search'));
   * ```
   */
  observe(headers: Headers | undefined, cost: RequestCost): void {
    const now = Date.now();
    if (this.#state !== 'metered') this.#probing = Math.max(0, this.#probing - 1);
    for (const [name, units] of Object.entries(cost)) {
      const budget = this.#budgets.get(name);
      if (budget !== undefined) budget.inFlight = Math.max(0, budget.inFlight - units);
    }
    if (headers === undefined) return; // No answer: nothing learnt.
    const policies = rateLimitPolicies(headers);
    if (policies.length === 0) {
      // A server (or a route) that announces no limit: nothing to pace by.
      this.#state = 'unmetered';
      return;
    }
    this.#state = 'metered';
    for (const { name, remaining, resetMs } of policies) {
      const resetAt = now + resetMs;
      const budget = this.#budgets.get(name);
      const limit = remaining + (cost[name] ?? 0);
      if (remaining <= 0) this.#stats.exhausted += 1;
      if (budget === undefined) {
        this.#budgets.set(name, { remaining, resetAt, limit, inFlight: 0 });
        continue;
      }
      // A later reset is a new window; within one window, answers may arrive out of order, so
      // the smallest remainder is the truest.
      const newWindow = resetAt > budget.resetAt + 1000 || now >= budget.resetAt;
      budget.remaining = newWindow ? remaining : Math.min(budget.remaining, remaining);
      budget.resetAt = resetAt;
      budget.limit = Math.max(budget.limit, limit);
    }
  }

  /**
   * What the pacer has done so far.
   *
   * @returns Waits and exhausted windows seen.
   * @example
   * ```ts
   * console.log(pacer.stats().waitedMs);
   * ```
   */
  stats(): PacerStats {
    return { ...this.#stats };
  }

  /** Milliseconds to wait before a request of this cost may go; 0 when it may go now. */
  #waitFor(cost: RequestCost, lane: PacerLane, now: number): number {
    if (this.#state === 'unmetered') return 0;
    if (this.#state === 'unknown') return this.#probing === 0 ? 0 : RECHECK_MS;
    let waitMs = 0;
    for (const [name, units] of Object.entries(cost)) {
      const budget = this.#budgets.get(name);
      if (budget === undefined || units <= 0) continue;
      const spare = this.#available(budget, now) - this.#kept(budget, lane);
      if (spare >= units) continue;
      if (now >= budget.resetAt + this.#marginMs) {
        // The window has reset and nothing is in flight: what it allows is learnt by asking
        // (a request larger than a whole window's budget goes alone).
        if (budget.inFlight === 0) continue;
        waitMs = Math.max(waitMs, RECHECK_MS);
      } else waitMs = Math.max(waitMs, budget.resetAt + this.#marginMs - now);
    }
    return waitMs;
  }

  /** What is left to spend of a policy now, less what is in flight. */
  #available(budget: Budget, now: number): number {
    const remaining = now >= budget.resetAt + this.#marginMs ? budget.limit : budget.remaining;
    return remaining - budget.inFlight;
  }

  /** What a lane must leave unspent. */
  #kept(budget: Budget, lane: PacerLane): number {
    return lane === 'background' ? Math.ceil(budget.limit * this.#reserve) : 0;
  }

  #take(cost: RequestCost): void {
    if (this.#state === 'unknown') this.#probing += 1;
    for (const [name, units] of Object.entries(cost)) {
      const budget = this.#budgets.get(name);
      if (budget !== undefined) budget.inFlight += units;
    }
  }
}

/**
 * What a Medplum 5 server charges a request against its `fhirInteractions` quota (measured on
 * Medplum 5.0.10: create, update and delete 100 points; search 20; read 1; a batch costs what
 * its entries would alone), and the one request it is against `requests`.
 *
 * @param kind - The interaction.
 * @param entries - For a batch, how many writes it carries.
 * @returns The cost per policy.
 * @example
 * ```ts
 * interactionCost('batch', 20); // { fhirInteractions: 2000, requests: 1 }
 * ```
 */
export function interactionCost(
  kind: 'read' | 'search' | 'create' | 'update' | 'delete' | 'batch',
  entries = 1,
): RequestCost {
  const points = { read: 1, search: 20, create: 100, update: 100, delete: 100, batch: 100 * entries }[kind];
  return { fhirInteractions: points, requests: 1 };
}

/** Waits `ms` (on the global timers, which tests can fake); rejects when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (): void => {
      signal?.removeEventListener('abort', aborted);
      resolve();
    };
    const timer = setTimeout(done, ms);
    const aborted = (): void => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    signal?.addEventListener('abort', aborted, { once: true });
  });
}

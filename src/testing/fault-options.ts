// The vocabulary of fault injection: which requests a fault applies to, its options, and what
// the injector reports. Kept apart from FaultInjector so that class stays about behaviour.
import type { FaultResponse } from './fault-responses.ts';

/**
 * The kinds of fault a `FaultInjector` injects and counts in its {@link FaultStats}.
 * @example
 * ```ts
 * const kind: FaultKind = 'serialization-failure';
 * ```
 */
export type FaultKind = 'status' | 'outage' | 'drop' | 'serialization-failure' | 'html-bad-gateway';

/**
 * The HTTP methods that change data; a handy `methods` filter. A batch is a POST, so it counts.
 * @example
 * ```ts
 * faults.failNext(3, 503, { methods: WRITE_METHODS });
 * ```
 */
export const WRITE_METHODS: readonly string[] = ['POST', 'PUT', 'PATCH', 'DELETE'];

/**
 * Which requests a fault applies to. Both filters must match; an absent filter matches all.
 * @example
 * ```ts
 * const creates: FaultScope = { methods: ['POST'], path: 'Patient' };
 * const reads: FaultScope = { methods: ['GET'], path: /^Patient\/[^/]+$/ };
 * ```
 */
export interface FaultScope {
  /**
   * HTTP methods the fault applies to, e.g. {@link WRITE_METHODS}.
   * @default every method
   */
  readonly methods?: readonly string[];
  /**
   * The request path the fault applies to, relative to the FHIR base for FHIR requests
   * (`Patient/123`) and to the server root otherwise (`oauth2/token`). A string matches that
   * path and everything below it (`'Patient'` matches `Patient` and `Patient/123`, not
   * `PatientX`); a RegExp is tested against the path. The query string is not part of it.
   * @default every path
   */
  readonly path?: string | RegExp;
}

/**
 * Options for faults that answer in place of the server or drop the connection.
 * @example
 * ```ts
 * // The create is stored, but the client never hears back: a retry must not duplicate it.
 * faults.dropNext(1, { methods: ['POST'], afterProcessing: true });
 * ```
 */
export interface ResponseFaultOptions extends FaultScope {
  /**
   * When true the server applies the request first and then sends the fault, so a write
   * happened although the client saw a failure: the case that makes retries create
   * duplicates.
   * @default false
   */
  readonly afterProcessing?: boolean;
}

/**
 * Options of `FaultInjector.failNext` and `FaultInjector.failShare`.
 * @example
 * ```ts
 * faults.failNext(1, 429, { rateLimitResetSeconds: 30 });
 * ```
 */
export interface StatusFaultOptions extends ResponseFaultOptions {
  /**
   * For a 429: seconds until the rate limit resets, sent as `t` in the `RateLimit` header.
   * @default 1
   */
  readonly rateLimitResetSeconds?: number;
}

/**
 * Options of `FaultInjector.outageFor`.
 * @example
 * ```ts
 * faults.outageFor({ startsInMs: 100, durationMs: 500, status: 502, methods: WRITE_METHODS });
 * ```
 */
export interface OutageOptions extends FaultScope {
  /**
   * Milliseconds from now until the outage starts.
   * @default 0
   */
  readonly startsInMs?: number;
  /** How long the outage lasts, in milliseconds. */
  readonly durationMs: number;
  /**
   * The status every request gets during the outage, with a FHIR OperationOutcome.
   * @default 503
   */
  readonly status?: number;
}

/**
 * A latency range; each request waits a uniformly drawn time within it.
 * @example
 * ```ts
 * faults.latency({ minMs: 10, maxMs: 80 });
 * ```
 */
export interface LatencyRange {
  /** Shortest delay in milliseconds. */
  readonly minMs: number;
  /** Longest delay in milliseconds. */
  readonly maxMs: number;
}

/**
 * Options of the `FaultInjector` constructor.
 * @example
 * ```ts
 * let now = 0;
 * const faults = new FaultInjector({ seed: 1, now: () => now });
 * ```
 */
export interface FaultInjectorOptions {
  /**
   * Seed of the pseudo-random generator behind shares and latency ranges; the same seed and
   * the same request sequence give the same faults.
   * @default a random seed
   */
  readonly seed?: number;
  /**
   * The clock used for outage windows, in milliseconds.
   * @default Date.now
   */
  readonly now?: () => number;
}

/**
 * Counters since construction or the last `FaultInjector.resetStats`.
 * @example
 * ```ts
 * const { requests, injected } = faults.stats;
 * console.log(`${injected.drop} of ${requests} requests dropped`);
 * ```
 */
export interface FaultStats {
  /** Requests seen. */
  readonly requests: number;
  /** Requests seen per HTTP method. */
  readonly byMethod: Readonly<Record<string, number>>;
  /** Faults injected per kind. */
  readonly injected: Readonly<Record<FaultKind, number>>;
  /** Requests that were delayed by a latency setting. */
  readonly delayed: number;
}

/**
 * A fault chosen for one request.
 * @example
 * ```ts
 * const drop: InjectedFault = { kind: 'drop', afterProcessing: false };
 * ```
 */
export interface InjectedFault {
  /** What kind of fault it is. */
  readonly kind: FaultKind;
  /** Whether the server processes the request before the fault. */
  readonly afterProcessing: boolean;
  /** The response to send; absent means destroy the connection without answering. */
  readonly response?: FaultResponse;
}

/**
 * What to do with one request, as decided by `FaultInjector.decide`.
 * @example
 * ```ts
 * const { delayMs, fault } = faults.decide('GET', 'Patient/123');
 * ```
 */
export interface FaultDecision {
  /** Milliseconds to wait before anything else. */
  readonly delayMs: number;
  /** The fault to apply, if any. */
  readonly fault?: InjectedFault;
}

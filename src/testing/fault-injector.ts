import { inspect } from 'node:util';
import { deepClone } from '@medplum/core';
import { badGatewayResponse, serializationFailureResponse, statusResponse } from './fault-responses.ts';
import type { FaultResponse } from './fault-responses.ts';
import { WRITE_METHODS } from './fault-options.ts';
import type {
  FaultDecision,
  FaultInjectorOptions,
  FaultKind,
  FaultScope,
  FaultStats,
  InjectedFault,
  LatencyRange,
  OutageOptions,
  ResponseFaultOptions,
  StatusFaultOptions,
} from './fault-options.ts';
import { mulberry32 } from './seeded-random.ts';

export type {
  FaultDecision,
  FaultInjectorOptions,
  FaultKind,
  FaultScope,
  FaultStats,
  InjectedFault,
  LatencyRange,
  OutageOptions,
  ResponseFaultOptions,
  StatusFaultOptions,
} from './fault-options.ts';

interface Rule {
  readonly kind: FaultKind;
  readonly scope: FaultScope;
  readonly afterProcessing: boolean;
  readonly respond: (() => FaultResponse) | undefined;
  remaining: number;
  readonly ratio: number;
}

interface Outage {
  readonly scope: FaultScope;
  readonly startsAt: number;
  readonly endsAt: number;
  readonly status: number;
}

/**
 * Faults for the FHIR test server, configurable while tests run: failing statuses, rate
 * limits, outages, dropped connections, serialisation failures, HTML error pages and latency.
 *
 * Count-based faults (`...Next`) are used up in the order they were added; share-based faults
 * (`...Share`) draw from a seeded generator, so a seed and a request sequence reproduce the
 * same faults.
 *
 * @example
 * ```ts
 * const server = await startFhirTestServer({ seed: 7 });
 * server.faults.failNext(2, 429, { methods: WRITE_METHODS });
 * server.faults.dropShare(0.1);
 * // ... run the code under test ...
 * server.faults.clear();
 * expect(server.faults.stats.injected.status).toBe(2);
 * ```
 */
export class FaultInjector {
  #rules: Rule[] = [];
  #outages: Outage[] = [];
  #latency: { range: LatencyRange; scope: FaultScope } | undefined;
  #random: () => number;
  #now: () => number;
  #stats = emptyStats();

  /**
   * @param options - Seed and clock; see {@link FaultInjectorOptions}.
   */
  constructor(options: FaultInjectorOptions = {}) {
    const seed = options.seed ?? Math.floor(Math.random() * 2 ** 32);
    if (!Number.isInteger(seed)) {
      throw new TypeError(`FaultInjector option seed must be an integer, got ${inspect(options.seed)}`);
    }
    this.#random = mulberry32(seed);
    this.#now = options.now ?? Date.now;
  }

  /**
   * Delays matching requests, before any fault or response.
   * @param delay - Milliseconds, or a range to draw from; 0 removes the delay.
   * @param scope - Which requests to delay.
   * @returns This injector, for chaining.
   * @example
   * ```ts
   * faults.latency({ minMs: 5, maxMs: 50 }, { methods: WRITE_METHODS });
   * ```
   */
  latency(delay: number | LatencyRange, scope: FaultScope = {}): this {
    const range = typeof delay === 'number' ? { minMs: delay, maxMs: delay } : delay;
    checkMilliseconds('latency minMs', range.minMs);
    checkMilliseconds('latency maxMs', range.maxMs);
    if (range.maxMs < range.minMs) {
      throw new TypeError(`latency maxMs must be >= minMs, got ${range.maxMs} < ${range.minMs}`);
    }
    this.#latency = range.maxMs === 0 ? undefined : { range, scope: checkScope(scope) };
    return this;
  }

  /**
   * Answers the next `n` matching requests with `status` and a FHIR OperationOutcome. A 429
   * carries a `RateLimit` header in Medplum's format, `"fhirInteractions";r=0;t=<seconds>`.
   * @param n - How many requests to fail.
   * @param status - An HTTP error status, 400–599.
   * @param options - Scope, `afterProcessing` and the 429 reset time.
   * @returns This injector, for chaining.
   * @example
   * ```ts
   * faults.failNext(1, 429, { rateLimitResetSeconds: 2 });
   * ```
   */
  failNext(n: number, status: number, options: StatusFaultOptions = {}): this {
    checkStatus('status', status);
    return this.#addCount('status', n, options, statusResponder(status, options));
  }

  /**
   * Answers a share of matching requests with `status`, as {@link FaultInjector.failNext} does.
   * @param ratio - Share of requests to fail, 0–1.
   * @param status - An HTTP error status, 400–599.
   * @param options - Scope, `afterProcessing` and the 429 reset time.
   * @returns This injector, for chaining.
   * @example
   * ```ts
   * faults.failShare(0.2, 503, { methods: WRITE_METHODS });
   * ```
   */
  failShare(ratio: number, status: number, options: StatusFaultOptions = {}): this {
    checkStatus('status', status);
    return this.#addShare('status', ratio, options, statusResponder(status, options));
  }

  /**
   * Fails every request for `durationMs` from now, with a 503.
   * @param durationMs - Length of the outage in milliseconds.
   * @returns This injector, for chaining.
   * @example
   * ```ts
   * faults.outage(200);
   * ```
   */
  outage(durationMs: number): this {
    return this.outageFor({ durationMs });
  }

  /**
   * Fails every matching request within a time window.
   * @param options - When it starts, how long it lasts, the status and the scope.
   * @returns This injector, for chaining.
   * @example
   * ```ts
   * faults.outageFor({ startsInMs: 50, durationMs: 200, status: 502 });
   * ```
   */
  outageFor(options: OutageOptions): this {
    const startsInMs = options.startsInMs ?? 0;
    checkMilliseconds('startsInMs', startsInMs);
    checkMilliseconds('durationMs', options.durationMs);
    const status = options.status ?? 503;
    checkStatus('status', status);
    const startsAt = this.#now() + startsInMs;
    this.#outages.push({
      scope: checkScope(options),
      startsAt,
      endsAt: startsAt + options.durationMs,
      status,
    });
    return this;
  }

  /**
   * Destroys the connection of the next `n` matching requests without a response, which the
   * client sees as a network error.
   * @param n - How many requests to drop.
   * @param options - Scope and `afterProcessing`.
   * @returns This injector, for chaining.
   * @example
   * ```ts
   * faults.dropNext(1, { methods: ['POST'], afterProcessing: true }); // created, but unseen
   * ```
   */
  dropNext(n: number, options: ResponseFaultOptions = {}): this {
    return this.#addCount('drop', n, options, undefined);
  }

  /**
   * Drops a share of matching requests, as {@link FaultInjector.dropNext} does.
   * @param ratio - Share of requests to drop, 0–1.
   * @param options - Scope and `afterProcessing`.
   * @returns This injector, for chaining.
   * @example
   * ```ts
   * faults.dropShare(0.05);
   * ```
   */
  dropShare(ratio: number, options: ResponseFaultOptions = {}): this {
    return this.#addShare('drop', ratio, options, undefined);
  }

  /**
   * Answers the next `n` matching writes with the transient 409 a Medplum server returns when
   * concurrent conditional writes collide: an OperationOutcome with `issue[0].code`
   * `conflict` and `issue[0].details.coding[0].code` `40001`. Nothing is written.
   * @param n - How many requests to fail.
   * @param scope - Which requests; by default only {@link WRITE_METHODS}, as reads never fail so.
   * @returns This injector, for chaining.
   * @example
   * ```ts
   * faults.serializationFailureNext(2);
   * ```
   */
  serializationFailureNext(n: number, scope: FaultScope = { methods: WRITE_METHODS }): this {
    return this.#addCount('serialization-failure', n, scope, serializationFailureResponse);
  }

  /**
   * Answers a share of matching writes with the transient 409 of
   * {@link FaultInjector.serializationFailureNext}.
   * @param ratio - Share of requests to fail, 0–1.
   * @param scope - Which requests; by default only {@link WRITE_METHODS}.
   * @returns This injector, for chaining.
   * @example
   * ```ts
   * faults.serializationFailureShare(0.3, { methods: ['POST'], path: 'Patient' });
   * ```
   */
  serializationFailureShare(ratio: number, scope: FaultScope = { methods: WRITE_METHODS }): this {
    return this.#addShare('serialization-failure', ratio, scope, serializationFailureResponse);
  }

  /**
   * Answers the next `n` matching requests with a 502 and an HTML page, as a proxy in front of
   * the server would.
   * @param n - How many requests to fail.
   * @param options - Scope and `afterProcessing`.
   * @returns This injector, for chaining.
   * @example
   * ```ts
   * faults.htmlBadGatewayNext(1);
   * ```
   */
  htmlBadGatewayNext(n: number, options: ResponseFaultOptions = {}): this {
    return this.#addCount('html-bad-gateway', n, options, badGatewayResponse);
  }

  /**
   * Removes every fault, outage and latency; the counters are kept.
   * @returns This injector, for chaining.
   * @example
   * ```ts
   * faults.clear();
   * ```
   */
  clear(): this {
    this.#rules = [];
    this.#outages = [];
    this.#latency = undefined;
    return this;
  }

  /**
   * Sets every counter back to zero.
   * @returns This injector, for chaining.
   * @example
   * ```ts
   * faults.resetStats();
   * ```
   */
  resetStats(): this {
    this.#stats = emptyStats();
    return this;
  }

  /**
   * A snapshot of the counters.
   * @returns Requests seen, per method, faults injected per kind and delayed requests.
   * @example
   * ```ts
   * expect(faults.stats.injected.drop).toBe(1);
   * ```
   */
  get stats(): FaultStats {
    return deepClone(this.#stats);
  }

  /**
   * Counts one request and decides what happens to it. Called by the server once per request;
   * count-based faults are used up here.
   * @param method - The HTTP method.
   * @param path - The path as {@link FaultScope.path} describes it.
   * @returns The delay and the fault to apply, if any.
   * @example
   * ```ts
   * const { delayMs, fault } = faults.decide('POST', 'Patient');
   * ```
   */
  decide(method: string, path: string): FaultDecision {
    const stats = this.#stats;
    stats.requests++;
    stats.byMethod[method] = (stats.byMethod[method] ?? 0) + 1;
    const delayMs = this.#delayFor(method, path);
    if (delayMs > 0) {
      stats.delayed++;
    }
    const fault = this.#outageFault(method, path) ?? this.#ruleFault(method, path);
    if (fault) {
      stats.injected[fault.kind]++;
      return { delayMs, fault };
    }
    return { delayMs };
  }

  /**
   * Decides the fault of one entry of a batch, as though it were a request of its own
   * (`PUT Patient/1` in a batch is in a `{ methods: ['PUT'] }` scope). Only faults a server can
   * answer within a batch apply: statuses, outages and serialisation failures (a connection
   * dropped or an HTML gateway page is the whole request's). Entries are not counted as
   * requests; their faults are counted in `injected`.
   * @param method - The entry's `request.method`.
   * @param path - The entry's `request.url`, without its query.
   * @returns The fault to answer the entry with, if any.
   * @example
   * ```ts
   * const fault = faults.decideEntry('PUT', 'Patient/1');
   * ```
   */
  decideEntry(method: string, path: string): InjectedFault | undefined {
    const fault =
      this.#outageFault(method, path) ??
      this.#ruleFault(
        method,
        path,
        (rule) => rule.kind === 'status' || rule.kind === 'serialization-failure',
      );
    if (fault) this.#stats.injected[fault.kind]++;
    return fault;
  }

  #delayFor(method: string, path: string): number {
    if (!this.#latency || !inScope(this.#latency.scope, method, path)) {
      return 0;
    }
    const { minMs, maxMs } = this.#latency.range;
    return minMs + Math.round(this.#random() * (maxMs - minMs));
  }

  #outageFault(method: string, path: string): InjectedFault | undefined {
    const now = this.#now();
    this.#outages = this.#outages.filter((outage) => outage.endsAt > now);
    const outage = this.#outages.find((o) => o.startsAt <= now && inScope(o.scope, method, path));
    if (!outage) {
      return undefined;
    }
    return { kind: 'outage', afterProcessing: false, response: statusResponse(outage.status, 1) };
  }

  #ruleFault(
    method: string,
    path: string,
    applies: (rule: Rule) => boolean = () => true,
  ): InjectedFault | undefined {
    const counted = this.#rules.find((r) => r.remaining > 0 && applies(r) && inScope(r.scope, method, path));
    if (counted) {
      counted.remaining--;
      this.#rules = this.#rules.filter((r) => r.ratio > 0 || r.remaining > 0);
      return toFault(counted);
    }
    for (const rule of this.#rules) {
      // Draw only for matching rules so a seed's sequence depends on matching traffic alone.
      if (
        rule.ratio > 0 &&
        applies(rule) &&
        inScope(rule.scope, method, path) &&
        this.#random() < rule.ratio
      ) {
        return toFault(rule);
      }
    }
    return undefined;
  }

  #addCount(kind: FaultKind, n: number, options: ResponseFaultOptions, respond: Rule['respond']): this {
    if (!Number.isInteger(n) || n < 0) {
      throw new TypeError(`n must be a non-negative integer, got ${inspect(n)}`);
    }
    if (n > 0) {
      this.#rules.push({ ...ruleBase(kind, options, respond), remaining: n, ratio: 0 });
    }
    return this;
  }

  #addShare(kind: FaultKind, ratio: number, options: ResponseFaultOptions, respond: Rule['respond']): this {
    if (!(typeof ratio === 'number' && ratio >= 0 && ratio <= 1)) {
      throw new TypeError(`ratio must be a number from 0 to 1, got ${inspect(ratio)}`);
    }
    if (ratio > 0) {
      this.#rules.push({ ...ruleBase(kind, options, respond), remaining: 0, ratio });
    }
    return this;
  }
}

function ruleBase(
  kind: FaultKind,
  options: ResponseFaultOptions,
  respond: Rule['respond'],
): Pick<Rule, 'kind' | 'scope' | 'afterProcessing' | 'respond'> {
  return { kind, scope: checkScope(options), afterProcessing: options.afterProcessing ?? false, respond };
}

function toFault(rule: Rule): InjectedFault {
  const { kind, afterProcessing } = rule;
  return rule.respond ? { kind, afterProcessing, response: rule.respond() } : { kind, afterProcessing };
}

function inScope(scope: FaultScope, method: string, path: string): boolean {
  if (scope.methods && !scope.methods.some((m) => m.toUpperCase() === method.toUpperCase())) {
    return false;
  }
  const filter = scope.path;
  if (filter === undefined) {
    return true;
  }
  if (typeof filter === 'string') {
    return path === filter || path.startsWith(filter.endsWith('/') ? filter : `${filter}/`);
  }
  // A global or sticky RegExp remembers where it last matched; start afresh for every request.
  filter.lastIndex = 0;
  return filter.test(path);
}

function statusResponder(status: number, options: StatusFaultOptions): () => FaultResponse {
  const resetSeconds = options.rateLimitResetSeconds ?? 1;
  if (!Number.isInteger(resetSeconds) || resetSeconds < 0) {
    throw new TypeError(`rateLimitResetSeconds must be a non-negative integer, got ${inspect(resetSeconds)}`);
  }
  return () => statusResponse(status, resetSeconds);
}

function checkStatus(name: string, status: number): void {
  if (!Number.isInteger(status) || status < 400 || status > 599) {
    throw new TypeError(`${name} must be an HTTP error status from 400 to 599, got ${inspect(status)}`);
  }
}

function checkMilliseconds(name: string, ms: number): void {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
    throw new TypeError(`${name} must be a non-negative number of milliseconds, got ${inspect(ms)}`);
  }
}

function checkScope<T extends FaultScope>(scope: T): T {
  if (scope.methods !== undefined && !Array.isArray(scope.methods)) {
    throw new TypeError(`methods must be an array of HTTP methods, got ${inspect(scope.methods)}`);
  }
  const path: unknown = scope.path;
  if (path !== undefined && typeof path !== 'string' && !(path instanceof RegExp)) {
    throw new TypeError(`path must be a string or a RegExp, got ${inspect(path)}`);
  }
  return scope;
}

interface MutableStats {
  requests: number;
  byMethod: Record<string, number>;
  injected: Record<FaultKind, number>;
  delayed: number;
}

function emptyStats(): MutableStats {
  return {
    requests: 0,
    byMethod: {},
    injected: { status: 0, outage: 0, drop: 0, 'serialization-failure': 0, 'html-bad-gateway': 0 },
    delayed: 0,
  };
}

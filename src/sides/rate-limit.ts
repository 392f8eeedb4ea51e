/**
 * Reads how long a rate-limited client must wait. Medplum reports limits in an IETF-draft
 * `RateLimit` header — `"requests";r=59999;t=60, "fhirInteractions";r=0;t=12` (units remaining,
 * seconds until reset) — not in `Retry-After`; both are honoured, as is the older
 * `RateLimit-Reset` form.
 *
 * @param headers - Response headers, when any.
 * @returns Milliseconds to wait before the next request, or `undefined` when the headers say
 *   nothing usable.
 * @example
 * ```ts
 * rateLimitDelayMs(new Headers({ RateLimit: '"fhirInteractions";r=0;t=12' })); // 12000
 * ```
 */
export function rateLimitDelayMs(headers: Headers | undefined): number | undefined {
  if (headers === undefined) return undefined;
  let waitSeconds: number | undefined;
  const combined = headers.get('ratelimit');
  if (combined !== null) {
    for (const policy of combined.split(',')) {
      const remaining = parameter(policy, 'r') ?? parameter(policy, 'remaining');
      const reset = parameter(policy, 't') ?? parameter(policy, 'reset');
      if (remaining !== undefined && remaining <= 0 && reset !== undefined) {
        waitSeconds = Math.max(waitSeconds ?? 0, reset);
      }
    }
  }
  const legacyReset = Number(headers.get('ratelimit-reset') ?? Number.NaN);
  if (waitSeconds === undefined && Number.isFinite(legacyReset) && legacyReset >= 0)
    waitSeconds = legacyReset;
  const retryAfter = headers.get('retry-after');
  if (waitSeconds === undefined && retryAfter !== null) {
    const seconds = Number(retryAfter);
    if (Number.isFinite(seconds)) waitSeconds = Math.max(0, seconds);
    else {
      const at = Date.parse(retryAfter);
      if (Number.isFinite(at)) waitSeconds = Math.max(0, (at - Date.now()) / 1000);
    }
  }
  return waitSeconds === undefined ? undefined : Math.ceil(waitSeconds * 1000);
}

function parameter(policy: string, name: string): number | undefined {
  const match = new RegExp(`(?:^|[;\\s])${name}=(\\d+(?:\\.\\d+)?)`).exec(policy);
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

/**
 * One policy of a `RateLimit` header: what is left of it and when it resets.
 *
 * @example
 * ```ts
 * const policy: RateLimitPolicy = { name: 'fhirInteractions', remaining: 49_900, resetMs: 60_000 };
 * ```
 */
export interface RateLimitPolicy {
  /** The policy's name, unquoted: Medplum sends `requests` and `fhirInteractions`. */
  readonly name: string;
  /** Units left in the current window. */
  readonly remaining: number;
  /** Milliseconds until the window resets. */
  readonly resetMs: number;
}

/**
 * Reads every policy of a `RateLimit` header (`"requests";r=59996;t=43,
 * "fhirInteractions";r=49900;t=60`); policies without both `r` and `t` are left out.
 *
 * @param headers - Response headers, when any.
 * @returns The policies, in the header's order.
 * @example
 * ```ts
 * rateLimitPolicies(new Headers({ RateLimit: '"fhirInteractions";r=0;t=12' }));
 * // [{ name: 'fhirInteractions', remaining: 0, resetMs: 12000 }]
 * ```
 */
export function rateLimitPolicies(headers: Headers | undefined): RateLimitPolicy[] {
  const combined = headers?.get('ratelimit');
  if (combined === null || combined === undefined) return [];
  const policies: RateLimitPolicy[] = [];
  for (const policy of combined.split(',')) {
    const name = /^\s*"?([^";=\s]+)"?/.exec(policy)?.[1];
    const remaining = parameter(policy, 'r') ?? parameter(policy, 'remaining');
    const reset = parameter(policy, 't') ?? parameter(policy, 'reset');
    if (name !== undefined && remaining !== undefined && reset !== undefined)
      policies.push({ name, remaining, resetMs: Math.ceil(reset * 1000) });
  }
  return policies;
}

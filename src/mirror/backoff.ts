import { ConfigurationError } from '../errors.ts';
import { checkOptions, nonNegativeMs, nonNegativeNumber, type Rule } from '../option-checks.ts';

/**
 * How long the drainer waits before it tries a failed entry again, persisted with the entry so
 * a restart does not reset it.
 *
 * @example
 * ```ts
 * const backoff: BackoffOptions = { minMs: 1000, maxMs: 600_000 };
 * ```
 */
export interface BackoffOptions {
  /**
   * Delay after the first failure.
   * @default 500
   */
  readonly minMs?: number | undefined;
  /**
   * Longest delay between two attempts.
   * @default 300000 (5 minutes)
   */
  readonly maxMs?: number | undefined;
  /**
   * Growth factor per failed attempt.
   * @default 2
   */
  readonly factor?: number | undefined;
}

/** Backoff with defaults applied. */
export type Backoff = { readonly [K in keyof BackoffOptions]-?: number };

/**
 * Validates backoff options and applies defaults.
 *
 * @param options - The user's options.
 * @param field - The option path for messages.
 * @returns The backoff.
 * @throws {@link ConfigurationError} naming the field: not an object, an unknown key, or a value out of range.
 */
export function backoffOf(options: BackoffOptions = {}, field = 'drainer.backoff'): Backoff {
  const given = checkOptions(options, field, 'configuration', BACKOFF_SHAPE, `${field}.`) as BackoffOptions;
  const backoff = {
    minMs: given.minMs ?? 500,
    maxMs: given.maxMs ?? 300_000,
    factor: given.factor ?? 2,
  };
  if (backoff.factor < 1) throw new ConfigurationError(`${field}.factor`, backoff.factor, 'must be >= 1');
  if (backoff.maxMs < backoff.minMs)
    throw new ConfigurationError(`${field}.maxMs`, backoff.maxMs, `must be >= minMs (${backoff.minMs})`);
  return backoff;
}

/** Every option of {@link BackoffOptions} and its rule; the compiler keeps the two in step. */
const BACKOFF_SHAPE = {
  minMs: nonNegativeMs,
  maxMs: nonNegativeMs,
  factor: nonNegativeNumber,
} satisfies Record<keyof BackoffOptions, Rule>;

/**
 * The delay before attempt `attempts + 1`: exponential with full jitter over the upper half, so
 * workers that failed together do not retry together; never shorter than a rate limit's reset.
 *
 * @param backoff - The backoff.
 * @param attempts - Failed attempts so far (at least 1).
 * @param retryAfterMs - A wait the side asked for, if any.
 * @returns Milliseconds.
 */
export function delayFor(backoff: Backoff, attempts: number, retryAfterMs?: number): number {
  const ceiling = Math.min(backoff.maxMs, backoff.minMs * backoff.factor ** Math.max(0, attempts - 1));
  const jittered = ceiling / 2 + Math.random() * (ceiling / 2);
  return Math.round(Math.max(jittered, retryAfterMs ?? 0));
}

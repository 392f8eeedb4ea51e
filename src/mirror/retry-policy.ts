import pRetry, { AbortError } from 'p-retry';
import { ConfigurationError, DualWriteError, UnavailableError } from '../errors.ts';
import { checkOptions, nonNegativeMs, nonNegativeNumber, type Rule } from '../option-checks.ts';
import { currentRequestScope } from '../sides/request-scope.ts';

/**
 * How the library retries transient failures (network errors, 408, 429, 5xx, Medplum's
 * transient 409): exponential backoff with jitter, honouring a rate limit's reset time.
 *
 * @example
 * ```ts
 * const retry: RetryOptions = { retries: 8, minTimeoutMs: 200, maxTimeoutMs: 10_000 };
 * ```
 */
export interface RetryOptions {
  /**
   * Retries after the first attempt.
   * @default 5
   */
  readonly retries?: number | undefined;
  /**
   * Delay before the first retry, in milliseconds.
   * @default 100
   */
  readonly minTimeoutMs?: number | undefined;
  /**
   * Upper bound of one backoff delay, in milliseconds.
   * @default 5000
   */
  readonly maxTimeoutMs?: number | undefined;
  /**
   * Growth factor of the delay between attempts.
   * @default 2
   */
  readonly factor?: number | undefined;
  /**
   * Longest wait the library accepts when a 429 names its reset time; a longer reset fails the
   * attempt instead of blocking the caller.
   * @default 60000
   */
  readonly maxRateLimitWaitMs?: number | undefined;
}

/** {@link RetryOptions} with defaults applied. */
export type RetryPolicy = { readonly [K in keyof RetryOptions]-?: number };

/**
 * Validates retry options and applies defaults.
 *
 * @param options - The user's options.
 * @param field - The option path for error messages.
 * @returns The policy.
 * @throws {@link ConfigurationError} naming the field: not an object, an unknown key, or a value out of range.
 */
export function retryPolicyOf(options: RetryOptions = {}, field = 'retry'): RetryPolicy {
  const given = checkOptions(options, field, 'configuration', RETRY_SHAPE, `${field}.`) as RetryOptions;
  const policy: RetryPolicy = {
    retries: given.retries ?? 5,
    minTimeoutMs: given.minTimeoutMs ?? 100,
    maxTimeoutMs: given.maxTimeoutMs ?? 5000,
    factor: given.factor ?? 2,
    maxRateLimitWaitMs: given.maxRateLimitWaitMs ?? 60_000,
  };
  if (policy.factor < 1) throw new ConfigurationError(`${field}.factor`, policy.factor, 'must be >= 1');
  if (policy.maxTimeoutMs < policy.minTimeoutMs) {
    throw new ConfigurationError(
      `${field}.maxTimeoutMs`,
      policy.maxTimeoutMs,
      `must be >= minTimeoutMs (${policy.minTimeoutMs})`,
    );
  }
  return policy;
}

/** Every option of {@link RetryOptions} and its rule; the compiler keeps the two in step. */
const RETRY_SHAPE = {
  retries: {
    test: (value): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0,
    problem: 'must be an integer >= 0',
  },
  minTimeoutMs: nonNegativeMs,
  maxTimeoutMs: nonNegativeMs,
  factor: nonNegativeNumber,
  maxRateLimitWaitMs: nonNegativeMs,
} satisfies Record<keyof RetryOptions, Rule>;

/**
 * Runs `fn` until it succeeds, throws a non-retryable error, or the retries run out. Only
 * {@link DualWriteError}s with `retryable: true` are retried; the final error carries the
 * number of attempts made.
 *
 * @param fn - One attempt; receives the attempt number (1-based).
 * @param policy - The retry policy.
 * @param onRetry - Called before each retry with the error and the delay.
 * @returns What `fn` returned, and the attempts it took.
 */
export async function withRetries<T>(
  fn: (attempt: number) => Promise<T>,
  policy: RetryPolicy,
  onRetry?: (error: DualWriteError, attempt: number, delayMs: number) => void,
): Promise<{ value: T; attempts: number }> {
  let attempts = 0;
  try {
    const value = await pRetry(
      async (attempt) => {
        attempts = attempt;
        try {
          return await fn(attempt);
        } catch (err) {
          if (err instanceof DualWriteError && err.retryable) throw err;
          throw new AbortError(err instanceof Error ? err : new Error(String(err)));
        }
      },
      {
        retries: policy.retries,
        minTimeout: policy.minTimeoutMs,
        maxTimeout: policy.maxTimeoutMs,
        factor: policy.factor,
        randomize: true,
        // A mirror whose lease can no longer be proven stops at once: another attempt would
        // only run into the same fence.
        signal: currentRequestScope()?.signal,
        onFailedAttempt: async ({ error, attemptNumber, retriesLeft, retryDelay }) => {
          if (retriesLeft === 0 || !(error instanceof DualWriteError)) return;
          // A rate limit names its reset: wait for it on top of the backoff, within the cap.
          const extra =
            error instanceof UnavailableError && error.retryAfterMs !== undefined
              ? Math.max(0, Math.min(error.retryAfterMs, policy.maxRateLimitWaitMs) - retryDelay)
              : 0;
          onRetry?.(error, attemptNumber, retryDelay + extra);
          if (extra > 0) await new Promise((resolve) => setTimeout(resolve, extra));
        },
      },
    );
    return { value, attempts };
  } catch (err) {
    if (err instanceof UnavailableError && attempts > 1) {
      throw new UnavailableError(
        `${err.message} (gave up after ${attempts} attempts)`,
        {
          side: err.side,
          resourceType: err.resourceType,
          legacyId: err.legacyId,
          medplumId: err.medplumId,
          status: err.status,
          code: err.code,
          cause: err.cause,
          attempts,
        },
        err.retryAfterMs,
      );
    }
    throw err;
  }
}

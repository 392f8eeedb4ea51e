import { describe, expect, it } from 'vitest';
import { ConfigurationError, RejectedError, UnavailableError } from '../../src/index.ts';
import { retryPolicyOf, withRetries } from '../../src/mirror/retry-policy.ts';

const fast = retryPolicyOf({ retries: 3, minTimeoutMs: 1, maxTimeoutMs: 2 });

describe('retry policy', () => {
  it('retries a retryable error until it succeeds and counts the attempts', async () => {
    let calls = 0;
    const { value, attempts } = await withRetries(() => {
      calls += 1;
      return calls < 3 ? Promise.reject(new UnavailableError('down')) : Promise.resolve('ok');
    }, fast);
    expect(value).toBe('ok');
    expect(attempts).toBe(3);
  });

  it('does not retry a permanent error', async () => {
    let calls = 0;
    await expect(
      withRetries(() => {
        calls += 1;
        return Promise.reject(new RejectedError('bad', ['Patient.birthDate'], { status: 400 }));
      }, fast),
    ).rejects.toBeInstanceOf(RejectedError);
    expect(calls).toBe(1);
  });

  it('gives up after the retries with the attempt count on the error', async () => {
    const error = await withRetries(
      () => Promise.reject(new UnavailableError('down', { status: 503 })),
      fast,
    ).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(UnavailableError);
    expect(error).toMatchObject({ attempts: 4, status: 503 });
  });

  it('waits for a rate limit reset on top of the backoff', async () => {
    let calls = 0;
    const delays: number[] = [];
    await withRetries(
      () => {
        calls += 1;
        return calls === 1
          ? Promise.reject(new UnavailableError('429', { status: 429 }, 50))
          : Promise.resolve(1);
      },
      fast,
      (_error, _attempt, delayMs) => delays.push(delayMs),
    );
    expect(delays[0]).toBeGreaterThanOrEqual(50);
  });

  it('rejects invalid options, naming the field', () => {
    expect(() => retryPolicyOf({ retries: -1 })).toThrow(ConfigurationError);
    expect(() => retryPolicyOf({ retries: 1.5 })).toThrow(/retry\.retries/);
    expect(() => retryPolicyOf({ minTimeoutMs: 10, maxTimeoutMs: 5 })).toThrow(/retry\.maxTimeoutMs/);
  });
});

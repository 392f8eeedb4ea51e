import { describe, expect, it } from 'vitest';
import { rateLimitDelayMs } from '../../src/sides/rate-limit.ts';

describe('rateLimitDelayMs', () => {
  it("reads Medplum's RateLimit header: the reset of the exhausted policy", () => {
    const headers = new Headers({ RateLimit: '"requests";r=59999;t=60, "fhirInteractions";r=0;t=12' });
    expect(rateLimitDelayMs(headers)).toBe(12_000);
  });

  it('ignores policies that still have units left', () => {
    expect(rateLimitDelayMs(new Headers({ RateLimit: '"requests";r=5;t=60' }))).toBeUndefined();
  });

  it('falls back to Retry-After in seconds', () => {
    expect(rateLimitDelayMs(new Headers({ 'Retry-After': '3' }))).toBe(3000);
  });

  it('says nothing without headers', () => {
    expect(rateLimitDelayMs(undefined)).toBeUndefined();
    expect(rateLimitDelayMs(new Headers())).toBeUndefined();
  });
});

import { describe, expect, it } from 'vitest';
import { FaultInjector } from '../../src/testing/fault-injector.ts';
import { WRITE_METHODS } from '../../src/testing/fault-options.ts';

function statusOf(faults: FaultInjector, method: string, path: string): number | 'drop' | undefined {
  const { fault } = faults.decide(method, path);
  if (!fault) {
    return undefined;
  }
  return fault.response?.status ?? 'drop';
}

describe('FaultInjector', () => {
  it('rejects a ratio outside 0..1 with a TypeError naming the ratio and the value', () => {
    const faults = new FaultInjector();
    expect(() => faults.failShare(1.5, 503)).toThrow(
      new TypeError('ratio must be a number from 0 to 1, got 1.5'),
    );
    expect(() => faults.dropShare(Number.NaN)).toThrow(TypeError);
  });

  it('rejects a status that is not an HTTP error', () => {
    const faults = new FaultInjector();
    expect(() => faults.failNext(1, 200)).toThrow(
      /^status must be an HTTP error status from 400 to 599, got 200$/,
    );
  });

  it('rejects a count that is not a non-negative integer', () => {
    const faults = new FaultInjector();
    expect(() => faults.dropNext(-1)).toThrow(new TypeError('n must be a non-negative integer, got -1'));
    expect(() => faults.htmlBadGatewayNext(0.5)).toThrow(TypeError);
  });

  it('rejects a latency range whose maximum is below its minimum', () => {
    const faults = new FaultInjector();
    expect(() => faults.latency({ minMs: 50, maxMs: 10 })).toThrow(/latency maxMs must be >= minMs/);
  });

  it('rejects an outage without a valid duration', () => {
    const faults = new FaultInjector();
    expect(() => faults.outageFor({ durationMs: -5 })).toThrow(/durationMs .* got -5/);
  });

  it('rejects a seed that is not an integer', () => {
    expect(() => new FaultInjector({ seed: 0.5 })).toThrow(/seed must be an integer, got 0.5/);
  });

  it('uses up count faults in the order they were added', () => {
    const faults = new FaultInjector();
    faults.failNext(1, 500).dropNext(1).failNext(1, 429);
    const seen = [1, 2, 3, 4].map(() => statusOf(faults, 'GET', 'Patient'));
    expect(seen).toEqual([500, 'drop', 429, undefined]);
  });

  it('skips requests outside a fault scope without using the fault up', () => {
    const faults = new FaultInjector();
    faults.failNext(1, 503, { methods: WRITE_METHODS, path: 'Observation' });
    expect(statusOf(faults, 'POST', 'ObservationDefinition')).toBeUndefined();
    expect(statusOf(faults, 'GET', 'Observation')).toBeUndefined();
    expect(statusOf(faults, 'POST', 'Observation/123')).toBe(503);
  });

  it('matches a RegExp path the same way on every request', () => {
    const faults = new FaultInjector();
    faults.failShare(1, 500, { path: /^Patient\//g });
    expect(statusOf(faults, 'GET', 'Patient/1')).toBe(500);
    expect(statusOf(faults, 'GET', 'Patient/2')).toBe(500);
  });

  it('makes the same share decisions for the same seed', () => {
    const decisions = (seed: number): (number | 'drop' | undefined)[] => {
      const faults = new FaultInjector({ seed }).failShare(0.3, 503).dropShare(0.3);
      return Array.from({ length: 50 }, () => statusOf(faults, 'GET', 'Patient'));
    };
    const first = decisions(11);
    expect(decisions(11)).toEqual(first);
    expect(new Set(first)).toEqual(new Set([503, 'drop', undefined]));
  });

  it('starts and ends an outage on the injected clock', () => {
    let now = 1_000;
    const faults = new FaultInjector({ now: () => now }).outageFor({ startsInMs: 10, durationMs: 20 });
    const at = (time: number): number | 'drop' | undefined => {
      now = time;
      return statusOf(faults, 'GET', 'Patient');
    };
    expect([at(1_005), at(1_010), at(1_029), at(1_030)]).toEqual([undefined, 503, 503, undefined]);
  });

  it('draws latency within the configured range', () => {
    const faults = new FaultInjector({ seed: 3 }).latency({ minMs: 10, maxMs: 20 });
    const delays = Array.from({ length: 20 }, () => faults.decide('GET', 'Patient').delayMs);
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(10);
    expect(Math.max(...delays)).toBeLessThanOrEqual(20);
  });

  it('keeps its counters across clear() until resetStats()', () => {
    const faults = new FaultInjector().dropNext(1);
    faults.decide('GET', 'Patient');
    faults.clear();
    expect(faults.stats.injected.drop).toBe(1);
    faults.resetStats();
    expect(faults.stats).toEqual({
      requests: 0,
      byMethod: {},
      injected: { status: 0, outage: 0, drop: 0, 'serialization-failure': 0, 'html-bad-gateway': 0 },
      delayed: 0,
    });
  });
});

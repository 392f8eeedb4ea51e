import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConfigurationError, QuotaPacer, interactionCost } from '../../src/index.ts';

const write = interactionCost('create');
const headers = (points: number, resetSeconds: number): Headers =>
  new Headers({
    RateLimit: `"requests";r=59000;t=${resetSeconds}, "fhirInteractions";r=${points};t=${resetSeconds}`,
  });

/** Whether the promise has settled after the pending microtasks ran. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  void promise.then(
    () => (done = true),
    () => (done = true),
  );
  await vi.advanceTimersByTimeAsync(0);
  return done;
}

describe('QuotaPacer', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('sends one probe until the first answer says what the budget is', async () => {
    const pacer = new QuotaPacer();
    await pacer.acquire(write, 'background');
    const second = pacer.acquire(write, 'background');
    expect(await settled(second)).toBe(false);
    pacer.observe(headers(10_000, 60), write);
    await vi.advanceTimersByTimeAsync(100);
    expect(await settled(second)).toBe(true);
  });

  it('keeps background work within the budget, less the reserve, until the reset', async () => {
    const pacer = new QuotaPacer({ reserve: 0.1 });
    await pacer.acquire(write, 'background');
    // 400 points left of a 500-point window: 50 kept for live calls, so 3 writes.
    pacer.observe(headers(400, 30), write);
    expect(pacer.affordable(write, 'background')).toBe(3);
    for (let i = 0; i < 3; i++) await pacer.acquire(write, 'background');
    const fourth = pacer.acquire(write, 'background');
    expect(await settled(fourth)).toBe(false);
    // Live calls may spend the reserve meanwhile.
    expect(pacer.affordable(write, 'live')).toBe(1);
    await pacer.acquire(write, 'live');
    for (const left of [300, 200, 100, 0]) pacer.observe(headers(left, 30), write);
    await vi.advanceTimersByTimeAsync(29_000);
    expect(await settled(fourth)).toBe(false);
    await vi.advanceTimersByTimeAsync(1_300);
    expect(await settled(fourth)).toBe(true);
    expect(pacer.stats()).toMatchObject({ waits: 1 });
  });

  it('waits out a 429 once, until the reset it announced', async () => {
    const pacer = new QuotaPacer();
    await pacer.acquire(write, 'live');
    pacer.observe(headers(0, 15), write);
    const next = pacer.acquire(write, 'live');
    await vi.advanceTimersByTimeAsync(14_900);
    expect(await settled(next)).toBe(false);
    await vi.advanceTimersByTimeAsync(400);
    expect(await settled(next)).toBe(true);
    expect(pacer.stats()).toMatchObject({ waits: 1, exhausted: 1 });
  });

  it('answers out of order never raise what is left within a window', async () => {
    const pacer = new QuotaPacer({ reserve: 0 });
    await pacer.acquire(write, 'background');
    pacer.observe(headers(300, 60), write);
    pacer.observe(headers(500, 59), write);
    expect(pacer.affordable(write, 'background')).toBe(3);
  });

  it('paces nothing on a server that announces no limits', async () => {
    const pacer = new QuotaPacer();
    await pacer.acquire(write, 'background');
    pacer.observe(new Headers(), write);
    for (let i = 0; i < 100; i++) await pacer.acquire(write, 'background');
    expect(pacer.affordable(write, 'background')).toBe(Number.POSITIVE_INFINITY);
    expect(pacer.stats().waits).toBe(0);
  });

  it('take() spends points for requests it never hears back from (a backfill on its own client)', async () => {
    const pacer = new QuotaPacer({ reserve: 0 });
    await pacer.acquire(write, 'live');
    pacer.observe(headers(100, 60), write);
    await pacer.take(20);
    await pacer.take(20);
    expect(pacer.affordable({ fhirInteractions: 20 }, 'background')).toBe(3);
    const late = pacer.take(80);
    expect(await settled(late)).toBe(false);
    await vi.advanceTimersByTimeAsync(60_300);
    expect(await settled(late)).toBe(true);
  });

  it('stops waiting when the signal aborts', async () => {
    const pacer = new QuotaPacer();
    await pacer.acquire(write, 'live');
    pacer.observe(headers(0, 60), write);
    const controller = new AbortController();
    const waiting = pacer.acquire(write, 'live', controller.signal);
    controller.abort(new Error('stopping'));
    await expect(waiting).rejects.toThrow('stopping');
  });

  it('refuses options out of range, naming them', () => {
    expect(() => new QuotaPacer({ reserve: 2 })).toThrow(ConfigurationError);
    expect(() => new QuotaPacer({ reserve: 2 })).toThrow(/pacer\.reserve/);
    expect(() => new QuotaPacer({ marginMs: -1 })).toThrow(/pacer\.marginMs/);
    expect(() => new QuotaPacer({ reserv: 0.1 } as never)).toThrow(/reserv/);
  });
});

import { afterEach, describe, expect, it, vi } from 'vitest';
import { CutoverPlan, MemoryStore, createMedplumClient } from '../../src/index.ts';
import { MemoryLegacyAdapter } from '../../src/testing/index.ts';
import type { PatientRow } from '../harness/patient-fixture.ts';
import { feedsOver } from './feeds-fixture.ts';

/**
 * A feed's holder keeps its lease for as long as a read runs, however long that is: another
 * instance must not take the feed over (and read it at the same time) from a holder that is
 * alive and reading. Time is faked, so the read outlasts the lease deterministically.
 */
describe('feed lease during a slow read', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('renews the lease while a read outlasts it, and lets it go once the read ends', async () => {
    vi.useFakeTimers({ toFake: ['Date', 'setInterval', 'clearInterval'] });
    const store = new MemoryStore();
    const legacy = new MemoryLegacyAdapter<PatientRow>();
    let entered!: () => void;
    const reading = new Promise<void>((resolve) => (entered = resolve));
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const changesSince = legacy.changesSince.bind(legacy);
    legacy.changesSince = async (...args) => {
      entered();
      await gate;
      return changesSince(...args);
    };
    const plan = new CutoverPlan<{ unit: string }>({ default: 'dual-write', unitOf: (ctx) => ctx.unit });
    // Never called: only the legacy feed runs.
    const medplum = createMedplumClient({ baseUrl: 'http://127.0.0.1:9/' });
    const feeds = feedsOver({ legacy, medplum, plan, store }, { sides: ['legacy'], leaseMs: 300 });
    const pass = feeds.pollOnce();
    await reading;
    for (let step = 0; step < 10; step += 1) await vi.advanceTimersByTimeAsync(100);
    // A second of reading, three leases long: the holder still has the feed.
    expect(await store.acquireFeedLease('feed:legacy:Patient', 'another-instance', 300)).toBe(false);
    release();
    expect(await pass).toMatchObject({ errors: 0 });
    // No renewal after the read: the lease runs out, and the feed is free to take over.
    await vi.advanceTimersByTimeAsync(400);
    expect(await store.acquireFeedLease('feed:legacy:Patient', 'another-instance', 300)).toBe(true);
  });
});

import { afterEach, describe, expect, it, vi } from 'vitest';
import { CutoverPlan, MemoryStore, createMedplumClient } from '../../src/index.ts';
import { MemoryLegacyAdapter, startFhirTestServer } from '../../src/testing/index.ts';
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

  it("keeps every feed it holds while the pass reads another one (the legacy feed while the Medplum feed's existence check runs)", async () => {
    const server = await startFhirTestServer();
    try {
      vi.useFakeTimers({ toFake: ['Date', 'setInterval', 'clearInterval'] });
      const store = new MemoryStore();
      const legacy = new MemoryLegacyAdapter<PatientRow>();
      let entered!: () => void;
      const checking = new Promise<void>((resolve) => (entered = resolve));
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      // The existence check reads the links: held there, it outlasts the feed leases.
      const listLinks = store.listLinks.bind(store);
      store.listLinks = async (...args) => {
        entered();
        await gate;
        return listLinks(...args);
      };
      const plan = new CutoverPlan<{ unit: string }>({ default: 'dual-write', unitOf: (ctx) => ctx.unit });
      const medplum = createMedplumClient({ baseUrl: server.baseUrl });
      const feeds = feedsOver(
        { legacy, medplum, plan, store },
        { sides: ['legacy', 'medplum'], leaseMs: 300, existenceCheckIntervalMs: 0 },
      );
      const pass = feeds.pollOnce();
      await checking;
      for (let step = 0; step < 10; step += 1) await vi.advanceTimersByTimeAsync(100);
      // A second into the check, three leases long: the holder still has both feeds.
      expect(await store.acquireFeedLease('feed:legacy:Patient', 'another-instance', 300)).toBe(false);
      expect(await store.acquireFeedLease('feed:medplum:Patient', 'another-instance', 300)).toBe(false);
      release();
      expect(await pass).toMatchObject({ errors: 0 });
      await vi.advanceTimersByTimeAsync(400);
      expect(await store.acquireFeedLease('feed:legacy:Patient', 'another-instance', 300)).toBe(true);
    } finally {
      vi.useRealTimers();
      await server.close();
    }
  });
});

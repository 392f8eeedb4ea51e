import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../src/journal/memory-store.ts';
import type { Lease } from '../../src/journal/outbox.ts';
import { Drainer, drainerPolicyOf, type LeaseRun } from '../../src/mirror/drainer.ts';
import { intentOf, sleep } from '../journal/sync-store.fixture.ts';

/** A store whose claims after the first take `delayMs`, as a loaded database's would. */
class SlowClaims extends MemoryStore {
  claims = 0;
  readonly delayMs: number;
  constructor(delayMs: number) {
    super();
    this.delayMs = delayMs;
  }
  override async claim(owner: string, limit: number, leaseMs: number): Promise<Lease[]> {
    this.claims += 1;
    if (this.claims > 1) await sleep(this.delayMs);
    return super.claim(owner, limit, leaseMs);
  }
}

async function queue(store: MemoryStore, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await store.commit(await store.intend(intentOf(`p-${i}`), 0));
}

/** Applies a lease after `ms`, then records it done; counts what it saw. */
function slowRun(store: MemoryStore, ms: number, seen: string[]): LeaseRun<undefined> {
  return async (lease, _prepared, attempted) => {
    seen.push(lease.entry.legacyId);
    await sleep(ms);
    attempted();
    await store.complete(lease, undefined);
    return { status: 'applied', outcome: undefined, error: undefined };
  };
}

describe('the drainer pipeline', () => {
  it('claims ahead while leases run, and applies each entry once', async () => {
    const store = new SlowClaims(5);
    await queue(store, 40);
    const seen: string[] = [];
    const drainer = new Drainer(
      store,
      slowRun(store, 5, seen),
      drainerPolicyOf({ concurrency: 4, pollIntervalMs: 5 }),
    );
    const report = await drainer.drain(10_000);
    expect(report).toMatchObject({ applied: 40, timedOut: false });
    expect(new Set(seen).size).toBe(40);
    expect(seen).toHaveLength(40);
  });

  it('a stop while a claim made ahead is out runs what it leased: nothing is left leased', async () => {
    const store = new SlowClaims(60);
    await queue(store, 20);
    const seen: string[] = [];
    const drainer = new Drainer(
      store,
      slowRun(store, 20, seen),
      drainerPolicyOf({ concurrency: 2, batchSize: 4, pollIntervalMs: 5 }),
    );
    drainer.start();
    // Stop once the first batch is running and the claim made ahead waits on the slow store.
    while (store.claims < 2) await sleep(1);
    await drainer.stop();
    // Once stopped, nothing the drainer did is still on its way to the store.
    await sleep(80);
    const outbox = await store.outboxCounts();
    expect(outbox.leased).toBe(0);
    expect(seen.length + outbox.pending).toBe(20);
    expect(seen.length).toBeGreaterThan(4);
  });

  it('a pause lets claimed leases finish and claims nothing more until resumed', async () => {
    const store = new SlowClaims(0);
    await queue(store, 10);
    const seen: string[] = [];
    const drainer = new Drainer(
      store,
      slowRun(store, 30, seen),
      drainerPolicyOf({ concurrency: 2, batchSize: 2, pollIntervalMs: 5 }),
    );
    drainer.start();
    while (seen.length === 0) await sleep(1);
    drainer.pause();
    // Long enough for everything claimed before the pause to finish (at most 3 batches of 2).
    await sleep(300);
    const claimsWhilePaused = store.claims;
    const outbox = await store.outboxCounts();
    expect(outbox.leased).toBe(0);
    expect(outbox.pending).toBeGreaterThan(0);
    await sleep(40);
    expect(store.claims).toBe(claimsWhilePaused);
    drainer.resume();
    await drainer.drain(10_000);
    await drainer.stop();
    expect((await store.outboxCounts()).pending).toBe(0);
    expect(new Set(seen).size).toBe(10);
  });
});

/** A store that fails its next claims and completions, as one whose database restarts would. */
class FlakyStore extends MemoryStore {
  failClaims = 0;
  failCompletions = 0;
  override async claim(owner: string, limit: number, leaseMs: number): Promise<Lease[]> {
    if (this.failClaims > 0) {
      this.failClaims -= 1;
      throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
    }
    return super.claim(owner, limit, leaseMs);
  }
  override async complete(lease: Lease, link: Parameters<MemoryStore['complete']>[1]) {
    if (this.failCompletions > 0) {
      this.failCompletions -= 1;
      throw new Error('Connection terminated unexpectedly');
    }
    return super.complete(lease, link);
  }
}

describe('the background drainer when the store fails', () => {
  it('reports each failure, backs off, and goes on once the store is back: nothing lost', async () => {
    const store = new FlakyStore();
    await queue(store, 6);
    store.failClaims = 3;
    store.failCompletions = 2;
    const errors: unknown[] = [];
    const seen: string[] = [];
    const drainer = new Drainer(
      store,
      slowRun(store, 1, seen),
      drainerPolicyOf({ concurrency: 2, pollIntervalMs: 5, leaseMs: 100 }),
      { onError: (err) => errors.push(err) },
    );
    drainer.start();
    for (
      let i = 0;
      i < 500 && (await store.outboxCounts()).pending + (await store.outboxCounts()).leased > 0;
      i++
    )
      await sleep(10);
    await drainer.stop();
    expect(await store.outboxCounts()).toEqual({ pending: 0, leased: 0, dead: 0 });
    // Two leases whose completion failed expired and ran again.
    expect(new Set(seen).size).toBe(6);
    expect(errors.map((err) => (err as Error).message).sort()).toEqual([
      'Connection terminated unexpectedly',
      'Connection terminated unexpectedly',
      'connect ECONNREFUSED 127.0.0.1:5432',
      'connect ECONNREFUSED 127.0.0.1:5432',
      'connect ECONNREFUSED 127.0.0.1:5432',
    ]);
  });

  it('a drain, which has a caller, throws the store failure to it', async () => {
    const store = new FlakyStore();
    await queue(store, 2);
    store.failClaims = 1;
    const drainer = new Drainer(store, slowRun(store, 1, []), drainerPolicyOf({ pollIntervalMs: 5 }));
    await expect(drainer.drain(5000)).rejects.toThrow('ECONNREFUSED');
    expect(await drainer.drain(5000)).toMatchObject({ applied: 2, timedOut: false });
  });
});

/** A store that counts how often each entry is leased. */
class CountingClaims extends MemoryStore {
  readonly leasedTimes = new Map<string, number>();
  override async claim(owner: string, limit: number, leaseMs: number): Promise<Lease[]> {
    const leases = await super.claim(owner, limit, leaseMs);
    for (const lease of leases)
      this.leasedTimes.set(lease.entry.legacyId, (this.leasedTimes.get(lease.entry.legacyId) ?? 0) + 1);
    return leases;
  }
}

describe('leases claimed ahead', () => {
  it('are renewed while they wait behind slow mirrors, so each entry is leased once', async () => {
    const store = new CountingClaims();
    await queue(store, 8);
    const seen: string[] = [];
    // Mirrors of 150 ms, leases of 400 ms: a lease waiting behind two mirrors outlives half its life.
    const drainer = new Drainer(
      store,
      slowRun(store, 150, seen),
      drainerPolicyOf({ concurrency: 1, batchSize: 4, pollIntervalMs: 5, leaseMs: 400 }),
    );
    expect(await drainer.drain(10_000)).toMatchObject({ applied: 8, timedOut: false });
    expect(seen).toHaveLength(8);
    expect([...store.leasedTimes.values()]).toEqual(Array.from({ length: 8 }, () => 1));
  });

  it('count as this drainer’s work: a drain while the loop runs waits for them', async () => {
    const store = new MemoryStore();
    await queue(store, 4);
    const seen: string[] = [];
    const drainer = new Drainer(
      store,
      slowRun(store, 1, seen),
      drainerPolicyOf({ concurrency: 2, pollIntervalMs: 5 }),
      // A slow batch read: the leases wait in the claim while the drain starts.
      { prepare: async (leases) => (await sleep(300), leases.map(() => undefined)) },
    );
    drainer.start();
    await sleep(20);
    const report = await drainer.drain(5000);
    await drainer.stop();
    expect(report).toMatchObject({ applied: 4, timedOut: false });
    expect(seen).toHaveLength(4);
  });

  it('are run, not left leased, when a drain fails', async () => {
    const store = new FlakyStore();
    await queue(store, 12);
    const seen: string[] = [];
    let completions = 0;
    const run: LeaseRun<undefined> = async (lease, _prepared, attempted) => {
      seen.push(lease.entry.legacyId);
      await sleep(5);
      attempted();
      // The fourth completion fails: the drain stops claiming and throws.
      completions += 1;
      if (completions === 4) store.failCompletions = 1;
      await store.complete(lease, undefined);
      return { status: 'applied', outcome: undefined, error: undefined };
    };
    const drainer = new Drainer(
      store,
      run,
      drainerPolicyOf({ concurrency: 2, batchSize: 8, pollIntervalMs: 5 }),
    );
    await expect(drainer.drain(5000)).rejects.toThrow('Connection terminated');
    await sleep(50);
    const outbox = await store.outboxCounts();
    // Only the lease whose completion failed is still leased (until it expires).
    expect(outbox.leased).toBe(1);
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import type { DualWriteEvent } from '../../src/index.ts';
import type { MemoryLegacyAdapter } from '../../src/testing/index.ts';
import type { PatientRow } from '../harness/patient-fixture.ts';
import { medplumCopies, north, startWriterFixture, type WriterFixture } from '../harness/writer-fixture.ts';

type Retry = Extract<DualWriteEvent, { type: 'retry' }>;

describe('the drain under a rate limit (in-process server answering 429 with RateLimit headers)', () => {
  let fx: WriterFixture<MemoryLegacyAdapter<PatientRow>>;
  afterEach(async () => {
    await fx.close();
  });

  it('waits a 429 on batch entries out once, until the reset announced, and says how long', async () => {
    fx = await startWriterFixture({ writer: { mirror: 'async' } });
    for (let i = 1; i <= 6; i++)
      await fx.writer.create('Patient', { id: `p-${i}`, first_name: 'A', last_name: `F${i}` }, north);
    // The quota runs out in the middle of the bundle: 3 of its entries answer 429, and the
    // batch's RateLimit header says the window resets in 2 s (Medplum: `r=0;t=2`).
    fx.server.faults.failNext(3, 429, { methods: ['POST'], path: 'Patient', rateLimitResetSeconds: 2 });
    const started = Date.now();
    const report = await fx.writer.drain({ timeoutMs: 20_000 });
    expect(report).toMatchObject({ applied: 6, deadLettered: 0, timedOut: false });
    const retries = fx.events.filter((e): e is Retry => e.type === 'retry');
    expect(retries).toHaveLength(3);
    for (const retry of retries) {
      expect(retry.status).toBe(429);
      expect(retry.delayMs).toBeGreaterThanOrEqual(2000);
    }
    // Each throttled record was retried once, after the reset, not hammered meanwhile.
    expect(new Set(retries.map((r) => r.legacyId)).size).toBe(3);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2000);
    for (let i = 1; i <= 6; i++) expect(await medplumCopies(fx.direct, `p-${i}`)).toHaveLength(1);
  });

  it('a write in a call waits a 429 out once, with the wait in its retry event', async () => {
    fx = await startWriterFixture({
      writer: { retry: { retries: 3, minTimeoutMs: 5, maxTimeoutMs: 20, maxRateLimitWaitMs: 5000 } },
    });
    fx.server.faults.failNext(1, 429, { methods: ['POST'], rateLimitResetSeconds: 1 });
    await fx.writer.create('Patient', { id: 'p-1', first_name: 'A', last_name: 'B' }, north);
    const retries = fx.events.filter((e): e is Retry => e.type === 'retry');
    expect(retries).toHaveLength(1);
    expect(retries[0]).toMatchObject({ status: 429, attempt: 1 });
    expect(retries[0]!.delayMs).toBeGreaterThanOrEqual(1000);
    expect(await medplumCopies(fx.direct, 'p-1')).toHaveLength(1);
  });
});

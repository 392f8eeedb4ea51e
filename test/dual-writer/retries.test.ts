import { afterEach, describe, expect, it } from 'vitest';
import type { MemoryLegacyAdapter } from '../../src/testing/index.ts';
import type { PatientRow } from '../harness/patient-fixture.ts';
import { medplumCopies, north, startWriterFixture, type WriterFixture } from '../harness/writer-fixture.ts';

const ada: PatientRow = { id: 'p-1', first_name: 'Ada', last_name: 'Lovelace' };

let fixture: WriterFixture<MemoryLegacyAdapter<PatientRow>> | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

describe('retries owned by the library', () => {
  it('503s followed by success mirror once', async () => {
    fixture = await startWriterFixture();
    const { writer, direct, server, events } = fixture;
    server.faults.failNext(2, 503);
    const result = await writer.create('Patient', ada, north);
    expect(result.mirror).toBe('applied');
    expect(result.mirrorAttempts).toBe(3);
    expect(await medplumCopies(direct, 'p-1')).toHaveLength(1);
    expect(events.filter((e) => e.type === 'retry').map((e) => e.status)).toEqual([503, 503]);
  });

  it('a 429 is retried after the RateLimit reset it names', async () => {
    fixture = await startWriterFixture();
    const { writer, direct, server, events } = fixture;
    server.faults.failNext(1, 429, { rateLimitResetSeconds: 1 });
    const result = await writer.create('Patient', ada, north);
    expect(result.mirrorAttempts).toBe(2);
    expect(await medplumCopies(direct, 'p-1')).toHaveLength(1);
    const retry = events.find((e) => e.type === 'retry');
    // The fixture caps rate-limit waits at 50 ms; uncapped it would be the 1 s reset.
    expect(retry).toMatchObject({ status: 429 });
    expect(retry?.type === 'retry' && retry.delayMs).toBeGreaterThanOrEqual(50);
  });

  it('dropped connections are retried and mirror once', async () => {
    fixture = await startWriterFixture();
    const { writer, direct, server } = fixture;
    server.faults.dropNext(2);
    const result = await writer.create('Patient', ada, north);
    expect(result.mirrorAttempts).toBe(3);
    expect(await medplumCopies(direct, 'p-1')).toHaveLength(1);
  });

  it("Medplum's transient 409 (serialisation failure 40001) is retried, not taken for a conflict", async () => {
    fixture = await startWriterFixture();
    const { writer, direct, server, events } = fixture;
    server.faults.serializationFailureNext(2);
    const result = await writer.create('Patient', ada, north);
    expect(result.mirror).toBe('applied');
    expect(events.filter((e) => e.type === 'retry').map((e) => [e.status, e.error])).toEqual([
      [409, 'UnavailableError'],
      [409, 'UnavailableError'],
    ]);
    expect(await medplumCopies(direct, 'p-1')).toHaveLength(1);
  });

  it('an HTML 502 from a proxy is read as a 502, not as the 400 the client reports', async () => {
    fixture = await startWriterFixture();
    const { writer, server, events } = fixture;
    server.faults.htmlBadGatewayNext(1);
    await writer.create('Patient', ada, north);
    expect(events.find((e) => e.type === 'retry')).toMatchObject({ status: 502 });
  });

  it('a mirror that stays unavailable is left pending in the outbox; the call succeeds and a drain completes it later', async () => {
    fixture = await startWriterFixture();
    const { writer, server, legacy, direct } = fixture;
    server.faults.outage(60_000);
    const result = await writer.create('Patient', ada, north);
    expect(result).toMatchObject({
      mirror: 'pending',
      mirrorAttempts: 5,
      legacy: { action: 'created' },
      medplum: { action: 'pending' },
    });
    expect(result.outboxId).toBeDefined();
    expect(await legacy.read('Patient', 'p-1')).toBeDefined();
    expect(await writer.outbox()).toMatchObject({ pending: 1, dead: 0 });
    expect(await writer.linkOf('Patient', 'p-1')).toBeUndefined();

    // Once Medplum is back, the drainer completes the mirror.
    server.faults.clear();
    const report = await writer.drain({ timeoutMs: 10_000 });
    expect(report).toMatchObject({ applied: 1, deadLettered: 0, timedOut: false });
    expect(await medplumCopies(direct, 'p-1')).toHaveLength(1);
    expect(await writer.linkOf('Patient', 'p-1')).toBeDefined();
  });

  it('transient legacy errors are retried when the adapter marks them retryable', async () => {
    fixture = await startWriterFixture({ stage: 'live' });
    const { writer, legacy } = fixture;
    legacy.failNext(2);
    const result = await writer.create('Patient', ada, north);
    expect(result.mirrorAttempts).toBe(3);
    expect((await legacy.read('Patient', 'p-1'))?.row.last_name).toBe('Lovelace');
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import { MirrorError, UnavailableError } from '../../src/index.ts';
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

  it('a mirror that stays unavailable fails with a MirrorError after the last retry; the authority write stands', async () => {
    fixture = await startWriterFixture();
    const { writer, server, legacy } = fixture;
    server.faults.outage(60_000);
    const error = await writer.create('Patient', ada, north).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(MirrorError);
    const mirrorError = error as MirrorError;
    expect(mirrorError.cause).toBeInstanceOf(UnavailableError);
    expect(mirrorError).toMatchObject({
      retryable: true,
      side: 'medplum',
      status: 503,
      attempts: 5,
      legacyId: 'p-1',
    });
    expect(mirrorError.result.legacy.action).toBe('created');
    expect(await legacy.read('Patient', 'p-1')).toBeDefined();
    expect(await writer.linkOf('Patient', 'p-1')).toBeUndefined();

    // Once Medplum is back, writing the record again completes the mirror.
    server.faults.clear();
    const again = await writer.create('Patient', ada, north);
    expect(again.medplum.action).toBe('created');
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

import { afterEach, describe, expect, it } from 'vitest';
import type { MemoryLegacyAdapter } from '../../src/testing/index.ts';
import { PATIENT_SYSTEM, type PatientRow } from '../harness/patient-fixture.ts';
import { medplumCopies, north, startWriterFixture, type WriterFixture } from '../harness/writer-fixture.ts';

const ada: PatientRow = { id: 'p-1', first_name: 'Ada', last_name: 'Lovelace' };

let fixture: WriterFixture<MemoryLegacyAdapter<PatientRow>> | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

describe('idempotent mirrors', () => {
  it('replaying the same create three times leaves one Medplum resource', async () => {
    fixture = await startWriterFixture({ stage: 'dual-write' });
    const { writer, direct, legacy } = fixture;
    const results = [];
    for (let i = 0; i < 3; i++) results.push(await writer.create('Patient', ada, north));
    expect(results.map((r) => [r.legacy.action, r.medplum.action])).toEqual([
      ['created', 'created'],
      ['unchanged', 'unchanged'],
      ['unchanged', 'unchanged'],
    ]);
    expect(await medplumCopies(direct, 'p-1')).toHaveLength(1);
    expect((await legacy.changesSince('Patient', undefined, 10)).changes).toHaveLength(1);
  });

  it('replaying a create while Medplum is the authority leaves one resource on each side', async () => {
    fixture = await startWriterFixture({ stage: 'live' });
    const { writer, direct, legacy } = fixture;
    for (let i = 0; i < 3; i++) await writer.create('Patient', ada, north);
    expect(await medplumCopies(direct, 'p-1')).toHaveLength(1);
    expect((await legacy.changesSince('Patient', undefined, 10)).changes).toHaveLength(1);
  });

  it('adopts an orphan left by a create whose answer was lost, instead of creating a second', async () => {
    fixture = await startWriterFixture({ stage: 'dual-write' });
    const { writer, direct, server } = fixture;
    // The server applies the POST, then the connection drops: the client never sees the id.
    server.faults.dropNext(1, { methods: ['POST'], afterProcessing: true });
    const result = await writer.create('Patient', ada, north);
    expect(result.mirrorAttempts).toBe(2);
    const copies = await medplumCopies(direct, 'p-1');
    expect(copies).toHaveLength(1);
    expect(result.medplumId).toBe(copies[0]?.id);
    expect(await writer.linkOf('Patient', 'p-1')).toMatchObject({ medplumId: copies[0]?.id });
  });

  it('an update whose answer was lost is not taken for a conflict on retry', async () => {
    fixture = await startWriterFixture({ stage: 'dual-write' });
    const { writer, direct, server } = fixture;
    await writer.create('Patient', ada, north);
    server.faults.htmlBadGatewayNext(1, { methods: ['PUT'], afterProcessing: true });
    const result = await writer.update('Patient', 'p-1', { ...ada, last_name: 'King' }, north);
    expect(result.mirror).toBe('unchanged');
    expect(result.mirrorAttempts).toBe(2);
    const copies = await medplumCopies(direct, 'p-1');
    expect(copies.map((p) => p.name?.[0]?.family)).toEqual(['King']);
    expect(await writer.linkOf('Patient', 'p-1')).toMatchObject({
      medplumVersion: copies[0]?.meta?.versionId,
    });
  });

  it('does not write a side that already holds the content', async () => {
    fixture = await startWriterFixture({ stage: 'dual-write' });
    const { writer, server } = fixture;
    await writer.create('Patient', ada, north);
    const before = server.faults.stats.byMethod.PUT ?? 0;
    const result = await writer.update('Patient', 'p-1', ada, north);
    expect(result.legacy.action).toBe('unchanged');
    expect(result.medplum.action).toBe('unchanged');
    expect(server.faults.stats.byMethod.PUT ?? 0).toBe(before);
  });

  it('keeps one in-flight write per record: concurrent updates apply in call order', async () => {
    fixture = await startWriterFixture({ stage: 'dual-write' });
    const { writer, direct, server } = fixture;
    await writer.create('Patient', ada, north);
    server.faults.latency({ minMs: 0, maxMs: 15 });
    const names = Array.from({ length: 8 }, (_, i) => `Name${i}`);
    await Promise.all(
      names.map((name) => writer.update('Patient', 'p-1', { ...ada, last_name: name }, north)),
    );
    const [copy] = await medplumCopies(direct, 'p-1');
    expect(copy?.name?.[0]?.family).toBe('Name7');
    const history = await direct.readHistory('Patient', copy?.id ?? '');
    const families = (history.entry ?? [])
      .map((e) => (e.resource as { name?: { family?: string }[] } | undefined)?.name?.[0]?.family)
      .reverse();
    expect(families).toEqual(['Lovelace', ...names]);
  });

  it('identifies every Medplum copy by the mapping identifier system', async () => {
    fixture = await startWriterFixture({ stage: 'dual-write' });
    const result = await fixture.writer.create('Patient', ada, north);
    expect(result.resource).toMatchObject({ identifier: [{ system: PATIENT_SYSTEM, value: 'p-1' }] });
  });
});

describe('many service instances', () => {
  it('two writers with their own link stores creating one record at once leave one copy on each side', async () => {
    fixture = await startWriterFixture({ stage: 'dual-write' });
    const { writer, direct, legacy, medplum, plan } = fixture;
    // A second instance of the service: same systems, its own process memory.
    const { DualWriter, MemoryStore } = await import('../../src/index.ts');
    const { patientMapping } = await import('../harness/patient-fixture.ts');
    const other = new DualWriter({
      legacy,
      medplum,
      mappings: [patientMapping],
      plan,
      store: new MemoryStore(),
      retry: { retries: 6, minTimeoutMs: 1, maxTimeoutMs: 10 },
    });
    fixture.server.faults.latency({ minMs: 0, maxMs: 10 });
    const results = await Promise.all(
      [0, 1, 2, 3, 4, 5].map((i) => (i % 2 === 0 ? writer : other).create('Patient', ada, north)),
    );
    expect(results.filter((r) => r.legacy.action === 'created')).toHaveLength(1);
    expect(results.filter((r) => r.medplum.action === 'created')).toHaveLength(1);
    expect(await medplumCopies(direct, 'p-1')).toHaveLength(1);
    expect(new Set(results.map((r) => r.medplumId)).size).toBe(1);
  });
});

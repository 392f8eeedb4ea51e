import type { Patient } from '@medplum/fhirtypes';
import { afterEach, describe, expect, it } from 'vitest';
import type { DualWriteEvent, LegacyRecord, LegacyWriteOptions } from '../../src/index.ts';
import { MemoryLegacyAdapter } from '../../src/testing/index.ts';
import type { PatientRow } from '../harness/patient-fixture.ts';
import { medplumCopies, north, startWriterFixture, type WriterFixture } from '../harness/writer-fixture.ts';

const ada: PatientRow = { id: 'p-1', first_name: 'Ada', last_name: 'Lovelace' };

let fixture: WriterFixture<MemoryLegacyAdapter<PatientRow>> | undefined;
afterEach(async () => {
  await fixture?.writer.stop();
  await fixture?.close();
  fixture = undefined;
});

/** A legacy database with a trigger that upper-cases family names on every write. */
class UpperCasingLegacy extends MemoryLegacyAdapter<PatientRow> {
  override create(resourceType: string, row: PatientRow): Promise<LegacyRecord<PatientRow>> {
    return super.create(resourceType, { ...row, last_name: row.last_name.toUpperCase() });
  }
  override update(
    resourceType: string,
    id: string,
    row: PatientRow,
    options?: LegacyWriteOptions,
  ): Promise<LegacyRecord<PatientRow>> {
    return super.update(resourceType, id, { ...row, last_name: row.last_name.toUpperCase() }, options);
  }
}

function divergences(events: readonly DualWriteEvent[]) {
  return events.filter(
    (event): event is Extract<DualWriteEvent, { type: 'divergence' }> => event.type === 'divergence',
  );
}

describe('divergence after a mirror (sampled read-back)', () => {
  it('reads the target back and reports the paths where it differs from the source', async () => {
    fixture = await startWriterFixture({
      stage: 'live',
      legacy: new UpperCasingLegacy(),
      writer: { divergence: { verifySampleRate: 1 } },
    });
    const { writer, events, store } = fixture;
    await writer.createResource(
      {
        resourceType: 'Patient',
        identifier: [{ system: 'https://legacy.example.org/patient-id', value: 'p-1' }],
        name: [{ given: ['Ada'], family: 'Lovelace' }],
      },
      north,
    );
    await writer.settled();
    expect(writer.divergenceCounts()).toMatchObject({ verified: 1, divergent: 1 });
    const [found] = divergences(events);
    expect(found).toMatchObject({ source: 'verify', legacyId: 'p-1', unit: 'north' });
    expect(found?.differences.map((d) => d.path)).toEqual(['name[0].family']);
    // Values are hashed in events, never shown.
    expect(JSON.stringify(found)).not.toMatch(/LOVELACE|Lovelace/);
    expect(found?.differences[0]?.before).toMatch(/^sha256:[0-9a-f]{16}$/);
    expect(await store.listEvents({ type: 'divergence' })).toHaveLength(1);
  });

  it('finds nothing when the copies agree, and samples nothing at rate 0', async () => {
    fixture = await startWriterFixture({
      stage: 'dual-write',
      writer: { divergence: { verifySampleRate: 1 } },
    });
    await fixture.writer.create('Patient', ada, north);
    await fixture.writer.update('Patient', 'p-1', { ...ada, birth_date: '1815-12-10' }, north);
    await fixture.writer.settled();
    expect(fixture.writer.divergenceCounts()).toMatchObject({ verified: 2, divergent: 0 });
    expect(divergences(fixture.events)).toEqual([]);
    await fixture.close();

    fixture = await startWriterFixture({
      stage: 'dual-write',
      writer: { divergence: { verifySampleRate: 0 } },
    });
    await fixture.writer.create('Patient', ada, north);
    await fixture.writer.settled();
    expect(fixture.writer.divergenceCounts().verified).toBe(0);
  });
});

/**
 * Holds the first `GET …/Patient/<id>` made once armed (a read-back), until released: the
 * interleaving of a read-back landing after a later mirror of the same record, injected.
 */
function readBackGate(): {
  arm(): void;
  held: Promise<void>;
  release(): void;
  restore(): void;
} {
  const original = globalThis.fetch;
  let armed = false;
  let onHeld: () => void = () => undefined;
  let release: () => void = () => undefined;
  const held = new Promise<void>((resolve) => (onHeld = resolve));
  const released = new Promise<void>((resolve) => (release = resolve));
  globalThis.fetch = async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (armed && (init?.method ?? 'GET') === 'GET' && /\/Patient\/[^/]+$/.test(url.pathname)) {
      armed = false;
      onHeld();
      await released;
    }
    return original(input, init);
  };
  return {
    arm: () => (armed = true),
    held,
    release,
    restore: () => (globalThis.fetch = original),
  };
}

describe('divergence after a mirror, read back after a later mirror', () => {
  it('is no divergence: the read-back finds a newer version than the mirror wrote, and skips', async () => {
    const gate = readBackGate();
    try {
      fixture = await startWriterFixture({
        stage: 'dual-write',
        writer: { divergence: { verifySampleRate: 1 } },
      });
      const { writer, events } = fixture;
      gate.arm();
      await writer.create('Patient', ada, north);
      // The create's read-back is held; the next write is mirrored and completed meanwhile.
      await gate.held;
      await writer.update('Patient', 'p-1', { ...ada, last_name: 'King' }, north);
      expect(await fixture.store.outboxCounts()).toMatchObject({ pending: 0, leased: 0 });
      gate.release();
      await writer.settled();
      // The held read-back found version 2 where its mirror wrote version 1: it compares
      // nothing (the update's own read-back compared version 2 with its source).
      expect(divergences(events)).toEqual([]);
      expect(writer.divergenceCounts()).toMatchObject({ verified: 1, skippedPending: 1, divergent: 0 });
    } finally {
      gate.release();
      gate.restore();
    }
  });
});

describe('shadow reads', () => {
  it('in shadow, a read also reads Medplum and reports a copy edited there directly', async () => {
    fixture = await startWriterFixture({
      stage: 'shadow',
      writer: { divergence: { verifySampleRate: 0, shadowReads: { sampleRate: 1 } } },
    });
    const { writer, direct, events } = fixture;
    await writer.create('Patient', ada, north);
    const [copy] = await medplumCopies(direct, 'p-1');
    await direct.updateResource<Patient>({ ...copy!, birthDate: '1815-12-10' });

    expect(await writer.read('Patient', 'p-1', north)).toMatchObject({ last_name: 'Lovelace' });
    await writer.settled();
    expect(writer.divergenceCounts()).toMatchObject({ shadowReads: 1, divergent: 1 });
    const [found] = divergences(events);
    expect(found).toMatchObject({ source: 'shadow-read', medplumId: copy!.id });
    expect(found?.differences).toMatchObject([{ path: 'birthDate', kind: 'added' }]);
    expect(found?.differences[0]?.after).toMatch(/^sha256:[0-9a-f]{16}$/);
    expect(JSON.stringify(events)).not.toContain('1815-12-10');
  });

  it('in live, a FHIR read also reads the legacy system and reports a row edited there directly', async () => {
    fixture = await startWriterFixture({
      stage: 'live',
      writer: { divergence: { verifySampleRate: 0, shadowReads: { sampleRate: 1 } } },
    });
    const { writer, legacy, events } = fixture;
    const created = await writer.create('Patient', ada, north);
    const row = await legacy.read('Patient', 'p-1');
    await legacy.update(
      'Patient',
      'p-1',
      { ...ada, first_name: 'Augusta' },
      { expectedVersion: row?.version },
    );

    const patient = await writer.readResource('Patient', created.medplumId!, north);
    expect(patient?.name?.[0]?.given).toEqual(['Ada']);
    await writer.settled();
    expect(divergences(events).map((e) => e.differences.map((d) => d.path))).toEqual([['name[0].given[0]']]);
  });

  it('says nothing when the copies agree, or when a write of the record is still being mirrored', async () => {
    fixture = await startWriterFixture({
      stage: 'shadow',
      writer: { mirror: 'async', divergence: { verifySampleRate: 0, shadowReads: { sampleRate: 1 } } },
    });
    const { writer } = fixture;
    await writer.create('Patient', ada, north);
    await writer.read('Patient', 'p-1', north); // Medplum has no copy yet: lag, not divergence
    await writer.settled();
    expect(writer.divergenceCounts()).toMatchObject({ skippedPending: 1, divergent: 0 });
    await writer.drain({ timeoutMs: 5_000 });
    await writer.read('Patient', 'p-1', north);
    await writer.settled();
    expect(writer.divergenceCounts()).toMatchObject({ shadowReads: 2, divergent: 0 });
    expect(divergences(fixture.events)).toEqual([]);
  });

  it('does not hold the read for a slow shadow beyond the budget: the comparison finishes in the background', async () => {
    fixture = await startWriterFixture({
      stage: 'shadow',
      writer: { divergence: { verifySampleRate: 0, shadowReads: { sampleRate: 1, budgetMs: 0 } } },
    });
    const { writer, server, direct } = fixture;
    await writer.create('Patient', ada, north);
    const [copy] = await medplumCopies(direct, 'p-1');
    await direct.updateResource<Patient>({ ...copy!, birthDate: '1815-12-10' });
    server.faults.latency(400, { methods: ['GET'] });
    await writer.read('Patient', 'p-1', north);
    // The read answered while its shadow was still waiting for Medplum.
    expect(writer.divergenceCounts().shadowReads).toBe(0);
    await writer.settled();
    expect(writer.divergenceCounts()).toMatchObject({ shadowReads: 1, divergent: 1 });
  });

  it('never fails a read because the other side failed', async () => {
    fixture = await startWriterFixture({
      stage: 'shadow',
      writer: { divergence: { verifySampleRate: 0, shadowReads: { sampleRate: 1 } } },
    });
    const { writer, server } = fixture;
    await writer.create('Patient', ada, north);
    server.faults.failNext(10, 503);
    expect(await writer.read('Patient', 'p-1', north)).toMatchObject({ first_name: 'Ada' });
    await writer.settled();
    expect(writer.divergenceCounts()).toMatchObject({ shadowReads: 0, divergent: 0 });
  });
});

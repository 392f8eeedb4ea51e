import type { Patient } from '@medplum/fhirtypes';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CutoverPlan, DualWriter, StageChangeRefusedError } from '../../src/index.ts';
import type { MemoryLegacyAdapter } from '../../src/testing/index.ts';
import { patientMapping, type PatientRow } from '../harness/patient-fixture.ts';
import {
  medplumCopies,
  north,
  startWriterFixture,
  type Ctx,
  type WriterFixture,
} from '../harness/writer-fixture.ts';

const ada: PatientRow = { id: 'p-1', first_name: 'Ada', last_name: 'Lovelace' };

let fixture: WriterFixture<MemoryLegacyAdapter<PatientRow>> | undefined;
afterEach(async () => {
  await fixture?.writer.stop();
  await fixture?.close();
  fixture = undefined;
});

describe('readiness', () => {
  it('is ready with clean mirrors, and gives the unit’s lag from applied mirrors', async () => {
    fixture = await startWriterFixture({
      stage: 'dual-write',
      writer: { divergence: { verifySampleRate: 1 } },
    });
    for (let i = 1; i <= 5; i++)
      await fixture.writer.create('Patient', { ...ada, id: `p-${String(i)}` }, north);
    const readiness = await fixture.writer.readiness('north');
    expect(readiness).toMatchObject({
      unit: 'north',
      verdict: 'ready',
      failing: [],
      figures: { conflicts: 0, divergence: 0, deadLetters: 0, pending: 0, mirrorLagMs: { samples: 5 } },
      unknown: [],
    });
    await fixture.writer.settled();
    expect((await fixture.writer.readiness('north')).figures.comparisons).toBe(5);
    expect(readiness.figures.mirrorLagMs.p95).toBeGreaterThanOrEqual(0);
    await expect(fixture.writer.readiness('north', { windowMs: -1 })).rejects.toMatchObject({
      field: 'windowMs',
    });
    await expect(fixture.writer.readiness('')).rejects.toMatchObject({ field: 'unit' });
    expect((await fixture.writer.readiness('south')).figures.mirrorLagMs).toEqual({
      p50: undefined,
      p95: undefined,
      samples: 0,
    });
  });

  it('counts the unit’s conflicts, dead letters and pending mirrors against the gates', async () => {
    fixture = await startWriterFixture({
      stage: 'dual-write',
      writer: { mirror: 'async', readiness: { gates: { maxConflicts: 0, maxPending: 0 } } },
    });
    const { writer, direct, server } = fixture;
    await writer.create('Patient', ada, north);
    expect(await writer.readiness('north')).toMatchObject({
      verdict: 'not-ready',
      figures: { pending: 1 },
      failing: [{ gate: 'maxPending', value: 1, limit: 0 }],
    });
    await writer.drain({ timeoutMs: 5_000 });
    const [copy] = await medplumCopies(direct, 'p-1');
    await direct.updateResource<Patient>({ ...copy!, birthDate: '1815-12-10' });
    await writer.update('Patient', 'p-1', { ...ada, last_name: 'King' }, north);
    server.faults.failNext(5, 400, { methods: ['POST'] });
    await writer.create('Patient', { ...ada, id: 'p-2' }, north);
    await writer.drain({ timeoutMs: 5_000 });
    const readiness = await writer.readiness('north');
    expect(readiness.figures).toMatchObject({ conflicts: 1, deadLetters: 1, pending: 0 });
    expect(readiness.failing.map((f) => f.gate).sort()).toEqual(['maxConflicts', 'maxDeadLetters']);
    expect((await writer.readiness('south')).verdict).toBe('unknown');
  });

  it('is unknown without evidence: zero comparisons pass no divergence gate, zero mirrors no lag gate', async () => {
    fixture = await startWriterFixture({
      stage: 'dual-write',
      writer: { divergence: { verifySampleRate: 0 }, readiness: { minSamples: 3 } },
    });
    const { writer, plan } = fixture;
    expect(await writer.readiness('north')).toMatchObject({
      verdict: 'unknown',
      failing: [],
      figures: { comparisons: 0, divergence: 0, mirrorLagMs: { samples: 0 } },
      unknown: [
        { gate: 'maxMirrorLagP95Ms', samples: 0, needed: 3 },
        { gate: 'maxConflicts', samples: 0, needed: 3 },
        { gate: 'maxDivergence', samples: 0, needed: 3 },
      ],
    });
    for (let i = 1; i <= 3; i++) await writer.create('Patient', { ...ada, id: `p-${String(i)}` }, north);
    // Mirrors applied: lag and conflicts have their evidence; nothing compared the copies yet.
    expect((await writer.readiness('north')).unknown).toEqual([
      { gate: 'maxDivergence', samples: 0, needed: 3 },
    ]);
    await expect(plan.set('north', 'shadow')).rejects.toMatchObject({
      name: 'StageChangeRefusedError',
      message: expect.stringMatching(/maxDivergence unknown \(0 of 3 samples\)/) as string,
    });
    // A unit that mirrors nothing has nothing to measure: its gates are judged as they stand.
    await plan.set('west', 'legacy-only', { force: true });
    expect((await writer.readiness('west')).verdict).toBe('ready');
  });

  it('judges on the evidence of every instance sharing the store, not only its own', async () => {
    fixture = await startWriterFixture({
      stage: 'dual-write',
      writer: { divergence: { verifySampleRate: 1 } },
    });
    const admin = new DualWriter<Ctx, PatientRow>({
      legacy: fixture.legacy,
      medplum: fixture.direct,
      mappings: [patientMapping],
      plan: new CutoverPlan<Ctx>({ default: 'dual-write', unitOf: (ctx) => ctx.unit }),
      store: fixture.store,
    });
    expect((await admin.readiness('north')).verdict).toBe('unknown');
    for (let i = 1; i <= 3; i++)
      await fixture.writer.create('Patient', { ...ada, id: `p-${String(i)}` }, north);
    await fixture.writer.settled();
    // The admin process applied no mirror and compared nothing: the writer's samples, stored
    // within a second of being taken, are its evidence.
    await vi.waitFor(
      async () =>
        expect(await admin.readiness('north')).toMatchObject({
          verdict: 'ready',
          figures: { comparisons: 3, mirrorLagMs: { samples: 3 } },
        }),
      { timeout: 5_000, interval: 100 },
    );
  });

  it('holds the plan: a unit that fails its gates cannot move forward unless forced', async () => {
    fixture = await startWriterFixture({ stage: 'dual-write', writer: { mirror: 'async' } });
    const { writer, plan } = fixture;
    await writer.create('Patient', ada, north);
    fixture.server.faults.failNext(5, 400, { methods: ['POST'] });
    await writer.drain({ timeoutMs: 5_000 });
    await expect(plan.set('north', 'shadow')).rejects.toBeInstanceOf(StageChangeRefusedError);
    expect(plan.stageOf('north', 'Patient')).toBe('dual-write');
    await plan.set('north', 'shadow', { force: true, reason: 'known bad record', by: 'ops' });
    expect(plan.stageOf('north', 'Patient')).toBe('shadow');
  });
});

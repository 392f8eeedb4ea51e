import type { Patient } from '@medplum/fhirtypes';
import { afterEach, describe, expect, it } from 'vitest';
import { StageChangeRefusedError } from '../../src/index.ts';
import type { MemoryLegacyAdapter } from '../../src/testing/index.ts';
import type { PatientRow } from '../harness/patient-fixture.ts';
import { medplumCopies, north, startWriterFixture, type WriterFixture } from '../harness/writer-fixture.ts';

const ada: PatientRow = { id: 'p-1', first_name: 'Ada', last_name: 'Lovelace' };

let fixture: WriterFixture<MemoryLegacyAdapter<PatientRow>> | undefined;
afterEach(async () => {
  await fixture?.writer.stop();
  await fixture?.close();
  fixture = undefined;
});

describe('readiness', () => {
  it('is ready with clean mirrors, and gives the unit’s lag from applied mirrors', async () => {
    fixture = await startWriterFixture({ stage: 'dual-write' });
    for (let i = 1; i <= 5; i++)
      await fixture.writer.create('Patient', { ...ada, id: `p-${String(i)}` }, north);
    const readiness = await fixture.writer.readiness('north');
    expect(readiness).toMatchObject({
      unit: 'north',
      verdict: 'ready',
      failing: [],
      figures: { conflicts: 0, divergence: 0, deadLetters: 0, pending: 0, mirrorLagMs: { samples: 5 } },
    });
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
    expect((await writer.readiness('south')).verdict).toBe('ready');
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

import { afterEach, describe, expect, it } from 'vitest';
import { StageChangeRefusedError } from '../../src/index.ts';
import type { MemoryLegacyAdapter } from '../../src/testing/index.ts';
import type { PatientRow } from '../harness/patient-fixture.ts';
import { startWriterFixture, type WriterFixture } from '../harness/writer-fixture.ts';

let fixture: WriterFixture<MemoryLegacyAdapter<PatientRow>> | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

const gates = { maxUnbackfilledTypes: 0, maxReconcileDisagreements: 0, maxReconcileAgeMs: 3_600_000 };

describe('readiness from jobs', () => {
  it('a unit that entered a mirroring stage is not ready until backfilled, and then until a clean reconcile', async () => {
    // Every mirror read back: the divergence gate has its evidence (comparisons) when it is asked.
    fixture = await startWriterFixture({
      stage: 'legacy-only',
      writer: { readiness: { gates }, divergence: { verifySampleRate: 1 } },
    });
    const { writer, plan, store, legacy } = fixture;
    await plan.attach(store, { refreshMs: 60_000 });
    for (let i = 0; i < 5; i += 1)
      await legacy.create('Patient', { id: String(i + 1), first_name: 'F', last_name: `L${i}` });
    // Nothing mirrors in legacy-only: the job gates do not apply yet.
    const before = await writer.readiness('north');
    expect(before.figures).toMatchObject({ unbackfilledTypes: [], reconcileDisagreements: undefined });
    expect(before.verdict).toBe('ready');
    // A backfill made before the move does not count: records may change in between.
    await writer.backfill({ resourceType: 'Patient', unit: 'north', direction: 'to-medplum' });
    await new Promise((resolve) => setTimeout(resolve, 5));
    await plan.set('north', 'dual-write', { reason: 'start mirroring' });
    const unbackfilled = await writer.readiness('north');
    expect(unbackfilled.figures.unbackfilledTypes).toEqual(['Patient']);
    expect(unbackfilled.failing.map((f) => f.gate)).toEqual([
      'maxUnbackfilledTypes',
      'maxReconcileDisagreements',
      'maxReconcileAgeMs',
    ]);
    await expect(plan.set('north', 'shadow')).rejects.toBeInstanceOf(StageChangeRefusedError);
    await writer.backfill({ resourceType: 'Patient', unit: 'north', direction: 'to-medplum' });
    await writer.drain();
    expect((await writer.readiness('north')).figures.unbackfilledTypes).toEqual([]);
    // A reconcile that finds a disagreement keeps the unit where it is.
    await fixture.direct.createResource({
      resourceType: 'Patient',
      identifier: [{ system: 'https://legacy.example.org/patient-id', value: '99' }],
    });
    await writer.reconcile({ resourceType: 'Patient', unit: 'north' });
    expect((await writer.readiness('north')).figures.reconcileDisagreements).toBe(1);
    await writer.reconcile({ resourceType: 'Patient', unit: 'north', repair: 'queue' });
    await writer.drain();
    await writer.reconcile({ resourceType: 'Patient', unit: 'north' });
    const ready = await writer.readiness('north');
    expect(ready.figures).toMatchObject({ unbackfilledTypes: [], reconcileDisagreements: 0 });
    expect(ready.figures.reconcileAgeMs).toBeLessThan(60_000);
    expect(ready.verdict).toBe('ready');
    expect(await plan.set('north', 'shadow')).toMatchObject({ to: 'shadow' });
    plan.detach();
  });

  it('does not check the job gates by default', async () => {
    fixture = await startWriterFixture({ stage: 'dual-write' });
    const readiness = await fixture.writer.readiness('north');
    expect(readiness.figures.unbackfilledTypes).toEqual(['Patient']);
    expect(readiness.figures.reconcileDisagreements).toBe(Number.POSITIVE_INFINITY);
    // No job gate fails; only the lack of mirrors and comparisons keeps the verdict unknown.
    expect(readiness.failing).toEqual([]);
    expect(readiness.verdict).toBe('unknown');
  });
});

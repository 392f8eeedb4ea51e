import { afterEach, describe, expect, it } from 'vitest';
import { manualReview, MirrorError, Operator, ReviewRequiredError } from '../../src/index.ts';
import type { MemoryLegacyAdapter } from '../../src/testing/index.ts';
import { patientMapping, type PatientRow } from '../harness/patient-fixture.ts';
import {
  medplumCopies,
  north,
  startWriterFixture,
  type Ctx,
  type WriterFixture,
} from '../harness/writer-fixture.ts';

/*
 * The operator calls that touch records, from the store, the mappings, the plan and the two
 * systems' clients: no writer is built for them. A writer left the journal as an application
 * would (a conflict for review, a legacy system full of rows); the writer is stopped first.
 */

let fixture: WriterFixture<MemoryLegacyAdapter<PatientRow>> | undefined;
afterEach(async () => {
  await fixture?.writer.stop();
  await fixture?.close();
  fixture = undefined;
});

function operatorOver(f: WriterFixture<MemoryLegacyAdapter<PatientRow>>): Operator<Ctx, PatientRow> {
  return new Operator<Ctx, PatientRow>({
    store: f.store,
    mappings: [patientMapping],
    plan: f.plan,
    legacy: f.legacy,
    medplum: f.medplum,
  });
}

describe('Operator with the two systems’ clients, no writer', () => {
  it('resolves the review conflicts of a unit in bulk: both sides take the winner, and the letters close', async () => {
    fixture = await startWriterFixture({ stage: 'dual-write', writer: { resolver: manualReview() } });
    const { writer, direct } = fixture;
    const created = await writer.create(
      'Patient',
      { id: 'p-1', first_name: 'Ada', last_name: 'Lovelace' },
      north,
    );
    const copy = await direct.readResource('Patient', created.medplumId ?? '', { cache: 'no-cache' });
    await direct.updateResource({ ...copy, birthDate: '1815-12-10' });
    const outcome = await writer
      .update('Patient', 'p-1', { id: 'p-1', first_name: 'Ada', last_name: 'King' }, north)
      .catch((err: unknown) => err);
    expect((outcome as MirrorError).cause).toBeInstanceOf(ReviewRequiredError);
    await writer.stop();

    const operator = operatorOver(fixture);
    const [letter] = await operator.deadLetters({ reason: 'ReviewRequiredError' });
    expect(letter).toMatchObject({ legacyId: 'p-1', unit: 'north', status: 'open' });
    const outcomeOf = await operator.resolveDeadLetters(
      { reason: 'ReviewRequiredError', unit: 'north' },
      { winner: 'medplum' },
      'front desk confirmed',
    );
    expect(outcomeOf).toEqual({ matched: 1, done: [letter!.id], skipped: [] });
    const row = (await fixture.legacy.read('Patient', 'p-1'))?.row;
    const copies = await medplumCopies(direct, 'p-1');
    expect(copies).toHaveLength(1);
    expect(row).toMatchObject({ last_name: 'Lovelace', birth_date: '1815-12-10' });
    expect(copies[0]).toMatchObject({ name: [{ family: 'Lovelace' }], birthDate: '1815-12-10' });
    expect(await operator.deadLetters()).toEqual([]);
    expect(await operator.deadLetter(letter!.id)).toMatchObject({
      status: 'resolved',
      resolution: 'medplum',
      note: 'front desk confirmed',
    });
    expect(await fixture.store.listEvents({ type: 'resolved' })).toMatchObject([
      { legacyId: 'p-1', data: { resolvedBy: 'operator', resolution: 'medplum' } },
    ]);
    await expect(
      operator.resolveDeadLetters({ unit: 'north' }, { merged: copies[0]! } as never, 'n'),
    ).rejects.toMatchObject({ field: 'resolution' });
    await operator.close();
  });

  it('backfills a unit with no writer: the job queues every record, and the application’s drainer applies them', async () => {
    fixture = await startWriterFixture({ stage: 'dual-write' });
    for (let i = 0; i < 12; i += 1)
      await fixture.legacy.create('Patient', {
        id: String(100 + i),
        first_name: `F${i}`,
        last_name: `L${i}`,
      });
    const operator = operatorOver(fixture);
    const job = await operator.backfill({
      resourceType: 'Patient',
      unit: 'north',
      direction: 'to-medplum',
      pageSize: 5,
    });
    expect(job).toMatchObject({ state: 'done', counts: { scanned: 12, created: 12 } });
    expect(await operator.job(job.id)).toEqual(job);
    // Nothing was applied: the operator started no drainer.
    expect(await operator.outbox()).toMatchObject([{ unit: 'north', resourceType: 'Patient', pending: 12 }]);
    expect(await medplumCopies(fixture.direct, '100')).toHaveLength(0);
    // The application's writer (any instance) drains the queue.
    await fixture.writer.drain();
    const copies = await medplumCopies(fixture.direct, '111');
    expect(copies).toHaveLength(1);
    expect(copies[0]).toMatchObject({ name: [{ family: 'L11' }] });
    expect(await operator.outbox()).toEqual([]);
    // Reconcile, direction from the unit's authority (legacy in dual-write): every record agrees.
    const report = await operator.reconcile({ resourceType: 'Patient', unit: 'north' });
    expect(report).toMatchObject({ direction: 'to-medplum', state: 'done', counts: { agree: 12 } });
    await operator.close();
  });
});

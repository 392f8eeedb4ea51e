/**
 * One failure, one dead letter. In `live`, a Medplum edit the legacy system refuses is
 * dead-lettered; the Medplum feed's next pass re-reads its overlap (`overlapMs` before its
 * cursor), sees the same version again, which is no echo (it was never synced), and queues the
 * record again: refused again the same way, it opened a second open letter for the one failure.
 */
import type { Patient } from '@medplum/fhirtypes';
import { afterEach, describe, expect, it } from 'vitest';
import { RejectedError, type LegacyAdapter } from '../../src/index.ts';
import { MemoryLegacyAdapter } from '../../src/testing/index.ts';
import type { PatientRow } from '../harness/patient-fixture.ts';
import { medplumCopies, north, startWriterFixture, type WriterFixture } from '../harness/writer-fixture.ts';

/** A legacy system whose column check refuses the last name `Refused`. */
function refusing(real: MemoryLegacyAdapter<PatientRow>): LegacyAdapter<PatientRow> {
  return new Proxy(real, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      if (property !== 'update' && property !== 'create')
        return (value as (...args: unknown[]) => unknown).bind(target);
      return (...args: unknown[]) => {
        const row = args[property === 'update' ? 2 : 1] as PatientRow;
        if (row.last_name === 'Refused')
          return Promise.reject(
            new RejectedError('the legacy system refused the row (a CHECK constraint)', ['last_name'], {
              side: 'legacy',
              resourceType: 'Patient',
              legacyId: row.id,
            }),
          );
        return (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
      };
    },
  });
}

let fixture: WriterFixture<LegacyAdapter<PatientRow>> | undefined;
afterEach(async () => {
  await fixture?.writer.stop();
  await fixture?.close();
  fixture = undefined;
});

describe('a refusal the feed queues again', () => {
  it('is one open dead letter, counting the repeat, not a second letter', async () => {
    fixture = await startWriterFixture<LegacyAdapter<PatientRow>>({
      stage: 'live',
      legacy: refusing(new MemoryLegacyAdapter<PatientRow>()),
      writer: { mirror: 'async', feeds: { unitOf: () => 'north' } },
    });
    const { writer, direct } = fixture;
    await writer.create('Patient', { id: 'p-1', first_name: 'Ada', last_name: 'Lovelace' }, north);
    await writer.drain({ timeoutMs: 5_000 });
    await writer.pollFeeds(); // the writer's own write: an echo

    const [copy] = await medplumCopies(direct, 'p-1');
    await direct.updateResource<Patient>({ ...copy!, name: [{ given: ['Ada'], family: 'Refused' }] });
    expect(await writer.pollFeeds()).toMatchObject({ queued: 1 });
    expect(await writer.drain({ timeoutMs: 5_000 })).toMatchObject({ deadLettered: 1 });

    // The next pass re-reads its overlap: the same version, queued and refused again.
    expect(await writer.pollFeeds()).toMatchObject({ queued: 1 });
    expect(await writer.drain({ timeoutMs: 5_000 })).toMatchObject({ deadLettered: 1 });

    const letters = await writer.deadLetters();
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({
      legacyId: 'p-1',
      target: 'legacy',
      status: 'open',
      repeats: 1,
      reason: { name: 'RejectedError' },
    });
    expect((await fixture.store.outboxCounts({ unit: 'north' })).dead).toBe(1);
  });
});

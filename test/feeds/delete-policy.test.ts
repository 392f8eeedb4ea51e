import { afterEach, describe, expect, it } from 'vitest';
import type { ChangeFeeds } from '../../src/feeds/change-feeds.ts';
import type { Stage } from '../../src/plan/stage.ts';
import type { DeletePolicies } from '../../src/mapping/resource-mapping.ts';
import type { MemoryLegacyAdapter } from '../../src/testing/index.ts';
import { patientMapping, type PatientRow } from '../harness/patient-fixture.ts';
import { medplumCopies, north, startWriterFixture, type WriterFixture } from '../harness/writer-fixture.ts';
import { feedsOver } from './feeds-fixture.ts';

/**
 * A delete made directly in one system, seen by a change feed, in every stage that mirrors:
 * propagated when it was made in the authority, held for review when not (nothing deleted, a
 * `delete-review` event), unless the mapping's policy says otherwise.
 */
/** Creates p-1 in both systems, deletes it in `deletedIn`, polls the feeds and drains. */
async function createThenDelete(
  current: WriterFixture<MemoryLegacyAdapter<PatientRow>>,
  feeds: ChangeFeeds<PatientRow>,
  deletedIn: 'legacy' | 'medplum',
) {
  const created = await current.writer.create(
    'Patient',
    { id: 'p-1', first_name: 'Ada', last_name: 'Lovelace' },
    north,
  );
  await current.writer.drain();
  await feeds.pollOnce();
  await current.writer.drain();
  if (deletedIn === 'legacy') await current.legacy.delete('Patient', 'p-1');
  else await current.direct.deleteResource('Patient', created.medplumId ?? '');
  const report = await feeds.pollOnce();
  await current.writer.drain();
  return { created, report };
}

describe('delete policies', () => {
  let fx: WriterFixture<MemoryLegacyAdapter<PatientRow>> | undefined;
  afterEach(async () => {
    await fx?.close();
    fx = undefined;
  });

  /** Creates p-1 in both systems, deletes it in `deletedIn`, polls the feeds and drains. */
  async function deleteDirectly(stage: Stage, deletedIn: 'legacy' | 'medplum', deletes?: DeletePolicies) {
    const current = await startWriterFixture({ stage });
    fx = current;
    const mapping = deletes === undefined ? patientMapping : { ...patientMapping, deletes };
    const feeds = feedsOver(current, {}, { mapping });
    const { report } = await createThenDelete(current, feeds, deletedIn);
    const again = await feeds.pollOnce();
    return {
      report,
      again,
      legacyRow: await current.legacy.read('Patient', 'p-1'),
      medplumCopies: await medplumCopies(current.direct, 'p-1'),
      reviews: await current.store.listEvents({ type: 'delete-review' }),
      letters: await current.writer.deadLetters(),
      readiness: await current.writer.readiness('north'),
      ignored: await current.store.listEvents({ type: 'delete-ignored' }),
    };
  }

  const authorities: Record<string, 'legacy' | 'medplum'> = {
    'dual-write': 'legacy',
    shadow: 'legacy',
    live: 'medplum',
    rampdown: 'medplum',
  };

  for (const [stage, authority] of Object.entries(authorities) as [Stage, 'legacy' | 'medplum'][]) {
    const other = authority === 'legacy' ? 'medplum' : 'legacy';

    it(`${stage}: a delete made in the authority (${authority}) is propagated`, async () => {
      const outcome = await deleteDirectly(stage, authority);
      expect(outcome.report).toMatchObject({ queued: 1, deletesHeld: 0, errors: 0 });
      expect(outcome.legacyRow).toBeUndefined();
      expect(outcome.medplumCopies).toHaveLength(0);
      expect(outcome.reviews).toEqual([]);
    });

    it(`${stage}: a delete made in ${other} is held for review by default, nothing deleted`, async () => {
      const outcome = await deleteDirectly(stage, other);
      expect(outcome.report).toMatchObject({ queued: 0, deletesHeld: 1, errors: 0 });
      if (other === 'medplum') expect(outcome.legacyRow).toBeDefined();
      else expect(outcome.medplumCopies).toHaveLength(1);
      expect(outcome.reviews).toHaveLength(1);
      expect(outcome.reviews[0]).toMatchObject({
        resourceType: 'Patient',
        legacyId: 'p-1',
        unit: 'north',
        data: { deletedIn: other, authority, policy: 'review' },
      });
      // Reported once, not on every pass.
      expect(outcome.again).toMatchObject({ queued: 0, deletesHeld: 0 });
      // An open dead letter towards the copy kept, which readiness counts.
      expect(outcome.letters).toHaveLength(1);
      expect(outcome.letters[0]).toMatchObject({
        resourceType: 'Patient',
        legacyId: 'p-1',
        unit: 'north',
        target: authority === 'legacy' ? 'legacy' : 'medplum',
        kind: 'delete',
        status: 'open',
        reason: { name: 'DeleteReviewError', side: other },
      });
      expect(outcome.reviews[0]?.data?.deadLetterId).toBe(outcome.letters[0]?.id);
      expect(outcome.readiness.figures.deadLetters).toBe(1);
      expect(outcome.readiness.failing.map((failing) => failing.gate)).toContain('maxDeadLetters');
    });
  }

  it('propagates a delete from the non-authoritative side when the mapping says so', async () => {
    const outcome = await deleteDirectly('dual-write', 'medplum', { fromMedplum: 'propagate' });
    expect(outcome.report).toMatchObject({ queued: 1, deletesHeld: 0 });
    expect(outcome.legacyRow).toBeUndefined();
  });

  it('ignores a delete with a delete-ignored event when the mapping says so', async () => {
    const outcome = await deleteDirectly('live', 'legacy', { fromLegacy: 'ignore' });
    expect(outcome.report).toMatchObject({ queued: 0, deletesHeld: 1 });
    expect(outcome.medplumCopies).toHaveLength(1);
    expect(outcome.reviews).toEqual([]);
    expect(outcome.ignored[0]).toMatchObject({
      legacyId: 'p-1',
      data: { policy: 'ignore', deletedIn: 'legacy' },
    });
  });

  it('records an ignored delete as an event only, with no dead letter', async () => {
    const outcome = await deleteDirectly('live', 'legacy', { fromLegacy: 'ignore' });
    expect(outcome.letters).toEqual([]);
  });

  it('holds a delete made in the authority when the mapping says review', async () => {
    const outcome = await deleteDirectly('dual-write', 'legacy', { fromLegacy: 'review' });
    expect(outcome.report).toMatchObject({ queued: 0, deletesHeld: 1 });
    expect(outcome.medplumCopies).toHaveLength(1);
  });
});

describe('delete policy options', () => {
  it('refuses a policy that is not propagate, review or ignore, naming the mapping and direction', async () => {
    await expect(
      startWriterFixture({
        writer: { mappings: [{ ...patientMapping, deletes: { fromMedplum: 'delete' as 'review' } }] },
      }),
    ).rejects.toMatchObject({ name: 'ConfigurationError', field: 'mappings[0].deletes.fromMedplum' });
  });
});

/**
 * A held delete is a dead letter an operator decides: apply the delete or keep the record, in
 * either direction; until then the copy kept is untouched and the record's next write mirrors.
 */
describe('deciding a delete held for review', () => {
  let fx: WriterFixture<MemoryLegacyAdapter<PatientRow>> | undefined;
  afterEach(async () => {
    await fx?.close();
    fx = undefined;
  });

  /** p-1 in both systems, then deleted directly in the system that is not the authority. */
  async function held(stage: 'dual-write' | 'live') {
    const current = await startWriterFixture({ stage });
    fx = current;
    const feeds = feedsOver(current);
    const { created } = await createThenDelete(current, feeds, stage === 'dual-write' ? 'medplum' : 'legacy');
    const [letter] = await current.writer.deadLetters();
    if (letter === undefined) throw new Error('no dead letter for the held delete');
    return { fx: current, feeds, letter, medplumId: created.medplumId };
  }

  it('dual-write: resolving with the side that deleted (medplum) deletes the legacy row', async () => {
    const { fx: current, letter } = await held('dual-write');
    expect(await current.legacy.read('Patient', 'p-1')).toBeDefined();
    expect(await current.writer.resolveDeadLetter(letter.id, { winner: 'medplum' }, 'confirmed')).toBe(true);
    expect(await current.legacy.read('Patient', 'p-1')).toBeUndefined();
    expect(await current.writer.linkOf('Patient', 'p-1')).toBeUndefined();
    expect(await current.writer.deadLetters()).toEqual([]);
    expect((await current.writer.readiness('north')).figures.deadLetters).toBe(0);
  });

  it('dual-write: resolving with the authority (legacy) keeps the row and restores a Medplum copy', async () => {
    const { fx: current, letter, medplumId } = await held('dual-write');
    await current.writer.resolveDeadLetter(letter.id, { winner: 'legacy' }, 'deleted by mistake');
    const copies = await medplumCopies(current.direct, 'p-1');
    expect(copies).toHaveLength(1);
    expect(copies[0]?.id).not.toBe(medplumId);
    expect(copies[0]?.name?.[0]?.family).toBe('Lovelace');
    expect((await current.writer.linkOf('Patient', 'p-1'))?.medplumId).toBe(copies[0]?.id);
    expect(await current.legacy.read('Patient', 'p-1')).toBeDefined();
  });

  it('dual-write: retrying the letter applies the delete through the drainer', async () => {
    const { fx: current, letter } = await held('dual-write');
    expect(await current.writer.retryDeadLetter(letter.id)).toBe(true);
    await current.writer.drain();
    expect(await current.legacy.read('Patient', 'p-1')).toBeUndefined();
    expect(await current.writer.deadLetters()).toEqual([]);
  });

  it('live: resolving with the side that deleted (legacy) deletes the Medplum copy', async () => {
    const { fx: current, letter } = await held('live');
    expect(await medplumCopies(current.direct, 'p-1')).toHaveLength(1);
    await current.writer.resolveDeadLetter(letter.id, { winner: 'legacy' }, 'confirmed');
    expect(await medplumCopies(current.direct, 'p-1')).toHaveLength(0);
  });

  it('live: resolving with the authority (medplum) keeps the copy and restores the legacy row', async () => {
    const { fx: current, letter, medplumId } = await held('live');
    await current.writer.resolveDeadLetter(letter.id, { winner: 'medplum' }, 'deleted by mistake');
    expect((await current.legacy.read('Patient', 'p-1'))?.row).toMatchObject({ last_name: 'Lovelace' });
    expect((await medplumCopies(current.direct, 'p-1')).map((copy) => copy.id)).toEqual([medplumId]);
  });

  it("dual-write: the legacy row's next write, with the delete held, mirrors as a new Medplum copy", async () => {
    const { fx: current, feeds, medplumId } = await held('dual-write');
    const result = await current.writer.update(
      'Patient',
      'p-1',
      { id: 'p-1', first_name: 'Ada', last_name: 'King' },
      north,
    );
    expect(result.mirror).toBe('applied');
    const copies = await medplumCopies(current.direct, 'p-1');
    expect(copies).toHaveLength(1);
    expect(copies[0]?.id).not.toBe(medplumId);
    expect(copies[0]?.name?.[0]?.family).toBe('King');
    // The feeds see the new copy as the writer's own mirror, and hold nothing again.
    expect(await feeds.pollOnce()).toMatchObject({ queued: 0, deletesHeld: 0, errors: 0 });
  });
});

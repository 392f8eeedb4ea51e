import { afterEach, describe, expect, it } from 'vitest';
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
    const again = await feeds.pollOnce();
    return {
      report,
      again,
      legacyRow: await current.legacy.read('Patient', 'p-1'),
      medplumCopies: await medplumCopies(current.direct, 'p-1'),
      reviews: await current.store.listEvents({ type: 'delete-review' }),
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

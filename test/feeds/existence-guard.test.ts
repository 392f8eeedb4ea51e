/**
 * The existence check's guard. A writer pointed at the wrong Medplum (another base URL or
 * project, an empty database) finds none of its linked resources there, and took every one for
 * deleted in Medplum: in `live` each became a legacy delete, in `dual-write` a delete review.
 * When more than `existenceCheckMaxMissingShare` of the linked resources checked in one pass
 * (and more than `existenceCheckMinMissing`) are missing, the check journals nothing and says so.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigurationError, DualWriter, createMedplumClient, type DualWriteEvent } from '../../src/index.ts';
import { MedplumSide } from '../../src/sides/medplum-side.ts';
import {
  startFhirTestServer,
  type FhirTestServer,
  type MemoryLegacyAdapter,
} from '../../src/testing/index.ts';
import { patientMapping, type PatientRow } from '../harness/patient-fixture.ts';
import { north, startWriterFixture, type Ctx, type WriterFixture } from '../harness/writer-fixture.ts';
import { feedsOver } from './feeds-fixture.ts';

const RECORDS = 12;

describe('the existence check stops when too many linked resources are missing', () => {
  let fx: WriterFixture<MemoryLegacyAdapter<PatientRow>>;
  let empty: FhirTestServer | undefined;
  beforeEach(async () => {
    fx = await startWriterFixture({ stage: 'live' });
  });
  afterEach(async () => {
    await fx.close();
    await empty?.close();
    empty = undefined;
  });

  async function linked(count: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 1; i <= count; i += 1) {
      const created = await fx.writer.create(
        'Patient',
        { id: `p-${String(i)}`, first_name: 'A', last_name: `F${String(i)}` },
        north,
      );
      ids.push(created.medplumId ?? '');
    }
    return ids;
  }

  it('a writer pointed at an empty Medplum deletes nothing, records the halt and tells its sinks', async () => {
    await linked(RECORDS);
    empty = await startFhirTestServer();
    const events: DualWriteEvent[] = [];
    // Another instance of the service, over the same journal and legacy system, with the wrong
    // Medplum base URL.
    const misconfigured = new DualWriter<Ctx, PatientRow>({
      legacy: fx.legacy,
      medplum: createMedplumClient({ baseUrl: empty.baseUrl }),
      mappings: [patientMapping],
      plan: fx.plan,
      store: fx.store,
      feeds: { unitOf: () => 'north', existenceCheckIntervalMs: 0 },
      onEvent: (event) => events.push(event),
    });
    const report = await misconfigured.pollFeeds();
    expect(report).toMatchObject({ queued: 0, deletesHeld: 0, errors: 1 });
    expect(report.failures).toMatchObject([{ feed: 'existence:Patient', name: 'ExistenceCheckHalted' }]);
    expect(report.failures[0]?.message).toContain(`${String(RECORDS)} of ${String(RECORDS)} linked Patient`);
    expect(events).toContainEqual({
      type: 'existence-check-halted',
      resourceType: 'Patient',
      checked: RECORDS,
      missing: RECORDS,
      maxMissingShare: 0.1,
      minMissing: 10,
    });
    expect(await fx.store.listEvents({ type: 'existence-check-halted' })).toMatchObject([
      { resourceType: 'Patient', data: { checked: RECORDS, missing: RECORDS } },
    ]);
    await misconfigured.drain({ timeoutMs: 5_000 });
    await fx.writer.drain({ timeoutMs: 5_000 });
    for (let i = 1; i <= RECORDS; i += 1)
      expect(await fx.legacy.read('Patient', `p-${String(i)}`)).toBeDefined();
    expect(await fx.writer.deadLetters()).toEqual([]);
    expect(await fx.store.listOutbox()).toEqual([]);
  });

  it('real deletes above the share halt too, until the operator raises the share for a pass', async () => {
    const ids = await linked(RECORDS);
    const gone = ids.slice(0, 11);
    for (const id of gone) await fx.direct.deleteResource('Patient', id);
    const guarded = feedsOver(fx, { sides: ['medplum'] });
    expect(await guarded.pollOnce()).toMatchObject({ queued: 0, errors: 1 });
    const confirmed = feedsOver(fx, { sides: ['medplum'], existenceCheckMaxMissingShare: 1 });
    expect(await confirmed.pollOnce()).toMatchObject({ queued: 11, errors: 0 });
    await fx.writer.drain({ timeoutMs: 5_000 });
    expect(await fx.legacy.read('Patient', 'p-1')).toBeUndefined();
    expect(await fx.legacy.read('Patient', `p-${String(RECORDS)}`)).toBeDefined();
  });

  it('as many missing as the minimum, or a share at most the limit, still journals the deletes', async () => {
    const ids = await linked(RECORDS);
    for (const id of ids.slice(0, 2)) await fx.direct.deleteResource('Patient', id);
    // 2 of 12 missing (17%, over the 10% share) but not more than the minimum: deletes.
    expect(await feedsOver(fx, { sides: ['medplum'] }).pollOnce()).toMatchObject({ queued: 2, errors: 0 });
    await fx.writer.drain({ timeoutMs: 5_000 });
    // A minimum of 0: 1 of the 10 linked left (10%) is not more than the share.
    await fx.direct.deleteResource('Patient', ids[2] ?? '');
    expect(await feedsOver(fx, { sides: ['medplum'], existenceCheckMinMissing: 0 }).pollOnce()).toMatchObject(
      { queued: 1, errors: 0 },
    );
  });

  it('refuses a share outside 0 to 1 and a minimum that is not a whole number, naming the option', () => {
    const medplum = new MedplumSide(fx.medplum);
    for (const options of [
      { existenceCheckMaxMissingShare: 1.5 },
      { existenceCheckMaxMissingShare: -0.1 },
      { existenceCheckMaxMissingShare: Number.NaN },
      { existenceCheckMinMissing: 2.5 },
      { existenceCheckMinMissing: -1 },
    ]) {
      const field = Object.keys(options)[0] ?? '';
      expect(() => feedsOver(fx, options, { medplum })).toThrow(ConfigurationError);
      expect(() => feedsOver(fx, options, { medplum })).toThrow(field);
    }
  });
});

import type { Patient } from '@medplum/fhirtypes';
import { ChangeFeeds } from '../../src/feeds/change-feeds.ts';
import type { ChangeFeedsOptions } from '../../src/feeds/change-feeds-options.ts';
import type { ChangeFeedsDeps, FeedRecord } from '../../src/feeds/inbound-change.ts';
import type { LegacyAdapter, ResourceMapping, SyncStore } from '../../src/index.ts';
import { MedplumSide } from '../../src/sides/medplum-side.ts';
import { PATIENT_SYSTEM, patientMapping, type PatientRow } from '../harness/patient-fixture.ts';
import type { WriterFixture } from '../harness/writer-fixture.ts';

/** The suite's mapping, able to allocate legacy ids for patients created in Medplum. */
export function allocatingMapping(): ResourceMapping<PatientRow, Patient> {
  let next = 0;
  return { ...patientMapping, newLegacyId: () => `mp-${(next += 1)}` };
}

/**
 * Change feeds over a writer fixture's sides, store and plan (the writer's drainer applies what
 * they journal). Every record belongs to unit `north` unless `unitOf` says otherwise.
 */
export function feedsOver<A extends LegacyAdapter<PatientRow>>(
  fixture: Pick<WriterFixture<A>, 'legacy' | 'medplum' | 'plan'> & { readonly store: SyncStore },
  options: ChangeFeedsOptions = {},
  overrides: Partial<ChangeFeedsDeps<PatientRow>> & {
    mapping?: ResourceMapping<PatientRow, Patient>;
  } = {},
): ChangeFeeds<PatientRow> {
  const { mapping = patientMapping, ...deps } = overrides;
  return new ChangeFeeds<PatientRow>(
    {
      legacy: fixture.legacy,
      medplum: new MedplumSide(fixture.medplum),
      store: fixture.store,
      mappings: new Map<string, ResourceMapping<PatientRow>>([['Patient', mapping]]),
      routeOf: (unit, type) => fixture.plan.routeOf(unit, type),
      unitOf: (_record: FeedRecord<PatientRow>) => 'north',
      notify: () => undefined,
      ...deps,
    },
    // One owner for every feed a test builds: a feed built again stands for the same instance
    // restarted, which takes its own lease back at once.
    { existenceCheckIntervalMs: 0, owner: 'test-instance', ...options },
  );
}

/** A Patient as the suite's mapping writes it, for direct writes to Medplum. */
export function patient(given: string, family: string, legacyId?: string): Patient {
  return {
    resourceType: 'Patient',
    name: [{ given: [given], family }],
    ...(legacyId === undefined ? {} : { identifier: [{ system: PATIENT_SYSTEM, value: legacyId }] }),
  };
}

import type { Patient } from '@medplum/fhirtypes';
import { afterEach, describe, expect, it } from 'vitest';
import { PostgresStore, type SyncStore } from '../../src/index.ts';
import { MemoryStore } from '../../src/journal/memory-store.ts';
import type { MemoryLegacyAdapter } from '../../src/testing/index.ts';
import { PATIENT_SYSTEM, type PatientRow } from '../harness/patient-fixture.ts';
import { medplumCopies, north, startWriterFixture, type WriterFixture } from '../harness/writer-fixture.ts';

/*
 * Issue 10 §1: a newer outbox entry of a record must never erase what an older pending one
 * carried (the caller's FHIR resource), whoever queued it: a row-shaped write or a change feed.
 */

let fixture: WriterFixture<MemoryLegacyAdapter<PatientRow>> | undefined;
let store: SyncStore | undefined;
afterEach(async () => {
  await fixture?.writer.stop();
  await fixture?.close();
  if (store instanceof PostgresStore) await store.close();
  fixture = undefined;
  store = undefined;
});

const phone = { system: 'phone', value: '+44 20 7946 0000' } as const;

const stores: readonly [string, () => Promise<SyncStore>][] = [
  ['MemoryStore', () => Promise.resolve(new MemoryStore())],
  ['PostgresStore (PGlite)', () => PostgresStore.openEmbedded()],
];

// Liveness limits, not timings: opening PGlite and draining took 39 s at load 15-19 (CI, 30 s limit).
describe.each(stores)(
  'coalesced mirrors keep every field the other side holds (%s)',
  { timeout: 180_000 },
  (_name, open) => {
    async function start(feeds: boolean): Promise<WriterFixture<MemoryLegacyAdapter<PatientRow>>> {
      store = await open();
      fixture = await startWriterFixture({
        writer: {
          store,
          mirror: 'async',
          drainer: { pollIntervalMs: 5, backoff: { minMs: 5, maxMs: 20 } },
          ...(feeds ? { feeds: { unitOf: () => 'north', sides: ['legacy'] } } : {}),
        },
      });
      return fixture;
    }

    const patient = (family: string, extra: Partial<Patient> = {}): Patient => ({
      resourceType: 'Patient',
      identifier: [{ system: PATIENT_SYSTEM, value: 'p-1' }],
      name: [{ given: ['Ada'], family }],
      ...extra,
    });

    it('a row-shaped update queued behind a FHIR-shaped one keeps the telecom it added (seen a)', async () => {
      const { writer, direct } = await start(false);
      await writer.createResource(patient('Lovelace'), north);
      await writer.drain({ timeoutMs: 60_000 });
      await writer.updateResource({ ...patient('Lovelace'), telecom: [phone] }, north);
      await writer.update('Patient', 'p-1', { id: 'p-1', first_name: 'Ada', last_name: 'King' }, north);
      expect(await writer.drain({ timeoutMs: 60_000 })).toMatchObject({ deadLettered: 0, timedOut: false });
      const [copy] = await medplumCopies(direct, 'p-1');
      expect(copy?.name?.[0]?.family).toBe('King');
      expect(copy?.telecom).toEqual([phone]);
    });

    it("the legacy feed's pass over the writer's own pending write keeps the telecom it added (seen b)", async () => {
      const { writer, direct } = await start(true);
      await writer.createResource(patient('Lovelace'), north);
      await writer.drain({ timeoutMs: 60_000 });
      await writer.pollFeeds();
      await writer.updateResource({ ...patient('King'), telecom: [phone] }, north);
      expect((await writer.pollFeeds()).errors).toBe(0);
      expect(await writer.drain({ timeoutMs: 60_000 })).toMatchObject({ deadLettered: 0, timedOut: false });
      const [copy] = await medplumCopies(direct, 'p-1');
      expect(copy?.name?.[0]?.family).toBe('King');
      expect(copy?.telecom).toEqual([phone]);
    });
  },
);

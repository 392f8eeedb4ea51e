import type { Patient } from '@medplum/fhirtypes';
import { afterEach, describe, expect, it } from 'vitest';
import { MirrorError } from '../../src/index.ts';
import { legacyIdOf } from '../../src/mapping/mapped-record.ts';
import type { MemoryLegacyAdapter } from '../../src/testing/index.ts';
import { PATIENT_SYSTEM, type PatientRow } from '../harness/patient-fixture.ts';
import { north, startWriterFixture, type WriterFixture } from '../harness/writer-fixture.ts';

let fixture: WriterFixture<MemoryLegacyAdapter<PatientRow>> | undefined;
afterEach(async () => {
  await fixture?.writer.stop();
  await fixture?.close();
  fixture = undefined;
});

/**
 * Promise 6, reversible: a unit in `live` steps back to `shadow` in the middle of a stream of
 * writes (creates and updates, four at a time, Medplum failing a share of requests). Writes
 * before the step went to Medplum first, writes after it to the legacy system first. Afterwards
 * nothing written in either system is missing from the other, and the copies agree.
 */
describe('stepping back a stage mid-stream', () => {
  for (const mirror of ['async', 'sync'] as const) {
    it(`loses nothing when a unit steps back from live to shadow (${mirror} mirrors)`, async () => {
      fixture = await startWriterFixture({
        stage: 'live',
        writer: {
          mirror,
          retry: { retries: 2, minTimeoutMs: 1, maxTimeoutMs: 5 },
          drainer: { backoff: { minMs: 5, maxMs: 20 } },
        },
      });
      const { writer, plan, legacy, direct, server } = fixture;
      writer.start();
      server.faults.failShare(0.1, 503);
      const ids: string[] = [];
      const last = new Map<string, string>();
      const writes = 240;
      let next = 0;
      let stepped = false;
      const worker = async () => {
        while (next < writes) {
          const n = next++;
          if (n === writes / 2 && !stepped) {
            stepped = true;
            await plan.set('north', 'shadow', { reason: 'rollback drill', by: 'test' });
          }
          const update = ids.length > 0 && n % 3 !== 0;
          const id = update ? ids[n % ids.length]! : `p-${String(n)}`;
          const row: PatientRow = { id, first_name: 'Ada', last_name: `Write-${String(n)}` };
          try {
            if (update) await writer.update('Patient', id, row, north);
            else {
              await writer.create('Patient', row, north);
              ids.push(id);
            }
            last.set(id, row.last_name);
          } catch (err) {
            // A MirrorError says the authority took the write (its mirror is a dead letter, which
            // the end state below would show); any other failure wrote nothing.
            if (err instanceof MirrorError) last.set(id, row.last_name);
          }
        }
      };
      await Promise.all([worker(), worker(), worker(), worker()]);
      expect(plan.stageOf('north', 'Patient')).toBe('shadow');
      server.faults.clear();
      await writer.drain({ timeoutMs: 30_000 });

      expect(await writer.outbox()).toMatchObject({ pending: 0, leased: 0, dead: 0 });
      const patients = await direct.searchResources('Patient', { _count: '1000' }, { cache: 'no-cache' });
      const byLegacyId = new Map<string, Patient>();
      for (const patient of patients) {
        const legacyId = legacyIdOf(patient, PATIENT_SYSTEM);
        expect(legacyId).toBeDefined();
        expect(byLegacyId.has(legacyId!)).toBe(false); // one copy per record
        byLegacyId.set(legacyId!, patient);
      }
      // Nothing in Medplum is missing from the legacy system, and the reverse.
      expect([...byLegacyId.keys()].sort()).toEqual([...last.keys()].sort());
      for (const [id, family] of last) {
        const row = await legacy.read('Patient', id);
        expect(row?.row.last_name).toBe(family);
        expect(byLegacyId.get(id)?.name?.[0]?.family).toBe(family);
      }
      expect(ids.length).toBeGreaterThan(40);
    });
  }
});

import type { Patient } from '@medplum/fhirtypes';
import { afterEach, describe, expect, it } from 'vitest';
import { MirrorError } from '../../src/index.ts';
import { legacyIdOf } from '../../src/mapping/mapped-record.ts';
import type { MemoryLegacyAdapter } from '../../src/testing/index.ts';
import { PATIENT_SYSTEM, type PatientRow } from '../harness/patient-fixture.ts';
import { medplumCopies, north, startWriterFixture, type WriterFixture } from '../harness/writer-fixture.ts';

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

/**
 * The same promise where it is hardest: every write on one record, four at a time, a step back
 * from live to shadow halfway, Medplum failing a share of requests. Live-era writes owe a mirror
 * to the legacy system while shadow-era writes land there first; a mirror requeued by a newer
 * write must leave its link, or the next attempt takes the authority's newer row for an orphan
 * of its own and writes the live-era state over it (before the fix: 14–18 rounds of 25 ended
 * with both sides at the last live-era write).
 */
describe('one record written through a step back', () => {
  it('ends with the last acknowledged write on both sides, round after round', async () => {
    for (let round = 0; round < 6; round++) {
      fixture = await startWriterFixture({
        stage: 'live',
        writer: {
          mirror: 'async',
          retry: { retries: 2, minTimeoutMs: 1, maxTimeoutMs: 5 },
          drainer: { pollIntervalMs: 5, backoff: { minMs: 5, maxMs: 20 } },
        },
      });
      const { writer, plan, legacy, direct, server } = fixture;
      await writer.create('Patient', { id: 'p1', first_name: 'Ada', last_name: 'W0' }, north);
      writer.start();
      server.faults.failShare(0.1, 503);
      let last = 'W0';
      let next = 1;
      const writes = 60;
      const worker = async () => {
        while (next < writes) {
          const n = next++;
          if (n === writes / 2) await plan.set('north', 'shadow', { reason: 'rollback drill', by: 'test' });
          const name = `W${String(n)}`;
          try {
            await writer.update('Patient', 'p1', { id: 'p1', first_name: 'Ada', last_name: name }, north);
            last = name;
          } catch (err) {
            // The authority took a write whose mirror failed for good: it counts.
            if (err instanceof MirrorError) last = name;
          }
        }
      };
      await Promise.all([worker(), worker(), worker(), worker()]);
      server.faults.clear();
      await writer.drain({ timeoutMs: 20_000 });
      const row = await legacy.read('Patient', 'p1');
      const [copy] = await medplumCopies(direct, 'p1');
      expect({ round, legacy: row?.row.last_name, medplum: copy?.name?.[0]?.family }).toEqual({
        round,
        legacy: last,
        medplum: last,
      });
      await writer.stop();
      await fixture.close();
      fixture = undefined;
    }
  });

  it('a mirror queued in live does not overwrite, unseen, what the authority wrote after the step', async () => {
    fixture = await startWriterFixture({ stage: 'live', writer: { mirror: 'async' } });
    const { writer, plan, legacy, direct, events } = fixture;
    // Live: Medplum first; the legacy system is owed the record (no link yet).
    await writer.create('Patient', { id: 'p1', first_name: 'Ada', last_name: 'Live' }, north);
    await plan.set('north', 'shadow', { reason: 'rollback drill', by: 'test' });
    // Shadow: the legacy system is the authority and takes a write of its own first.
    await writer.create('Patient', { id: 'p1', first_name: 'Ada', last_name: 'Shadow' }, north);
    await writer.drain({ timeoutMs: 10_000 });
    // A disagreement, seen and decided for the authority (the default resolver).
    expect(events.filter((event) => event.type === 'conflict')).toHaveLength(1);
    expect((await legacy.read('Patient', 'p1'))?.row.last_name).toBe('Shadow');
    expect((await medplumCopies(direct, 'p1')).map((p) => p.name?.[0]?.family)).toEqual(['Shadow']);
  });
});

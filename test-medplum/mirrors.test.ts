import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConflictError, MemoryStore } from '../src/index.ts';
import { north, notRun, startRealFixture, type RealFixture } from './real-medplum.ts';

describe.skipIf(notRun !== undefined)('mirrors against a real Medplum', () => {
  let fx: RealFixture;
  afterEach(async () => {
    await fx.close();
  });

  describe('in dual-write (legacy is the authority)', () => {
    beforeEach(async () => {
      fx = await startRealFixture({ stage: 'dual-write' });
    });

    it('mirrors a create, an update and a delete to Medplum', async () => {
      const created = await fx.writer.create(
        'Patient',
        { id: 'p-1', first_name: 'Ada', last_name: 'Byron' },
        north,
      );
      const [copy] = await fx.copies('p-1');
      expect(copy?.id).toBe(created.medplumId);
      expect(copy?.name?.[0]).toMatchObject({ given: ['Ada'], family: 'Byron' });

      await fx.writer.update('Patient', 'p-1', { first_name: 'Ada', last_name: 'Lovelace' }, north);
      expect((await fx.copies('p-1'))[0]?.name?.[0]?.family).toBe('Lovelace');

      await fx.writer.delete('Patient', 'p-1', north);
      expect(await fx.copies('p-1')).toHaveLength(0);
      expect(await fx.legacy.read('Patient', 'p-1')).toBeUndefined();
    });

    it('drains queued mirrors, bundled, to exactly one copy each', async () => {
      const writer = fx.another({ mirror: 'async' });
      const ids = Array.from({ length: 60 }, (_, i) => `q-${i}`);
      for (const id of ids) await writer.create('Patient', { id, first_name: 'Q', last_name: id }, north);
      const report = await writer.drain({ timeoutMs: 60_000 });
      expect(report).toMatchObject({ applied: 60, deadLettered: 0, timedOut: false });
      const found = await fx.direct.searchResources(
        'Patient',
        { identifier: `${fx.mapping.identifierSystem}|`, _count: '200' },
        { cache: 'no-cache' },
      );
      const values = found.flatMap((p) => p.identifier?.map((i) => i.value) ?? []);
      expect(values.sort()).toEqual([...ids].sort());
    });

    it('a replayed create and creates racing from several writers leave one copy', async () => {
      const row = { id: 'p-2', first_name: 'Grace', last_name: 'Hopper' };
      const first = await fx.writer.create('Patient', row, north);
      const replay = await fx.writer.create('Patient', row, north);
      expect(replay.medplumId).toBe(first.medplumId);
      expect(await fx.copies('p-2')).toHaveLength(1);

      const writers = Array.from({ length: 6 }, () => fx.another());
      const racing = { id: 'p-3', first_name: 'Alan', last_name: 'Turing' };
      const results = await Promise.all(writers.map((w) => w.create('Patient', racing, north)));
      // One writer mirrors it; the others find its intent and leave the mirror to the journal.
      await fx.writer.drain({ timeoutMs: 30_000 });
      const copies = await fx.copies('p-3');
      expect(copies).toHaveLength(1);
      for (const { medplumId } of results) expect([undefined, copies[0]?.id]).toContain(medplumId);
    });

    it('conditional creates racing from writers with journals of their own leave one copy and no conflict', async () => {
      // Writers that share no journal (two services) each send a conditional create
      // (If-None-Exist) for the same record. Medplum may answer such a race with a transient
      // 409 (details code 40001), which must be retried, never reported as a conflict.
      // Measured on this server (5.0.10): 0 of 320 conditional creates racing 16 at a time
      // answered 409 (it serialises them), while 27 of 80 plain PUTs of one resource racing 8
      // at a time did; the library's updates carry If-Match, so those answer 412 instead. The
      // 40001 retry itself is also tested against the stand-in (test/dual-writer/retries).
      let transient = 0;
      for (let round = 1; round <= 4; round += 1) {
        const before = fx.events.length;
        const writers = Array.from({ length: 8 }, () => fx.another({ store: new MemoryStore() }));
        const row = { id: `race-${round}`, first_name: 'R', last_name: `Round ${round}` };
        const results = await Promise.allSettled(writers.map((w) => w.create('Patient', row, north)));
        expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
        const copies = await fx.copies(row.id);
        expect(copies).toHaveLength(1);
        for (const result of results)
          if (result.status === 'fulfilled') expect(result.value.medplumId).toBe(copies[0]?.id);
        const events = fx.events.slice(before);
        transient += events.filter((e) => e.type === 'retry' && e.status === 409).length;
        expect(events.filter((e) => e.type === 'conflict' || e.type === 'mirror-failed')).toEqual([]);
      }
      console.log(`conditional creates racing: ${transient} transient 409s retried`);
    });
  });

  describe('in live (Medplum is the authority)', () => {
    beforeEach(async () => {
      fx = await startRealFixture({ stage: 'live' });
    });

    it('mirrors a create, an update and a delete to the legacy system', async () => {
      const created = await fx.writer.createResource(
        {
          resourceType: 'Patient',
          identifier: [{ system: fx.mapping.identifierSystem, value: 'p-10' }],
          name: [{ given: ['Mary'], family: 'Somerville' }],
        },
        north,
      );
      expect(created.medplumId).toBeDefined();
      expect(await fx.legacy.read('Patient', 'p-10')).toMatchObject({
        row: { first_name: 'Mary', last_name: 'Somerville' },
      });

      const [stored] = await fx.copies('p-10');
      await fx.writer.updateResource({ ...stored!, name: [{ given: ['Mary'], family: 'Fairfax' }] }, north);
      expect(await fx.legacy.read('Patient', 'p-10')).toMatchObject({ row: { last_name: 'Fairfax' } });

      await fx.writer.delete('Patient', 'p-10', north);
      expect(await fx.legacy.read('Patient', 'p-10')).toBeUndefined();
      expect(await fx.copies('p-10')).toHaveLength(0);
    });

    it('an update against a stale version is a ConflictError with status 412, and changes nothing', async () => {
      await fx.writer.createResource(
        {
          resourceType: 'Patient',
          identifier: [{ system: fx.mapping.identifierSystem, value: 'p-11' }],
          name: [{ given: ['Emmy'], family: 'Noether' }],
        },
        north,
      );
      const [stored] = await fx.copies('p-11');
      const staleVersion = stored!.meta!.versionId!;
      // Someone else changes it in the Medplum app meanwhile.
      await fx.direct.updateResource({ ...stored!, birthDate: '1882-03-23' });
      const error = await fx.writer
        .updateResource({ ...stored!, name: [{ given: ['Amalie'], family: 'Noether' }] }, north, {
          expectedVersion: staleVersion,
        })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConflictError);
      expect((error as ConflictError).status).toBe(412);
      const [after] = await fx.copies('p-11');
      expect(after?.name?.[0]?.given).toEqual(['Emmy']);
      expect(after?.birthDate).toBe('1882-03-23');
    });
  });
});

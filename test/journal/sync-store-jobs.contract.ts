import { describe, expect, it } from 'vitest';
import type { JobPageLease, JobSpec, SeenCopy } from '../../src/journal/job.ts';
import type { SyncStore } from '../../src/journal/sync-store.ts';
import { sleep } from './sync-store.fixture.ts';

const HOUR = 3_600_000;
const SPEC: JobSpec = { kind: 'backfill', resourceType: 'Patient', unit: 'north', direction: 'to-medplum' };

/**
 * The jobs part of the {@link SyncStore} contract (pages leased, ended, completed, taken over,
 * fenced; states), run inside `describeSyncStoreContract`.
 *
 * @param fixture - Holds the current case's store.
 * @example
 * ```ts
 * describeJobsContract(useStore(open));
 * ```
 */
export function describeJobsContract(fixture: { readonly store: SyncStore }): void {
  describe('jobs', () => {
    async function lease(id: string, owner = 'w1', ms = HOUR): Promise<JobPageLease> {
      const taken = await fixture.store.leaseJobPage(id, owner, ms);
      if (taken === undefined) throw new Error('no page granted');
      return taken;
    }

    it('creates a running job with its scope, and reads it back by id and in lists', async () => {
      const job = await fixture.store.createJob({ ...SPEC, sampleSize: 3 });
      expect(job).toMatchObject({
        ...SPEC,
        sampleSize: 3,
        state: 'running',
        cursor: undefined,
        scanComplete: false,
        pages: 0,
        pagesDone: 0,
        counts: {},
        samples: {},
        finishedAt: undefined,
      });
      expect(await fixture.store.getJob(job.id)).toEqual(job);
      const other = await fixture.store.createJob({ ...SPEC, kind: 'reconcile', unit: undefined });
      expect((await fixture.store.listJobs()).map((j) => j.id)).toEqual([other.id, job.id]);
      expect((await fixture.store.listJobs({ kind: 'backfill', unit: 'north' })).map((j) => j.id)).toEqual([
        job.id,
      ]);
      expect(await fixture.store.listJobs({ kind: 'reconcile', unit: 'north' })).toEqual([]);
      expect(await fixture.store.getJob('999999')).toBeUndefined();
    });

    it('grants one page at a time until its end is known, then the next from there', async () => {
      const job = await fixture.store.createJob(SPEC);
      const first = await lease(job.id);
      expect(first).toMatchObject({ page: 1, after: undefined, scanned: false });
      expect(await fixture.store.leaseJobPage(job.id, 'w2', HOUR)).toBeUndefined();
      expect(await fixture.store.endJobPage(first, 'k-100')).toBe('done');
      const second = await lease(job.id, 'w2');
      expect(second).toMatchObject({ page: 2, after: 'k-100', scanned: false, owner: 'w2' });
      expect((await fixture.store.getJob(job.id))?.cursor).toBe('k-100');
    });

    it('adds each completed page’s counts and samples once, and is done after the last page', async () => {
      const job = await fixture.store.createJob({ ...SPEC, sampleSize: 2 });
      const first = await lease(job.id);
      await fixture.store.endJobPage(first, 'k-2');
      const second = await lease(job.id);
      await fixture.store.endJobPage(second, undefined);
      expect(
        await fixture.store.completeJobPage(second, {
          counts: { scanned: 1, created: 1 },
          samples: { created: ['3'] },
        }),
      ).toBe('done');
      expect(await fixture.store.completeJobPage(second, { counts: { scanned: 1 } })).toBe('fenced');
      expect((await fixture.store.getJob(job.id))?.state).toBe('running');
      await fixture.store.completeJobPage(first, {
        counts: { scanned: 2, created: 2 },
        samples: { created: ['1', '2'] },
      });
      const done = await fixture.store.getJob(job.id);
      expect(done).toMatchObject({ state: 'done', scanComplete: true, pages: 2, pagesDone: 2 });
      expect(done?.counts).toEqual({ scanned: 3, created: 3 });
      expect(done?.samples).toEqual({ created: ['3', '1'] });
      expect(done?.finishedAt).toEqual(expect.any(String));
      expect(await fixture.store.leaseJobPage(job.id, 'w1', HOUR)).toBeUndefined();
    });

    it('hands a lapsed page to another worker with a new token, and fences the old holder', async () => {
      const job = await fixture.store.createJob(SPEC);
      const dying = await lease(job.id);
      await fixture.store.endJobPage(dying, 'k-1');
      // Its holder stops renewing: the lease lapses (1 ms, then a wait: time only moves on).
      expect(await fixture.store.renewJobPage(dying, 1)).toBe('done');
      await sleep(20);
      const taken = await lease(job.id, 'w2');
      expect(taken).toMatchObject({ page: 1, after: undefined, scanned: true, owner: 'w2' });
      expect(taken.token).not.toBe(dying.token);
      expect(await fixture.store.completeJobPage(dying, { counts: { scanned: 5 } })).toBe('fenced');
      expect(await fixture.store.renewJobPage(dying, HOUR)).toBe('fenced');
      expect(await fixture.store.completeJobPage(taken, { counts: { scanned: 1 } })).toBe('done');
      expect((await fixture.store.getJob(job.id))?.counts).toEqual({ scanned: 1 });
    });

    it('gives a page whose reader died before its end was known to the next worker, at the same start', async () => {
      const job = await fixture.store.createJob(SPEC);
      const first = await lease(job.id);
      await fixture.store.endJobPage(first, 'k-1');
      await lease(job.id, 'w1', 1);
      await sleep(20);
      const again = await lease(job.id, 'w2');
      expect(again).toMatchObject({ page: 2, after: 'k-1', scanned: false });
    });

    it('grants nothing for a paused or cancelled job, and changes state only from the states given', async () => {
      const job = await fixture.store.createJob(SPEC);
      expect((await fixture.store.setJobState(job.id, 'paused', { from: ['running'] }))?.state).toBe(
        'paused',
      );
      expect(await fixture.store.leaseJobPage(job.id, 'w1', HOUR)).toBeUndefined();
      expect(await fixture.store.setJobState(job.id, 'paused', { from: ['running'] })).toBeUndefined();
      expect((await fixture.store.setJobState(job.id, 'running', { from: ['paused'] }))?.state).toBe(
        'running',
      );
      expect(await fixture.store.leaseJobPage(job.id, 'w1', HOUR)).toBeDefined();
      const cancelled = await fixture.store.setJobState(job.id, 'cancelled', { reason: 'by ops' });
      expect(cancelled).toMatchObject({ state: 'cancelled', reason: 'by ops' });
      expect(cancelled?.finishedAt).toEqual(expect.any(String));
      expect(await fixture.store.setJobState(job.id, 'running')).toBeUndefined();
      expect(await fixture.store.leaseJobPage(job.id, 'w1', HOUR)).toBeUndefined();
    });

    it('keeps two workers on one job from taking the same page', async () => {
      const job = await fixture.store.createJob(SPEC);
      const first = await lease(job.id, 'w1');
      await fixture.store.endJobPage(first, 'k-1');
      const [a, b] = await Promise.all([
        fixture.store.leaseJobPage(job.id, 'w1', HOUR),
        fixture.store.leaseJobPage(job.id, 'w2', HOUR),
      ]);
      expect([a, b].filter((taken) => taken !== undefined)).toHaveLength(1);
    });

    describe('seen copies', () => {
      const seen = (legacyId: string, medplumVersion: string | undefined = '1'): SeenCopy => ({
        legacyId,
        medplumId: `m-${legacyId}`,
        medplumVersion,
        unit: 'north',
      });

      it('keeps one per legacy id and job, the last noted winning, and gives each back once when taken', async () => {
        const job = await fixture.store.createJob({ ...SPEC, kind: 'reconcile' });
        const other = await fixture.store.createJob({ ...SPEC, kind: 'reconcile' });
        await fixture.store.noteSeenCopies(job.id, [seen('a'), seen('b', undefined), seen('a', '2')]);
        await fixture.store.noteSeenCopies(job.id, [seen('c')]);
        await fixture.store.noteSeenCopies(other.id, [seen('a', '9')]);
        const taken = await fixture.store.takeSeenCopies(job.id, ['a', 'b', 'x']);
        expect(Object.fromEntries(taken)).toEqual({ a: seen('a', '2'), b: seen('b', undefined) });
        expect(await fixture.store.takeSeenCopies(job.id, ['a', 'b'])).toEqual(new Map());
        expect(await fixture.store.listSeenCopies(job.id, { limit: 10 })).toEqual([seen('c')]);
        expect(await fixture.store.listSeenCopies(other.id, { limit: 10 })).toEqual([seen('a', '9')]);
        expect(await fixture.store.takeSeenCopies(job.id, [])).toEqual(new Map());
        await fixture.store.noteSeenCopies(job.id, []);
      });

      it('lists what was not taken in legacy-id order, a page after another', async () => {
        const job = await fixture.store.createJob({ ...SPEC, kind: 'reconcile' });
        await fixture.store.noteSeenCopies(
          job.id,
          ['k-3', 'k-1', 'k-5', 'k-2', 'k-4'].map((id) => seen(id)),
        );
        await fixture.store.takeSeenCopies(job.id, ['k-2']);
        const first = await fixture.store.listSeenCopies(job.id, { limit: 2 });
        expect(first.map((copy) => copy.legacyId)).toEqual(['k-1', 'k-3']);
        const second = await fixture.store.listSeenCopies(job.id, { after: 'k-3', limit: 2 });
        expect(second.map((copy) => copy.legacyId)).toEqual(['k-4', 'k-5']);
        expect(await fixture.store.listSeenCopies(job.id, { after: 'k-5', limit: 2 })).toEqual([]);
      });

      it('drops a job’s copies when it is done or cancelled, and keeps them while it failed', async () => {
        const done = await fixture.store.createJob({ ...SPEC, kind: 'reconcile' });
        const cancelled = await fixture.store.createJob({ ...SPEC, kind: 'reconcile' });
        const failed = await fixture.store.createJob({ ...SPEC, kind: 'reconcile' });
        for (const job of [done, cancelled, failed]) await fixture.store.noteSeenCopies(job.id, [seen('a')]);
        const only = await lease(done.id);
        await fixture.store.endJobPage(only, undefined);
        await fixture.store.completeJobPage(only, { counts: { scanned: 1 } });
        expect((await fixture.store.getJob(done.id))?.state).toBe('done');
        await fixture.store.setJobState(cancelled.id, 'cancelled');
        await fixture.store.setJobState(failed.id, 'failed', { reason: 'Error on page 1' });
        expect(await fixture.store.listSeenCopies(done.id, { limit: 10 })).toEqual([]);
        expect(await fixture.store.listSeenCopies(cancelled.id, { limit: 10 })).toEqual([]);
        expect(await fixture.store.listSeenCopies(failed.id, { limit: 10 })).toEqual([seen('a')]);
      });

      it('ignores copies noted for a job that does not exist', async () => {
        await fixture.store.noteSeenCopies('999999', [seen('a')]);
        expect(await fixture.store.listSeenCopies('999999', { limit: 10 })).toEqual([]);
        expect(await fixture.store.takeSeenCopies('not-a-job', ['a'])).toEqual(new Map());
      });
    });
  });
}

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ConfigurationError,
  CutoverPlan,
  DeadLetterNotFoundError,
  InvalidInputError,
  JobNotFoundError,
  Operator,
  StageChangeRefusedError,
  type OutboxError,
  type OutboxIntent,
  type ResourceMapping,
  type SyncStore,
} from '../../src/index.ts';
import { patientMapping, type PatientRow } from '../harness/patient-fixture.ts';
import type { Ctx } from '../harness/writer-fixture.ts';
import { describeEveryStore, intentOf, type OpenSyncStore } from '../journal/sync-store.fixture.ts';

/*
 * The operator API on its own: a store, the mappings and a plan — no DualWriter, nothing
 * started. The journal is filled through the store's own calls, as a running application's
 * writers would have left it. One suite, run on every store.
 */

const HOUR = 3_600_000;
const REJECTED: OutboxError = {
  name: 'RejectedError',
  message: 'Medplum answered 400',
  status: 400,
  side: 'medplum',
};
const UNAVAILABLE: OutboxError = {
  name: 'UnavailableError',
  message: 'Medplum answered 503',
  status: 503,
  side: 'medplum',
};
/** A value that must never leave the operator API: it is only in the letters' record copies. */
const SECRET = 'Lovelace-1815-SECRET';

const observationMapping = {
  ...patientMapping,
  resourceType: 'Observation',
} as unknown as ResourceMapping<PatientRow>;
const mappings = [patientMapping, observationMapping] as ResourceMapping<PatientRow>[];

function planOf(): CutoverPlan<Ctx> {
  return new CutoverPlan<Ctx>({
    default: 'legacy-only',
    units: {
      north: 'dual-write',
      south: { default: 'dual-write', resourceTypes: { Observation: 'legacy-only' } },
    },
    unitOf: (ctx) => ctx.unit,
  });
}

/** Dead-letters one record, its entry keeping a copy of the record (the caller's). */
async function deadLetter(
  store: SyncStore,
  legacyId: string,
  reason: OutboxError,
  intent: Partial<OutboxIntent> = {},
) {
  await store.commit(await store.intend(intentOf(legacyId, { base: { name: SECRET }, ...intent }), HOUR));
  const [lease] = await store.claim('worker-1', 1, HOUR);
  await store.deadLetter(lease!, reason);
}

function describeOperator(name: string, open: OpenSyncStore) {
  describe(`Operator on ${name}`, () => {
    let store: SyncStore;
    let close: () => Promise<void>;
    let operator: Operator<Ctx, PatientRow>;
    beforeEach(async () => {
      ({ store, close } = await open());
      operator = new Operator<Ctx, PatientRow>({ store, mappings, plan: planOf() });
    });
    afterEach(async () => {
      await operator.close();
      await close();
    });

    it('shows every unit’s stages and backlog, the totals and the open jobs, as plain JSON', async () => {
      await deadLetter(store, 'p-1', REJECTED);
      await store.intend(intentOf('p-2'), HOUR);
      await store.intend(intentOf('p-3', { unit: 'east' }), HOUR);
      const job = await store.createJob({
        kind: 'backfill',
        resourceType: 'Patient',
        unit: 'north',
        direction: 'to-medplum',
      });
      const status = await operator.status();
      expect(status.units.map((u) => u.unit)).toEqual(['east', 'north', 'south']);
      expect(status.units[1]).toMatchObject({
        unit: 'north',
        stages: { Patient: 'dual-write', Observation: 'dual-write' },
        pending: 1,
        dead: 1,
      });
      expect(status.units[2]).toMatchObject({
        stages: { Patient: 'dual-write', Observation: 'legacy-only' },
        pending: 0,
        oldestAgeMs: undefined,
      });
      // A unit the plan does not list, but whose mirrors are in the journal, runs at the default.
      expect(status.units[0]).toMatchObject({ unit: 'east', stages: { Patient: 'legacy-only' }, pending: 1 });
      expect(status.totals).toMatchObject({ pending: 2, leased: 0, dead: 1 });
      expect(status.totals.oldestAgeMs).toBeGreaterThanOrEqual(0);
      expect(status.openJobs.map((j) => j.id)).toEqual([job.id]);
      expect(status.plan.revision).toBeGreaterThan(0);
      expect(JSON.parse(JSON.stringify(status))).toEqual(status);
      expect(JSON.stringify(status)).not.toContain(SECRET);
    });

    it('shows which units are paused, since when, by whom and why, in the status', async () => {
      await store.intend(intentOf('p-2'), HOUR);
      const pause = await operator.pauseUnit('north', { by: 'ops:maria', reason: 'legacy maintenance' });
      // A paused unit the plan does not list and the journal holds nothing for is shown too.
      const west = await operator.pauseUnit('west');
      const status = await operator.status();
      expect(status.units.map((u) => [u.unit, u.paused])).toEqual([
        ['north', { since: pause.since, by: 'ops:maria', reason: 'legacy maintenance' }],
        ['south', undefined],
        ['west', { since: west.since, by: undefined, reason: undefined }],
      ]);
      expect(status.units[0]).toMatchObject({ pending: 1 });
      await operator.resumeUnit('north');
      expect((await operator.status()).units.find((u) => u.unit === 'north')?.paused).toBeUndefined();
    });

    it('shows, sets and lists the stored plan, which a second operator over the store follows', async () => {
      expect((await operator.plan()).units.north).toEqual({ default: 'dual-write', resourceTypes: {} });
      const change = await operator.setStage('north', 'shadow', {
        reason: 'two weeks clean',
        by: 'ops:maria',
        force: true,
      });
      expect(change).toMatchObject({ unit: 'north', from: 'dual-write', to: 'shadow', by: 'ops:maria' });
      const other = new Operator<Ctx, PatientRow>({ store, mappings, plan: planOf() });
      try {
        expect((await other.plan()).units.north?.default).toBe('shadow');
        expect(await other.planHistory({ unit: 'north' })).toMatchObject([
          { from: 'dual-write', to: 'shadow', reason: 'two weeks clean' },
        ]);
      } finally {
        await other.close();
      }
      await expect(operator.setStage('north', 'shadow', { resourceType: 'Encounter' })).rejects.toMatchObject(
        {
          name: 'InvalidInputError',
          field: 'resourceType',
        },
      );
      await expect(operator.setStage('north', 'teleport' as never)).rejects.toMatchObject({ field: 'stage' });
      await expect(operator.setStage('south', 'medplum-only')).rejects.toBeInstanceOf(
        StageChangeRefusedError,
      );
    });

    it('knows a unit named __proto__ once the plan holds it, and no unit named toString or constructor', async () => {
      for (const unit of ['toString', 'constructor', '__proto__', 'hasOwnProperty'])
        await expect(operator.outbox({ unit })).rejects.toMatchObject({
          name: 'InvalidInputError',
          field: 'unit',
        });
      await operator.setStage('__proto__', 'dual-write');
      expect(Object.hasOwn((await operator.plan()).units, '__proto__')).toBe(true);
      expect(await operator.outbox({ unit: '__proto__' })).toEqual([]);
      expect((await operator.status()).units.map((u) => u.unit)).toContain('__proto__');
    });

    it('refuses a forward move of a unit that is not ready, from its readiness figures', async () => {
      await deadLetter(store, 'p-1', REJECTED);
      const readiness = await operator.readiness('north');
      expect(readiness).toMatchObject({ unit: 'north', verdict: 'not-ready', figures: { deadLetters: 1 } });
      expect(readiness.failing).toContainEqual(expect.objectContaining({ gate: 'maxDeadLetters' }));
      await expect(operator.setStage('north', 'shadow')).rejects.toBeInstanceOf(StageChangeRefusedError);
      await expect(operator.readiness('')).rejects.toMatchObject({ field: 'unit' });
    });

    it('counts the backlog per unit, type and target with the oldest pending age, and refuses an unknown unit', async () => {
      await store.intend(intentOf('p-1'), HOUR);
      await store.intend(intentOf('o-1', { resourceType: 'Observation' }), HOUR);
      await store.intend(intentOf('p-2', { unit: 'south', target: 'legacy' }), HOUR);
      const lines = await operator.outbox();
      expect(lines.map((l) => [l.unit, l.resourceType, l.target, l.pending])).toEqual([
        ['north', 'Observation', 'medplum', 1],
        ['north', 'Patient', 'medplum', 1],
        ['south', 'Patient', 'legacy', 1],
      ]);
      for (const line of lines) expect(line.oldestAgeMs).toBeGreaterThanOrEqual(0);
      expect(await operator.outbox({ unit: 'north', resourceType: 'Patient' })).toHaveLength(1);
      const unknown = await operator.outbox({ unit: 'nrth' }).catch((err: unknown) => err);
      expect(unknown).toBeInstanceOf(InvalidInputError);
      expect(unknown).toMatchObject({ field: 'unit' });
      expect((unknown as Error).message).toContain('north, south');
      await expect(operator.outbox({ resourceType: 'Encounter' })).rejects.toMatchObject({
        field: 'resourceType',
      });
    });

    it('lists and shows dead letters by filter, without the record copies they keep', async () => {
      await deadLetter(store, 'p-1', REJECTED);
      await deadLetter(store, 'p-2', UNAVAILABLE, { unit: 'south' });
      await deadLetter(store, 'o-1', REJECTED, { resourceType: 'Observation', unit: 'south' });
      const all = await operator.deadLetters();
      expect(all.map((l) => l.legacyId)).toEqual(['p-1', 'p-2', 'o-1']);
      expect(all[0]).toMatchObject({
        unit: 'north',
        reason: REJECTED,
        status: 'open',
        keepsRecordCopy: true,
        attempts: 1,
      });
      expect(all[0]).not.toHaveProperty('base');
      expect(JSON.stringify(all)).not.toContain(SECRET);
      expect(
        (await operator.deadLetters({ reason: 'RejectedError', unit: 'south' })).map((l) => l.legacyId),
      ).toEqual(['o-1']);
      expect(
        (await operator.deadLetters({ resourceType: 'Patient', limit: 1 })).map((l) => l.legacyId),
      ).toEqual(['p-1']);
      expect(await operator.deadLetter(all[1]!.id)).toEqual(all[1]);
      const missing = await operator.deadLetter('999999').catch((err: unknown) => err);
      expect(missing).toBeInstanceOf(DeadLetterNotFoundError);
      expect(missing).toMatchObject({ field: 'id', id: '999999' });
      await expect(operator.deadLetters({ status: 'gone' as never })).rejects.toMatchObject({
        field: 'status',
      });
      await expect(operator.deadLetters({ unit: 'west' })).rejects.toMatchObject({ field: 'unit' });
      await expect(operator.deadLetters({ reson: 'x' } as never)).rejects.toMatchObject({ field: 'reson' });
    });

    it('retries and discards dead letters in bulk by reason, unit and type, and refuses an empty filter', async () => {
      await deadLetter(store, 'p-1', UNAVAILABLE);
      await deadLetter(store, 'p-2', UNAVAILABLE, { unit: 'south' });
      await deadLetter(store, 'p-3', REJECTED);
      await deadLetter(store, 'o-1', REJECTED, { resourceType: 'Observation', unit: 'south' });
      const retried = await operator.retryDeadLetters({ reason: 'UnavailableError' });
      expect(retried).toMatchObject({ matched: 2, skipped: [] });
      expect(retried.done).toHaveLength(2);
      expect((await store.listOutbox()).map((e) => e.legacyId).sort()).toEqual(['p-1', 'p-2']);
      const discarded = await operator.discardDeadLetters(
        { unit: 'south', resourceType: 'Observation' },
        'test data',
      );
      expect(discarded).toMatchObject({ matched: 1 });
      expect((await operator.deadLetters()).map((l) => l.legacyId)).toEqual(['p-3']);
      expect(await operator.deadLetters({ status: 'discarded' })).toMatchObject([
        { legacyId: 'o-1', note: 'test data' },
      ]);
      await expect(operator.retryDeadLetters({})).rejects.toMatchObject({
        name: 'InvalidInputError',
        field: 'filter',
      });
      await expect(operator.retryDeadLetters({ status: 'all' } as never)).rejects.toMatchObject({
        field: 'status',
      });
      await expect(operator.discardDeadLetters({ unit: 'north' }, '')).rejects.toMatchObject({
        field: 'note',
      });
      // One by one, as the writer's calls do: a closed letter answers false.
      expect(await operator.retryDeadLetter(retried.done[0]!)).toBe(false);
      const [open] = await operator.deadLetters();
      expect(await operator.discardDeadLetter(open!.id, 'merged by hand')).toBe(true);
      await expect(operator.retryDeadLetter('424242')).rejects.toBeInstanceOf(DeadLetterNotFoundError);
    });

    it('lists recent conflicts by resolver, and counts them by resolver', async () => {
      const conflict = (unit: string, resolvedBy: string) =>
        store.appendEvent({
          type: 'conflict',
          resourceType: 'Patient',
          legacyId: `p-${unit}-${resolvedBy}`,
          unit,
          data: {
            resolvedBy,
            resolution: 'legacy',
            target: 'medplum',
            stage: 'dual-write',
            changes: { legacy: [{ path: 'name[0].family', kind: 'changed' }], medplum: undefined },
          },
        });
      await conflict('north', 'authority-wins');
      await conflict('north', 'three-way-merge');
      await conflict('south', 'authority-wins');
      const recent = await operator.conflicts();
      expect(recent.map((c) => c.legacyId)).toEqual([
        'p-south-authority-wins',
        'p-north-three-way-merge',
        'p-north-authority-wins',
      ]);
      expect(recent[0]).toMatchObject({
        unit: 'south',
        resolvedBy: 'authority-wins',
        resolution: 'legacy',
        changedPaths: { legacy: ['name[0].family'], medplum: undefined },
      });
      expect(
        (await operator.conflicts({ resolver: 'authority-wins', unit: 'north' })).map((c) => c.legacyId),
      ).toEqual(['p-north-authority-wins']);
      expect(await operator.conflictCounts()).toMatchObject({
        byResolver: { 'authority-wins': 2, 'three-way-merge': 1 },
        total: 3,
      });
      expect(await operator.conflictCounts({ unit: 'south' })).toMatchObject({ total: 1 });
      await expect(operator.conflicts({ since: 'yesterday' })).rejects.toMatchObject({ field: 'since' });
    });

    it('pauses, resumes and cancels jobs, and names an unknown job', async () => {
      const job = await store.createJob({
        kind: 'reconcile',
        resourceType: 'Patient',
        unit: 'north',
        direction: 'to-medplum',
      });
      expect(await operator.pauseJob(job.id)).toMatchObject({ state: 'paused' });
      expect(await operator.jobs({ state: 'paused' })).toMatchObject([{ id: job.id }]);
      expect(await operator.resumeJob(job.id)).toMatchObject({ state: 'running' });
      expect(await operator.cancelJob(job.id, 'wrong unit')).toMatchObject({
        state: 'cancelled',
        reason: 'wrong unit',
      });
      // A final job stays as it is.
      expect(await operator.resumeJob(job.id)).toMatchObject({ state: 'cancelled' });
      expect(await operator.job(job.id)).toMatchObject({ state: 'cancelled' });
      const missing = await operator.pauseJob('999999').catch((err: unknown) => err);
      expect(missing).toBeInstanceOf(JobNotFoundError);
      expect(missing).toMatchObject({ field: 'id' });
      await expect(operator.jobs({ kind: 'migrate' } as never)).rejects.toMatchObject({ field: 'kind' });
    });

    it('says which part is missing when a call needs the two systems', async () => {
      await deadLetter(store, 'p-1', REJECTED);
      const [letter] = await operator.deadLetters();
      const error = await operator
        .resolveDeadLetter(letter!.id, { winner: 'legacy' })
        .catch((err: unknown) => err);
      expect(error).toBeInstanceOf(ConfigurationError);
      expect(error).toMatchObject({ field: 'legacy' });
      await expect(
        operator.backfill({ resourceType: 'Patient', direction: 'to-medplum', unit: 'north' }),
      ).rejects.toBeInstanceOf(ConfigurationError);
      // Nothing was changed.
      expect(await operator.deadLetters()).toHaveLength(1);
    });
  });
}

describeEveryStore(describeOperator, 'dw_operator');

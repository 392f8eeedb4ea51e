import type { Encounter, Patient } from '@medplum/fhirtypes';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  PostgresStore,
  sqlClientFromPg,
  type Link,
  type PostgresStore as Store,
  type SqlClient,
} from '../../src/index.ts';
import { intentOf, linkOf } from '../journal/sync-store.fixture.ts';
import {
  ENCOUNTER_SYSTEM,
  PATIENT_SYSTEM,
  copyOf,
  journalBackends,
  north,
  startClinic,
  type Clinic,
} from './clinic-fixture.ts';

/*
 * The lost wake of the waiting rule: a dependent finds its dependency unlinked, and the
 * dependency is linked before the dependent's deferral is recorded. Nothing then announces the
 * link again, so unless the deferral sees it, the dependent sleeps its whole recheck time (30 s).
 * Each interleaving is injected, never raced for.
 */

const HOUR = 3_600_000;

for (const backend of journalBackends) {
  describe(`the dependency wake-up, with a PostgresStore on ${backend.name}`, () => {
    let journal: { store: Store; close: () => Promise<void> };
    let clinic: Clinic | undefined;
    beforeEach(async () => {
      journal = await backend.open();
    });
    afterEach(async () => {
      await clinic?.close();
      clinic = undefined;
      await journal.close();
    });

    it('wakes an encounter whose patient is linked between its reference check and its deferral', async () => {
      clinic = await startClinic(journal.store);
      const { writer, direct } = clinic;
      const { store } = journal;
      await writer.create('Patient', { id: 'p1', name: 'Lovelace' }, north);
      // Another worker holds the patient's mirror: the encounter's check finds it pending.
      const [patientLease] = await store.claim('other-worker', 1, HOUR);
      expect(patientLease?.entry).toMatchObject({ resourceType: 'Patient', legacyId: 'p1' });
      await writer.create('Encounter', { id: 'e1', patient_id: 'p1', date: '2026-12-01' }, north);

      // The pause between the check and the deferral: the other worker's mirror lands there
      // (its copy written, its link saved, whose wake finds nothing waiting yet).
      let patient: Patient | undefined;
      let dueAfterDeferral: number | undefined;
      const defer = store.defer.bind(store);
      store.defer = async (lease, waitingFor, error, delayMs, whilePending) => {
        if (patient === undefined && lease.entry.resourceType === 'Encounter') {
          expect(waitingFor).toBe('Patient/p1');
          patient = await direct.createResource<Patient>({
            resourceType: 'Patient',
            identifier: [{ system: PATIENT_SYSTEM, value: 'p1' }],
            name: [{ family: 'Lovelace' }],
          });
          expect(await store.complete(patientLease!, linkTo(patient))).toBe('done');
          const outcome = await defer(lease, waitingFor, error, delayMs, whilePending);
          const entry = (await store.listOutbox()).find((e) => e.legacyId === 'e1');
          dueAfterDeferral = Date.parse(entry?.nextAttemptAt ?? '') - Date.now();
          return outcome;
        }
        return defer(lease, waitingFor, error, delayMs, whilePending);
      };

      // Well within the 30 s a lost wake would sleep.
      expect(await writer.drain({ timeoutMs: 10_000 })).toMatchObject({ deadLettered: 0, timedOut: false });
      expect(patient).toBeDefined();
      expect(dueAfterDeferral).toBeLessThan(5_000);
      const encounter = await copyOf<Encounter>(direct, 'Encounter', ENCOUNTER_SYSTEM, 'e1');
      expect(encounter?.subject).toEqual({ reference: `Patient/${patient?.id}` });
      expect(await store.outboxCounts()).toEqual({ pending: 0, leased: 0, dead: 0 });
    });
  });
}

describe('the dependency wake-up on PostgreSQL, a link committed while a deferral is in flight', () => {
  let pool: pg.Pool;
  let schema: string;
  beforeEach(() => {
    pool = new pg.Pool({
      connectionString: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
      max: 4,
    });
    schema = `dw_wake_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  });
  afterEach(async () => {
    await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await pool.end();
  });

  it('wakes the dependent when the link is inserted after the deferral checked for it, before it committed', async () => {
    // The deferral's transaction pauses once its statements ran, before COMMIT: its check has
    // found no link, and its waiting entry is not visible to anyone yet.
    let pauseNext = false;
    let paused: (() => void) | undefined;
    let release: (() => void) | undefined;
    const base = sqlClientFromPg(pool);
    const sql: SqlClient = {
      query: (text, params) => base.query(text, params),
      transaction: (fn) =>
        base.transaction(async (tx) => {
          const result = await fn(tx);
          if (pauseNext) {
            pauseNext = false;
            await new Promise<void>((resolve) => {
              release = resolve;
              paused?.();
            });
          }
          return result;
        }),
    };
    const store = await PostgresStore.open({ sql, schema });
    await store.commit(await store.intend(intentOf('e-1', { resourceType: 'Encounter' }), HOUR));
    const [encounter] = await store.claim('worker-1', 1, HOUR);
    await store.commit(await store.intend(intentOf('p-1'), HOUR));
    const [patient] = await store.claim('worker-2', 1, HOUR);
    expect([encounter?.entry.resourceType, patient?.entry.resourceType]).toEqual(['Encounter', 'Patient']);

    pauseNext = true;
    const inTransaction = new Promise<void>((resolve) => (paused = resolve));
    const deferral = store.defer(
      encounter!,
      'Patient/p-1',
      { name: 'DependencyError', message: 'subject references Patient/p-1: waiting for its mirror' },
      HOUR,
      true,
    );
    await inTransaction;
    // The patient's mirror completes now, on another connection: its link insert either waits
    // for the deferral's lock, or (were there none) commits and wakes nothing.
    const linked = store.complete(patient!, linkOf('p-1', 'm-1'));
    await Promise.race([linked, waitingForAdvisoryLock(pool)]);
    release!();
    expect(await deferral).toBe('done');
    expect(await linked).toBe('done');
    const [woken] = await store.claim('worker-1', 10, HOUR);
    expect(woken?.entry).toMatchObject({ resourceType: 'Encounter', waitingFor: 'Patient/p-1' });
  });
});

/** Resolves once some session waits for an advisory lock (polls the lock table, not a clock). */
async function waitingForAdvisoryLock(pool: pg.Pool): Promise<void> {
  for (;;) {
    const { rows } = await pool.query(
      `SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND database =
         (SELECT oid FROM pg_database WHERE datname = current_database())`,
    );
    if (rows.length > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function linkTo(patient: Patient): Link {
  return {
    resourceType: 'Patient',
    legacyId: 'p1',
    medplumId: patient.id!,
    legacyVersion: undefined,
    medplumVersion: patient.meta?.versionId,
    contentHash: 'sha256:not-compared-here',
    syncedAt: new Date().toISOString(),
  };
}

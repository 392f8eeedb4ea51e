import { inspect } from 'node:util';
import { PGlite } from '@electric-sql/pglite';
import type { Patient } from '@medplum/fhirtypes';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DeadLetterNotFoundError,
  InvalidInputError,
  JobNotFoundError,
  PostgresTableAdapter,
  sqlClientFromPglite,
  type PostgresTableRow,
} from '../../src/index.ts';
import { MedplumSide } from '../../src/sides/medplum-side.ts';
import type { MemoryLegacyAdapter } from '../../src/testing/index.ts';
import { PATIENT_SYSTEM, type PatientRow } from '../harness/patient-fixture.ts';
import { medplumCopies, north, startWriterFixture, type WriterFixture } from '../harness/writer-fixture.ts';
import { allocatingMapping, feedsOver, patient } from '../feeds/feeds-fixture.ts';

let fixture: WriterFixture<MemoryLegacyAdapter<PatientRow>> | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

describe('ids that would reach a URL', () => {
  it('readResource refuses an id that is not a FHIR id instead of reading another path', async () => {
    fixture = await startWriterFixture({ stage: 'live' });
    await fixture.writer.create('Patient', { id: 'p-1', first_name: 'Ada', last_name: 'Lovelace' }, north);
    for (const id of ['../AuditEvent', 'p/1', 'a b', 'x'.repeat(65), '_history']) {
      const error = await fixture.writer.readResource('Patient', id, north).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidInputError);
      expect(error).toMatchObject({ field: 'id' });
      expect((error as Error).message).not.toContain(id);
    }
  });

  it('deleteResource and updateResource refuse such ids before anything is read or written', async () => {
    fixture = await startWriterFixture({ stage: 'live' });
    const requests = fixture.server.faults.stats.requests;
    await expect(fixture.writer.deleteResource('Patient', '../Patient', north)).rejects.toMatchObject({
      name: 'InvalidInputError',
      field: 'id',
    });
    await expect(
      fixture.writer.updateResource({ resourceType: 'Patient', id: '../AuditEvent' }, north),
    ).rejects.toMatchObject({ name: 'InvalidInputError', field: 'resource.id' });
    expect(fixture.server.faults.stats.requests).toBe(requests);
  });

  it('the Medplum side itself refuses a path in an id (ids read from links or notifications too)', async () => {
    fixture = await startWriterFixture();
    const side = new MedplumSide(fixture.medplum);
    await expect(side.read('Patient', '../AuditEvent')).rejects.toBeInstanceOf(InvalidInputError);
    await expect(side.delete('Patient', 'a/b', {})).rejects.toBeInstanceOf(InvalidInputError);
    await expect(
      side.update({ resourceType: 'Patient', id: '../Patient' }, undefined, {}),
    ).rejects.toBeInstanceOf(InvalidInputError);
  });
});

describe('create with an empty legacy id', () => {
  it('is refused like update, delete and read, and nothing is written', async () => {
    fixture = await startWriterFixture();
    const error = await fixture.writer
      .create('Patient', { id: '', first_name: 'Ada', last_name: 'Lovelace' }, north)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error).toMatchObject({ field: 'legacyId' });
    expect(await fixture.legacy.read('Patient', '')).toBeUndefined();
    expect(await fixture.writer.outbox()).toMatchObject({ pending: 0, dead: 0 });
  });

  it('createResource refuses an empty legacy identifier value', async () => {
    fixture = await startWriterFixture({ stage: 'live' });
    const error = await fixture.writer
      .createResource(
        { ...patient('Ada', 'Lovelace'), identifier: [{ system: PATIENT_SYSTEM, value: '' }] },
        north,
      )
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(await medplumCopies(fixture.direct, '')).toHaveLength(0);
  });
});

describe('row keys that are not columns', () => {
  let db: PGlite | undefined;
  afterEach(async () => {
    await db?.close();
    db = undefined;
  });

  async function patientsTable(): Promise<PostgresTableAdapter> {
    db = new PGlite();
    await db.exec(`create table patients (
      id text primary key, first_name text, last_name text, birth_date date,
      version integer not null default 1, updated_at timestamptz not null default clock_timestamp())`);
    return new PostgresTableAdapter({
      sql: sqlClientFromPglite(db),
      tables: { Patient: { table: 'patients' } },
    });
  }

  it('are refused by create and update with an InvalidInputError naming the key, not the value', async () => {
    const legacy = await patientsTable();
    const typo = { id: 'p-1', first_name: 'Ada', famly_typo: 'Lovelace-Marker' };
    const error = await legacy.create('Patient', typo).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error).toMatchObject({ field: 'row.famly_typo' });
    expect((error as Error).message).not.toContain('Lovelace-Marker');
    expect(await legacy.read('Patient', 'p-1')).toBeUndefined();
    await legacy.create('Patient', { id: 'p-2', first_name: 'Ada', last_name: 'Lovelace' });
    const hostile = [
      JSON.parse('{"__proto__": {"admin": true}, "first_name": "Ada"}') as PostgresTableRow,
      { constructor: 'x', first_name: 'Ada' } as PostgresTableRow,
    ];
    for (const row of hostile) {
      const refused = await legacy.update('Patient', 'p-2', row).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(InvalidInputError);
      expect((refused as InvalidInputError).field).toMatch(/^row\.(__proto__|constructor)$/);
    }
    expect((await legacy.read('Patient', 'p-2'))?.row).toMatchObject({ last_name: 'Lovelace', version: 1 });
  });

  it('accepts a row as read, with its version and timestamp columns', async () => {
    const legacy = await patientsTable();
    const created = await legacy.create('Patient', { id: 'p-1', first_name: 'Ada', last_name: 'Lovelace' });
    const updated = await legacy.update('Patient', 'p-1', { ...created.row, last_name: 'King' });
    expect(updated.row.last_name).toBe('King');
  });
});

describe('dead letters that do not exist', () => {
  it('retryDeadLetter and discardDeadLetter of an unknown id reject with DeadLetterNotFoundError', async () => {
    fixture = await startWriterFixture();
    for (const call of [
      fixture.writer.retryDeadLetter('999999'),
      fixture.writer.discardDeadLetter('999999', 'not a letter'),
      fixture.writer.resolveDeadLetter('999999', { winner: 'legacy' }, 'not a letter'),
    ]) {
      const error = await call.catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DeadLetterNotFoundError);
      expect(error).toMatchObject({ id: '999999', retryable: false, status: 404 });
    }
  });

  it('an id that cannot be a journal id (a pasted SSN) is named by its kind and length, never quoted', async () => {
    fixture = await startWriterFixture();
    const pasted = '321-54-9876';
    const errors = [
      await fixture.writer.retryDeadLetter(pasted).catch((e: unknown) => e),
      new JobNotFoundError(pasted),
    ];
    for (const error of errors) {
      expect(error).toMatchObject({ field: 'id', id: undefined, status: 404 });
      expect((error as Error).message).toContain('a string of 11 characters');
      for (const shown of [String(error), JSON.stringify(error), inspect(error, { showHidden: true })])
        expect(shown).not.toContain(pasted);
    }
  });
});

describe("the Medplum feed's unitOf", () => {
  it('receives the resource as read, before a newly allocated legacy identifier is stamped on it', async () => {
    fixture = await startWriterFixture();
    const seen: (Patient | undefined)[] = [];
    const feeds = feedsOver(
      fixture,
      {},
      {
        mapping: allocatingMapping(),
        // "Ours" = carries our identifier: a resource of another application must stay out.
        unitOf: (record) => {
          seen.push(record.resource as Patient | undefined);
          const ours = (record.resource as Patient | undefined)?.identifier?.some(
            (identifier) => identifier.system === PATIENT_SYSTEM,
          );
          return ours === true ? 'north' : undefined;
        },
      },
    );
    const foreign = await fixture.direct.createResource(patient('Grace', 'Hopper'));
    const report = await feeds.pollOnce();
    expect(report).toMatchObject({ queued: 0, skippedWithoutUnit: 1 });
    expect(seen[0]?.identifier).toBeUndefined();
    const after = await fixture.direct.readResource('Patient', foreign.id, { cache: 'no-cache' });
    expect(after.identifier).toBeUndefined();
    expect(after.meta?.versionId).toBe(foreign.meta?.versionId);
  });

  it('counts a resource once per pass although its stamp moved it onto a later page', async () => {
    fixture = await startWriterFixture();
    const feeds = feedsOver(fixture, { pageSize: 2 }, { mapping: allocatingMapping() });
    for (const family of ['A', 'B', 'C', 'D', 'E']) await fixture.direct.createResource(patient('X', family));
    // Page 1 holds A and B; their stamps move them behind E, so offset paging reads E, then A
    // and B again (as stamped), and C and D are left for the next pass.
    expect(await feeds.pollOnce()).toMatchObject({ seen: 3, queued: 3 });
    await fixture.writer.drain();
    expect(await feeds.pollOnce()).toMatchObject({ queued: 2 });
    await fixture.writer.drain();
    expect(await fixture.legacy.read('Patient', 'mp-5')).toBeDefined();
    expect(await fixture.legacy.read('Patient', 'mp-6')).toBeUndefined();
  });
});

import { PGlite } from '@electric-sql/pglite';
import type { Patient } from '@medplum/fhirtypes';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  ConflictError,
  PostgresStore,
  PostgresTableAdapter,
  sqlClientFromPglite,
  type LegacyAdapter,
  type LegacyRecord,
  type Stage,
  type SyncStore,
} from '../../src/index.ts';
import { MemoryLegacyAdapter } from '../../src/testing/index.ts';
import { PATIENT_SYSTEM, patientMapping, type PatientRow } from '../harness/patient-fixture.ts';
import { medplumCopies, north, startWriterFixture, type WriterFixture } from '../harness/writer-fixture.ts';

// A stale expectedVersion is a conflict even when the content asked for is already there: the
// caller decided on a version that is no longer current. Only a retry within the call, after an
// attempt whose answer was lost, may take that content for its own earlier write.

let fixture: WriterFixture<LegacyAdapter<PatientRow>> | undefined;
const closing: (() => Promise<void>)[] = [];
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
  for (const close of closing.splice(0)) await close();
});

const ada = (id: string, lastName: string): PatientRow => ({
  id,
  first_name: 'Ada',
  last_name: lastName,
  birth_date: null,
});

const asResource = (row: PatientRow): Patient => ({
  resourceType: 'Patient',
  identifier: [{ system: PATIENT_SYSTEM, value: row.id ?? '' }],
  name: [{ given: [row.first_name], family: row.last_name }],
});

/** The authority's version of the record. */
async function authorityVersion(f: WriterFixture<LegacyAdapter<PatientRow>>, stage: Stage, id: string) {
  if (authorityOf(stage) === 'legacy') return (await f.legacy.read('Patient', id))?.version;
  return (await medplumCopies(f.direct, id))[0]?.meta?.versionId;
}

function authorityOf(stage: Stage): 'legacy' | 'medplum' {
  return ['legacy-only', 'dual-write', 'shadow'].includes(stage) ? 'legacy' : 'medplum';
}

/** Nothing owed: no entry pending or leased, and a drain applies nothing. */
async function nothingOwed(f: WriterFixture<LegacyAdapter<PatientRow>>, store: SyncStore): Promise<void> {
  expect(await store.outboxCounts()).toMatchObject({ pending: 0, leased: 0 });
  expect(await f.writer.drain({ timeoutMs: 5000 })).toMatchObject({ applied: 0, deadLettered: 0 });
}

/** One PGlite database for the transactional cases; each case has a table and a journal of its own. */
let shared: PGlite | undefined;
// Started once, before the cases: starting PGlite took tens of seconds on a loaded machine, more
// than a case's time limit.
beforeAll(async () => {
  shared = await PGlite.create();
}, 600_000);
let tables = 0;
afterAll(async () => {
  await shared?.close();
});

/** A patients table whose writer journals in the same database (a transactional outbox). */
async function transactionalLegacy(): Promise<{ legacy: LegacyAdapter<PatientRow>; store: PostgresStore }> {
  if (shared === undefined) throw new Error('PGlite did not start');
  tables += 1;
  const schema = `case_${tables}`;
  await shared.exec(`create schema ${schema}; create table ${schema}.patients (
    id text primary key, first_name text, last_name text, birth_date date, notes text,
    version integer not null default 1, updated_at timestamptz not null default clock_timestamp())`);
  const sql = sqlClientFromPglite(shared);
  const store = await PostgresStore.open({ sql, schema });
  closing.unshift(() => store.close());
  const legacy = new PostgresTableAdapter({ sql, tables: { Patient: { table: 'patients', schema } } });
  return { legacy: legacy as unknown as LegacyAdapter<PatientRow>, store };
}

/** Writes of the same content again, legacy authority: an attempt's COMMIT answer is lost. */
class LostCommitAnswer<L> implements LegacyAdapter<L> {
  readonly #inner: LegacyAdapter<L>;
  lose = 0;
  constructor(inner: LegacyAdapter<L>) {
    this.#inner = inner;
  }
  create(type: string, row: L): Promise<LegacyRecord<L>> {
    return this.#inner.create(type, row);
  }
  async update(type: string, id: string, row: L, options?: { expectedVersion?: string }) {
    const record = await this.#inner.update(type, id, row, options);
    if (this.lose > 0) {
      this.lose -= 1;
      throw Object.assign(new Error('terminating connection due to administrator command'), {
        code: '57P01',
      });
    }
    return record;
  }
  delete(type: string, id: string, options?: { expectedVersion?: string }): Promise<void> {
    return this.#inner.delete(type, id, options);
  }
  read(type: string, id: string): Promise<LegacyRecord<L> | undefined> {
    return this.#inner.read(type, id);
  }
  changesSince(type: string, cursor: string | undefined, limit: number) {
    return this.#inner.changesSince(type, cursor, limit);
  }
}

const variants = [
  ...(['legacy-only', 'dual-write', 'shadow', 'live', 'rampdown', 'medplum-only'] as const).map((stage) => ({
    stage,
    transactional: false,
  })),
  ...(['dual-write', 'shadow'] as const).map((stage) => ({ stage, transactional: true })),
];

describe('an update with a stale expectedVersion and the content already stored', () => {
  for (const { stage, transactional } of variants) {
    for (const mirror of ['sync', 'async'] as const) {
      for (const call of ['update', 'updateResource'] as const) {
        const where = transactional ? ', transactional outbox' : '';
        it(`${stage}${where}, mirror ${mirror}, ${call}: ConflictError 412, nothing written, nothing owed`, async () => {
          const tx = transactional ? await transactionalLegacy() : undefined;
          fixture = await startWriterFixture<LegacyAdapter<PatientRow>>({
            stage,
            legacy: tx?.legacy ?? new MemoryLegacyAdapter<PatientRow>(),
            writer: {
              mirror,
              ...(tx === undefined ? {} : { store: tx.store, mappings: [patientMapping as never] }),
            },
          });
          const f = fixture;
          const store: SyncStore = tx?.store ?? f.store;
          const id = 's-1';
          await f.writer.create('Patient', ada(id, 'Lovelace'), north);
          const first = await authorityVersion(f, stage, id);
          await f.writer.update('Patient', id, ada(id, 'King'), north);
          await f.writer.drain({ timeoutMs: 5000 });
          const current = await authorityVersion(f, stage, id);
          expect(current).not.toBe(first);

          const same = ada(id, 'King');
          const error = await (
            call === 'update'
              ? f.writer.update('Patient', id, same, north, { expectedVersion: first })
              : f.writer.updateResource(asResource(same), north, { expectedVersion: first })
          ).catch((e: unknown) => e);
          expect(error).toBeInstanceOf(ConflictError);
          expect(error).toMatchObject({
            status: 412,
            side: authorityOf(stage),
            expectedVersion: first,
            actualVersion: current,
          });
          expect(await authorityVersion(f, stage, id)).toBe(current);
          await nothingOwed(f, store);
        });
      }
    }
  }
});

describe('a retry within the call after a lost answer takes its own write for done', () => {
  it('legacy authority: the update landed, its answer was lost; the retry sees the new version and the same content', async () => {
    const legacy = new LostCommitAnswer<PatientRow>(new MemoryLegacyAdapter<PatientRow>());
    fixture = await startWriterFixture<LegacyAdapter<PatientRow>>({ stage: 'dual-write', legacy });
    const { writer, direct } = fixture;
    const created = await writer.create('Patient', ada('s-2', 'Lovelace'), north);
    legacy.lose = 1;
    const result = await writer.update('Patient', 's-2', ada('s-2', 'King'), north, {
      expectedVersion: created.legacy.version,
    });
    expect(result).toMatchObject({ legacy: { action: 'unchanged' }, mirror: 'applied' });
    expect((await legacy.read('Patient', 's-2'))?.row.last_name).toBe('King');
    expect((await medplumCopies(direct, 's-2'))[0]?.name?.[0]?.family).toBe('King');
  });

  it('Medplum authority: the update landed, its answer was lost; the retry sees the new version and the same content', async () => {
    fixture = await startWriterFixture<LegacyAdapter<PatientRow>>({ stage: 'live' });
    const { writer, server, legacy, direct } = fixture;
    const created = await writer.create('Patient', ada('s-3', 'Lovelace'), north);
    server.faults.dropNext(1, { methods: ['PUT'], afterProcessing: true });
    const result = await writer.update('Patient', 's-3', ada('s-3', 'King'), north, {
      expectedVersion: created.medplum.version,
    });
    expect(result).toMatchObject({ medplum: { action: 'unchanged' }, mirror: 'applied' });
    expect((await medplumCopies(direct, 's-3'))[0]?.name?.[0]?.family).toBe('King');
    expect((await legacy.read('Patient', 's-3'))?.row.last_name).toBe('King');
  });
});

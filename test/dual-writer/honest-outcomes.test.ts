import { PGlite } from '@electric-sql/pglite';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  ConflictError,
  DualWriter,
  MirrorError,
  OutcomeUnknownError,
  PostgresStore,
  PostgresTableAdapter,
  RejectedError,
  UnavailableError,
  auditEventSink,
  sqlClientFromPglite,
  type DualWriteEvent,
  type LegacyAdapter,
  type LegacyRecord,
  type PostgresTableRow,
  type ResourceMapping,
  type SyncStore,
} from '../../src/index.ts';
import { MemoryLegacyAdapter } from '../../src/testing/index.ts';
import { patientMapping, type PatientRow } from '../harness/patient-fixture.ts';
import {
  medplumCopies,
  north,
  startWriterFixture,
  type Ctx,
  type WriterFixture,
} from '../harness/writer-fixture.ts';

let fixture: WriterFixture<LegacyAdapter<PatientRow>> | undefined;
const closing: (() => Promise<void>)[] = [];
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
  for (const close of closing.splice(0)) await close();
});

/** Nothing owed: no entry pending or leased (readiness's `pending` too), and a drain applies nothing. */
async function nothingOwed(
  f: WriterFixture<LegacyAdapter<PatientRow>>,
  store: SyncStore = f.store,
): Promise<void> {
  expect(await store.outboxCounts()).toMatchObject({ pending: 0, leased: 0 });
  expect((await f.writer.readiness('north')).figures.pending).toBe(0);
  const report = await f.writer.drain({ timeoutMs: 5000 });
  expect(report).toMatchObject({ applied: 0, retried: 0, deadLettered: 0 });
}

/**
 * A legacy adapter over another whose next `create`/`update` calls fail after they committed,
 * as a connection terminated after COMMIT was sent looks to the caller; and whose calls after
 * those fail before doing anything, as a database that refuses connections looks.
 */
class LateFailures<L> implements LegacyAdapter<L> {
  readonly #inner: LegacyAdapter<L>;
  afterCommit = 0;
  refused = 0;
  calls = 0;
  constructor(inner: LegacyAdapter<L>) {
    this.#inner = inner;
  }
  async #write<T>(run: () => Promise<T>): Promise<T> {
    this.calls += 1;
    if (this.refused > 0 && this.afterCommit === 0) {
      this.refused -= 1;
      throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    }
    const value = await run();
    if (this.afterCommit > 0) {
      this.afterCommit -= 1;
      throw Object.assign(new Error('terminating connection due to administrator command'), {
        code: '57P01',
      });
    }
    return value;
  }
  create(type: string, row: L): Promise<LegacyRecord<L>> {
    return this.#write(() => this.#inner.create(type, row));
  }
  update(type: string, id: string, row: L, options?: { expectedVersion?: string }): Promise<LegacyRecord<L>> {
    return this.#write(() => this.#inner.update(type, id, row, options));
  }
  delete(type: string, id: string, options?: { expectedVersion?: string }): Promise<void> {
    return this.#write(() => this.#inner.delete(type, id, options));
  }
  read(type: string, id: string): Promise<LegacyRecord<L> | undefined> {
    return this.#inner.read(type, id);
  }
  changesSince(type: string, cursor: string | undefined, limit: number) {
    return this.#inner.changesSince(type, cursor, limit);
  }
}

describe('outcome unknown', () => {
  it('live: a create whose answer was lost, then 503s, throws OutcomeUnknownError, not UnavailableError; the same call again leaves one copy on each side', async () => {
    fixture = await startWriterFixture({ stage: 'live' });
    const { server, writer, legacy, direct } = fixture;
    server.faults
      .dropNext(1, { methods: ['POST'], afterProcessing: true })
      .failNext(20, 503, { methods: ['POST', 'GET'] });
    const row = { id: 'u-1', first_name: 'Ada', last_name: 'Lovelace' };
    const error = await writer.create('Patient', row, north).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OutcomeUnknownError);
    expect(error).not.toBeInstanceOf(UnavailableError);
    expect(error).toMatchObject({
      retryable: true,
      side: 'medplum',
      resourceType: 'Patient',
      legacyId: 'u-1',
    });
    server.faults.clear();
    // It did land: the library could not know.
    expect(await medplumCopies(direct, 'u-1')).toHaveLength(1);
    const again = await writer.create('Patient', row, north);
    expect(again.medplum.action).toBe('unchanged');
    await writer.drain();
    expect(await medplumCopies(direct, 'u-1')).toHaveLength(1);
    expect((await legacy.read('Patient', 'u-1'))?.row).toMatchObject({ last_name: 'Lovelace' });
    expect(await writer.outbox()).toMatchObject({ pending: 0, leased: 0, dead: 0 });
  });

  it('live: a write the server never answered stays owed to the mirror, so it reaches the legacy system without a retry', async () => {
    fixture = await startWriterFixture({ stage: 'live', writer: { mirror: 'async' } });
    const { server, writer, legacy } = fixture;
    server.faults
      .dropNext(1, { methods: ['POST'], afterProcessing: true })
      .failNext(20, 503, { methods: ['POST', 'GET'] });
    await expect(
      writer.create('Patient', { id: 'u-2', first_name: 'Ada', last_name: 'Lovelace' }, north),
    ).rejects.toBeInstanceOf(OutcomeUnknownError);
    server.faults.clear();
    expect(await writer.outbox()).toMatchObject({ pending: 1 });
    await writer.drain();
    expect((await legacy.read('Patient', 'u-2'))?.row).toMatchObject({ last_name: 'Lovelace' });
  });

  it('live: a write refused with 503 every time is UnavailableError, and nothing is written or owed', async () => {
    fixture = await startWriterFixture({ stage: 'live' });
    const { server, writer, direct } = fixture;
    server.faults.failNext(20, 503, { methods: ['POST'] });
    const error = await writer
      .create('Patient', { id: 'u-3', first_name: 'Ada', last_name: 'Lovelace' }, north)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnavailableError);
    server.faults.clear();
    expect(await medplumCopies(direct, 'u-3')).toHaveLength(0);
    await nothingOwed(fixture);
  });

  it('dual-write: a legacy write whose connection was terminated after COMMIT, then refused, is OutcomeUnknownError; the same call again is safe', async () => {
    const legacy = new LateFailures<PatientRow>(new MemoryLegacyAdapter<PatientRow>());
    fixture = await startWriterFixture({ stage: 'dual-write', legacy });
    const { writer, direct } = fixture;
    legacy.afterCommit = 1;
    legacy.refused = 20;
    const row = { id: 'u-4', first_name: 'Ada', last_name: 'Lovelace' };
    const error = await writer.create('Patient', row, north).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OutcomeUnknownError);
    expect(error).toMatchObject({ retryable: true, side: 'legacy', legacyId: 'u-4' });
    legacy.refused = 0;
    const again = await writer.create('Patient', row, north);
    expect(again).toMatchObject({ mirror: 'applied', legacy: { action: 'unchanged' } });
    expect(await medplumCopies(direct, 'u-4')).toHaveLength(1);
    expect(await writer.outbox()).toMatchObject({ pending: 0, leased: 0, dead: 0 });
  });

  it('dual-write: a legacy write refused before it was sent is UnavailableError, and nothing is owed', async () => {
    const legacy = new LateFailures<PatientRow>(new MemoryLegacyAdapter<PatientRow>());
    fixture = await startWriterFixture({ stage: 'dual-write', legacy });
    legacy.refused = 20;
    await expect(
      fixture.writer.create('Patient', { id: 'u-5', first_name: 'Ada', last_name: 'Lovelace' }, north),
    ).rejects.toBeInstanceOf(UnavailableError);
    legacy.refused = 0;
    await nothingOwed(fixture);
    expect(await medplumCopies(fixture.direct, 'u-5')).toHaveLength(0);
  });
});

describe('refused authority writes leave nothing owed', () => {
  it('dual-write: update of a missing id, a stale expectedVersion, a create of an existing id', async () => {
    fixture = await startWriterFixture({ stage: 'dual-write' });
    const { writer } = fixture;
    await writer.create('Patient', { id: 'r-1', first_name: 'Ada', last_name: 'Lovelace' }, north);
    await expect(
      writer.update('Patient', 'missing', { first_name: 'A', last_name: 'B' }, north),
    ).rejects.toMatchObject({ name: 'RejectedError', status: 404 });
    await nothingOwed(fixture);
    await expect(
      writer.update('Patient', 'r-1', { first_name: 'A', last_name: 'B' }, north, { expectedVersion: '7' }),
    ).rejects.toMatchObject({ name: 'ConflictError', status: 412 });
    await nothingOwed(fixture);
    await expect(
      writer.create('Patient', { id: 'r-1', first_name: 'Other', last_name: 'Person' }, north),
    ).rejects.toMatchObject({ name: 'ConflictError', status: 409 });
    await nothingOwed(fixture);
  });

  it('live: update of a missing id, a stale expectedVersion, a create of an existing id, an invalid date', async () => {
    fixture = await startWriterFixture({ stage: 'live' });
    const { writer, direct } = fixture;
    await writer.create('Patient', { id: 'r-2', first_name: 'Ada', last_name: 'Lovelace' }, north);
    await expect(
      writer.update('Patient', 'missing', { first_name: 'A', last_name: 'B' }, north),
    ).rejects.toMatchObject({ name: 'RejectedError', status: 404 });
    await nothingOwed(fixture);
    await expect(
      writer.update('Patient', 'r-2', { first_name: 'A', last_name: 'B' }, north, { expectedVersion: '7' }),
    ).rejects.toMatchObject({ name: 'ConflictError', status: 412 });
    await nothingOwed(fixture);
    await expect(
      writer.create('Patient', { id: 'r-2', first_name: 'Other', last_name: 'Person' }, north),
    ).rejects.toBeInstanceOf(ConflictError);
    await nothingOwed(fixture);
    const invalid = await writer
      .create('Patient', { id: 'r-3', first_name: 'A', last_name: 'B', birth_date: '1931-13-45' }, north)
      .catch((e: unknown) => e);
    expect(invalid).toBeInstanceOf(RejectedError);
    expect(invalid).toMatchObject({ status: 400 });
    await nothingOwed(fixture);
    expect(await medplumCopies(direct, 'r-3')).toHaveLength(0);
  });

  it('an older write still owed stays owed when a newer write on the record is refused', async () => {
    fixture = await startWriterFixture({ stage: 'dual-write', writer: { mirror: 'async' } });
    const { writer, direct } = fixture;
    await writer.create('Patient', { id: 'r-4', first_name: 'Ada', last_name: 'Lovelace' }, north);
    await expect(
      writer.update('Patient', 'r-4', { first_name: 'A', last_name: 'B' }, north, { expectedVersion: '7' }),
    ).rejects.toBeInstanceOf(ConflictError);
    expect(await writer.outbox()).toMatchObject({ pending: 1 });
    expect(await writer.drain()).toMatchObject({ applied: 1 });
    expect((await medplumCopies(direct, 'r-4'))[0]?.name?.[0]?.family).toBe('Lovelace');
  });

  // Liveness limit: two PGlite instances open here, 29 s at load 24 against the 30 s default.
  describe('a value too long for its column', { timeout: 120_000 }, () => {
    async function patientsTable(): Promise<{
      sql: ReturnType<typeof sqlClientFromPglite>;
      legacy: PostgresTableAdapter;
    }> {
      const db = new PGlite();
      closing.push(() => db.close());
      await db.exec(`create table patients (
        id text primary key, first_name text, last_name varchar(8), birth_date date, notes text,
        version integer not null default 1, updated_at timestamptz not null default clock_timestamp())`);
      const sql = sqlClientFromPglite(db);
      return { sql, legacy: new PostgresTableAdapter({ sql, tables: { Patient: { table: 'patients' } } }) };
    }
    const rows = patientMapping as unknown as ResourceMapping<PostgresTableRow>;

    it('with the journal elsewhere', async () => {
      const { legacy } = await patientsTable();
      fixture = await startWriterFixture<LegacyAdapter<PatientRow>>({
        stage: 'dual-write',
        legacy: legacy as unknown as LegacyAdapter<PatientRow>,
        writer: { mappings: [rows as never] },
      });
      await expect(
        fixture.writer.create(
          'Patient',
          { id: 'r-5', first_name: 'Ada', last_name: 'Lovelace-Byron-King' },
          north,
        ),
      ).rejects.toBeInstanceOf(RejectedError);
      await nothingOwed(fixture);
    });

    it('with a transactional outbox', async () => {
      const { sql, legacy } = await patientsTable();
      const store = await PostgresStore.open({ sql });
      fixture = await startWriterFixture<LegacyAdapter<PatientRow>>({
        stage: 'dual-write',
        legacy: legacy as unknown as LegacyAdapter<PatientRow>,
        writer: { mappings: [rows as never], store },
      });
      await expect(
        fixture.writer.create(
          'Patient',
          { id: 'r-6', first_name: 'Ada', last_name: 'Lovelace-Byron-King' },
          north,
        ),
      ).rejects.toBeInstanceOf(RejectedError);
      await nothingOwed(fixture, store);
    });
  });
});

describe('a dead letter on the synchronous path', () => {
  it('emits dead-letter and is recorded in the store and as an AuditEvent, as on the drainer path', async () => {
    fixture = await startWriterFixture({ stage: 'dual-write' });
    const f = fixture;
    const events: DualWriteEvent[] = [];
    const writer = new DualWriter<Ctx, PatientRow>({
      legacy: f.legacy,
      medplum: f.medplum,
      mappings: [patientMapping],
      plan: f.plan,
      store: f.store,
      sinks: [auditEventSink(f.direct)],
      onEvent: (event) => events.push(event),
    });
    f.server.faults.failNext(1, 422, { methods: ['POST'] });
    const error = await writer
      .create('Patient', { id: 'd-1', first_name: 'Ada', last_name: 'Lovelace' }, north)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MirrorError);
    await vi.waitFor(async () => {
      expect(events.filter((event) => event.type === 'dead-letter')).toEqual([
        expect.objectContaining({ resourceType: 'Patient', legacyId: 'd-1', target: 'medplum', status: 422 }),
      ]);
      expect(await f.store.countEvents({ type: 'dead-letter' })).toBe(1);
      const audits = await f.direct.searchResources('AuditEvent', { _count: '20' }, { cache: 'no-cache' });
      expect(audits.filter((audit) => audit.type.code === 'dead-letter')).toHaveLength(1);
    });
    expect(events.filter((event) => event.type === 'mirror-failed')).toHaveLength(1);
  });
});

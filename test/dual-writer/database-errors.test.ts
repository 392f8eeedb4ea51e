/**
 * Transient database errors are retried, never dead-lettered, and no raw driver error reaches a
 * caller: a statement of the journal fails with the real error of a terminated backend
 * (SQLSTATE 57P01), injected at a chosen statement (see `TerminatedStatements`).
 */
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  CutoverPlan,
  DualWriteError,
  DualWriter,
  PostgresStore,
  REVIEW_TASK_SYSTEM,
  UnavailableError,
  createMedplumClient,
  manualReview,
  type DualWriteEvent,
  type DualWriterOptions,
  sqlClientFromPg,
} from '../../src/index.ts';
import { MemoryLegacyAdapter, startFhirTestServer, type FhirTestServer } from '../../src/testing/index.ts';
import { patientMapping, type PatientRow } from '../harness/patient-fixture.ts';
import { TerminatedStatements } from '../harness/terminated-statements.ts';
import { medplumCopies, north, type Ctx } from '../harness/writer-fixture.ts';

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = `dw_dberr_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;

let pool: pg.Pool;
let server: FhirTestServer;
let store: PostgresStore;
let terminated: TerminatedStatements;
let writer: DualWriter<Ctx, PatientRow>;

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
  server = await startFhirTestServer();
  terminated = new TerminatedStatements(DATABASE_URL);
  store = await PostgresStore.open({ sql: terminated.wrap(sqlClientFromPg(pool)), schema });
});

/** A writer over the shared store and server, as every case uses, with options of its own. */
function writerWith(options: Partial<DualWriterOptions<Ctx, PatientRow>> = {}): DualWriter<Ctx, PatientRow> {
  return new DualWriter<Ctx, PatientRow>({
    legacy: new MemoryLegacyAdapter<PatientRow>(),
    medplum: createMedplumClient({ baseUrl: server.baseUrl }),
    mappings: [patientMapping],
    plan: new CutoverPlan<Ctx>({ default: 'dual-write', unitOf: (ctx) => ctx.unit }),
    store,
    mirror: 'async',
    retry: { retries: 0 },
    drainer: { pollIntervalMs: 5, backoff: { minMs: 1, maxMs: 5 } },
    ...options,
  });
}

/**
 * Waits for an event of a record: a writer hands an event to `onEvent` once the store has
 * recorded it (a liveness wait: the case's time limit fails a case whose event never comes).
 */
function announcement(type: string, legacyId: string) {
  let count = 0;
  let resolve: () => void = () => undefined;
  const seen = new Promise<void>((done) => {
    resolve = done;
  });
  return {
    seen,
    count: () => count,
    onEvent: (event: DualWriteEvent) => {
      if (event.type !== type || !('legacyId' in event) || event.legacyId !== legacyId) return;
      count += 1;
      resolve();
    },
  };
}

beforeEach(() => {
  writer = writerWith();
});

afterAll(async () => {
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
  await server.close();
});

describe('a journal statement whose backend is terminated', () => {
  it('in a mirror is retried and applied, not dead-lettered', async () => {
    const row = { id: 'mirror-1', first_name: 'Ada', last_name: 'One' };
    const { legacyId } = await writer.create('Patient', row, north);
    await writer.drain({ timeoutMs: 10_000 });
    await writer.update('Patient', legacyId, { ...row, last_name: 'Two' }, north);
    // The statement that marks what a lease is about to write to a linked copy: a journal call
    // in the middle of the mirror.
    terminated.failNext(/SET applying_hash/);
    const before = terminated.failed;
    await writer.drain({ timeoutMs: 10_000 });
    expect(terminated.failed).toBe(before + 1);
    expect(await writer.deadLetters()).toEqual([]);
    const copies = await medplumCopies(createMedplumClient({ baseUrl: server.baseUrl }), legacyId);
    expect(copies.map((copy) => copy.name?.[0]?.family)).toEqual(['Two']);
  });

  it("in recording a mirror's result is retried at once, not left until the lease expires", async () => {
    // The completion fails twice (the group commit's statement, then the same lease alone): the
    // mirror's writes are done, and the lease would otherwise stand for its 30 s.
    terminated.failNext(/WITH entry AS MATERIALIZED/, 2);
    const before = terminated.failed;
    const { legacyId } = await writer.create(
      'Patient',
      { id: 'record-1', first_name: 'Ada', last_name: 'One' },
      north,
    );
    const report = await writer.drain({ timeoutMs: 15_000 });
    expect(terminated.failed).toBe(before + 2);
    expect(report).toMatchObject({
      applied: 1,
      timedOut: false,
      remaining: { pending: 0, leased: 0, dead: 0 },
    });
    const copies = await medplumCopies(createMedplumClient({ baseUrl: server.baseUrl }), legacyId);
    expect(copies).toHaveLength(1);
  });

  it("in recording a failed attempt's retry is retried at once, and the entry applied after", async () => {
    server.faults.failNext(1, 503, { methods: ['POST', 'PUT'] });
    terminated.failNext(/SET attempts = attempts \+ 1/);
    const before = terminated.failed;
    const { legacyId } = await writer.create(
      'Patient',
      { id: 'record-2', first_name: 'Ada', last_name: 'Two' },
      north,
    );
    const report = await writer.drain({ timeoutMs: 15_000 });
    expect(terminated.failed).toBe(before + 1);
    expect(report).toMatchObject({ retried: 1, applied: 1, timedOut: false });
    expect(report.remaining).toEqual({ pending: 0, leased: 0, dead: 0 });
    const copies = await medplumCopies(createMedplumClient({ baseUrl: server.baseUrl }), legacyId);
    expect(copies).toHaveLength(1);
  });

  it('in recording a result whose answer was lost (it committed) leaves one copy and nothing owed', async () => {
    terminated.loseAnswerNext(/WITH entry AS MATERIALIZED/);
    const before = terminated.failed;
    const { legacyId } = await writer.create(
      'Patient',
      { id: 'record-3', first_name: 'Ada', last_name: 'Three' },
      north,
    );
    const report = await writer.drain({ timeoutMs: 15_000 });
    expect(terminated.failed).toBe(before + 1);
    expect(report.timedOut).toBe(false);
    expect(report.remaining).toEqual({ pending: 0, leased: 0, dead: 0 });
    expect(await store.getLink('Patient', legacyId)).toMatchObject({ legacyId });
    const copies = await medplumCopies(createMedplumClient({ baseUrl: server.baseUrl }), legacyId);
    expect(copies).toHaveLength(1);
  });

  it('in recording a dead letter whose COMMIT answer was lost: one letter, counted and announced once', async () => {
    // The mirror is refused for good (a 400), so the lease ends in a dead letter; the
    // transaction that moves the entry to the letters commits, and its answer is lost.
    server.faults.failNext(1, 400, { methods: ['POST', 'PUT'] });
    terminated.loseCommitAnswerNext(/INSERT INTO \S*dead_letters/);
    const before = terminated.failed;
    const announced = announcement('dead-letter', 'letter-1');
    const watched = writerWith({ onEvent: announced.onEvent });
    const { legacyId } = await watched.create(
      'Patient',
      { id: 'letter-1', first_name: 'Ada', last_name: 'Letter' },
      north,
    );
    const report = await watched.drain({ timeoutMs: 15_000 });
    expect(terminated.failed).toBe(before + 1);
    expect(report).toMatchObject({ deadLettered: 1, timedOut: false });
    expect(report.remaining).toMatchObject({ pending: 0, leased: 0 });
    expect((await watched.deadLetters()).filter((letter) => letter.legacyId === legacyId)).toHaveLength(1);
    // Events are recorded after the lease ends, without holding it up: wait for this one.
    await announced.seen;
    expect(announced.count()).toBe(1);
    const stored = await store.listEvents({ type: 'dead-letter' });
    expect(stored.filter((event) => event.legacyId === legacyId)).toHaveLength(1);
  });

  it('in recording a review whose COMMIT answer was lost: its conflict report and review Task all the same', async () => {
    const announced = announcement('dead-letter', 'review-1');
    const reviewing = writerWith({ resolver: manualReview({ task: true }), onEvent: announced.onEvent });
    const direct = createMedplumClient({ baseUrl: server.baseUrl });
    const row = { id: 'review-1', first_name: 'Ada', last_name: 'One' };
    const { legacyId } = await reviewing.create('Patient', row, north);
    await reviewing.drain({ timeoutMs: 10_000 });
    // Edited in Medplum behind the writer's back, then in the legacy system: a conflict left
    // to an operator.
    const [copy] = await medplumCopies(direct, legacyId);
    await direct.updateResource({ ...copy!, gender: 'female' });
    await reviewing.update('Patient', legacyId, { ...row, last_name: 'Two' }, north);
    terminated.loseCommitAnswerNext(/INSERT INTO \S*dead_letters/);
    const before = terminated.failed;
    const report = await reviewing.drain({ timeoutMs: 15_000 });
    expect(terminated.failed).toBe(before + 1);
    expect(report).toMatchObject({ deadLettered: 1, timedOut: false });
    const letters = (await reviewing.deadLetters()).filter((letter) => letter.legacyId === legacyId);
    expect(letters).toMatchObject([{ reason: { name: 'ReviewRequiredError' } }]);
    const conflicts = await store.listEvents({ type: 'conflict' });
    expect(conflicts.filter((event) => event.legacyId === legacyId)).toHaveLength(1);
    await announced.seen;
    expect(announced.count()).toBe(1);
    const deadLetterEvents = await store.listEvents({ type: 'dead-letter' });
    expect(deadLetterEvents.filter((event) => event.legacyId === legacyId)).toHaveLength(1);
    const tasks = await direct.searchResources(
      'Task',
      { identifier: `${REVIEW_TASK_SYSTEM}|` },
      { cache: 'no-cache' },
    );
    expect(
      tasks.filter((task) => task.identifier?.[0]?.value?.startsWith(`Patient/${legacyId}@`)),
    ).toHaveLength(1);
  });

  it('in outbox() rejects with a retryable UnavailableError naming the SQLSTATE', async () => {
    terminated.failNext(/AS pending/);
    const error: unknown = await writer.outbox().catch((err: unknown) => err);
    expect(error).toBeInstanceOf(UnavailableError);
    expect(error).toMatchObject({ retryable: true, code: '57P01' });
  });

  it('in deadLetters() rejects with a typed error', async () => {
    terminated.failNext(/dead_letters/);
    const error: unknown = await writer.deadLetters().catch((err: unknown) => err);
    expect(error).toBeInstanceOf(UnavailableError);
  });

  it('in a write call rejects with a typed error, and the same call succeeds again', async () => {
    terminated.failNext(/INSERT INTO .*outbox/s);
    const row = { id: 'write-1', first_name: 'Ada', last_name: 'Two' };
    const error: unknown = await writer.create('Patient', row, north).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(DualWriteError);
    expect(error).toMatchObject({ name: 'UnavailableError', retryable: true });
    await expect(writer.create('Patient', row, north)).resolves.toMatchObject({ legacyId: 'write-1' });
  });
});

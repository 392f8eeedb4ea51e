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
  UnavailableError,
  createMedplumClient,
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

beforeEach(() => {
  writer = new DualWriter<Ctx, PatientRow>({
    legacy: new MemoryLegacyAdapter<PatientRow>(),
    medplum: createMedplumClient({ baseUrl: server.baseUrl }),
    mappings: [patientMapping],
    plan: new CutoverPlan<Ctx>({ default: 'dual-write', unitOf: (ctx) => ctx.unit }),
    store,
    mirror: 'async',
    retry: { retries: 0 },
    drainer: { pollIntervalMs: 5, backoff: { minMs: 1, maxMs: 5 } },
  });
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

/**
 * Issue 15 §3: spans for a write and its mirror, linked across the outbox, recorded by the
 * SDK's tracer provider into its in-memory exporter.
 */
import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  TracerProvider,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { clinicPatientMapping } from '../../examples/clinic-mapping.ts';
import {
  CutoverPlan,
  DualWriter,
  PostgresStore,
  PostgresTableAdapter,
  createMedplumClient,
  sqlClientFromPg,
  type PostgresTableRow,
} from '../../src/index.ts';
import {
  startFhirTestServer,
  type FhirTestServer,
  type MemoryLegacyAdapter,
} from '../../src/testing/index.ts';
import { openClinicWriter } from '../harness/clinic-writer.ts';
import type { PatientRow } from '../harness/patient-fixture.ts';
import { north, startWriterFixture, type WriterFixture } from '../harness/writer-fixture.ts';

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const run = `dw_traces_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
const MARKERS = ['Zqxmarker', 'p-phi-7'];

const contextManager = new AsyncLocalStorageContextManager();
const exporter = new InMemorySpanExporter();
const tracerProvider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
let fixture: WriterFixture<MemoryLegacyAdapter<PatientRow>> | undefined;

beforeAll(() => {
  context.setGlobalContextManager(contextManager.enable());
});
afterAll(async () => {
  await tracerProvider.shutdown();
  context.disable();
});
afterEach(async () => {
  await fixture?.writer.stop();
  await fixture?.close();
  fixture = undefined;
  exporter.reset();
});

const named = (name: string): ReadableSpan[] => exporter.getFinishedSpans().filter((s) => s.name === name);

/** No attribute of any span holds a marker value or id. */
function expectNoValues(): void {
  const shown = JSON.stringify(exporter.getFinishedSpans().map((s) => [s.name, s.attributes]));
  for (const marker of MARKERS) expect(shown).not.toContain(marker);
}

describe('traces', () => {
  it('an inline mirror’s span is a child of the write’s span and links to it', async () => {
    fixture = await startWriterFixture({ writer: { telemetry: { tracerProvider } } });
    await fixture.writer.create(
      'Patient',
      { id: 'p-phi-7', first_name: 'Ada', last_name: 'Zqxmarker' },
      north,
    );
    const [write] = named('dualwrite.write');
    const [mirror] = named('dualwrite.mirror');
    expect(write?.attributes).toEqual({
      operation: 'create',
      resource_type: 'Patient',
      unit: 'north',
      stage: 'dual-write',
      authority: 'legacy',
    });
    expect(mirror?.attributes).toMatchObject({
      unit: 'north',
      resource_type: 'Patient',
      target: 'medplum',
      attempt: 1,
      outcome: 'applied',
    });
    expect(mirror?.parentSpanContext?.spanId).toBe(write?.spanContext().spanId);
    expect(mirror?.links.map((link) => link.context.spanId)).toEqual([write?.spanContext().spanId]);
    expectNoValues();
  });

  it('a drained mirror runs in its own trace, linked to the write that owed it', async () => {
    fixture = await startWriterFixture({ writer: { telemetry: { tracerProvider }, mirror: 'async' } });
    await fixture.writer.create('Patient', { id: 'p-1', first_name: 'Ada', last_name: 'Lovelace' }, north);
    expect(named('dualwrite.mirror')).toEqual([]);
    await fixture.writer.drain();
    const [write] = named('dualwrite.write');
    const [mirror] = named('dualwrite.mirror');
    expect(mirror?.spanContext().traceId).not.toBe(write?.spanContext().traceId);
    expect(mirror?.links.map((link) => link.context)).toMatchObject([
      { traceId: write?.spanContext().traceId, spanId: write?.spanContext().spanId },
    ]);
  });

  it('a failed mirror’s span says why by error class, never by message', async () => {
    fixture = await startWriterFixture({ writer: { telemetry: { tracerProvider } } });
    fixture.server.faults.failNext(1, 400);
    await fixture.writer
      .create('Patient', { id: 'p-phi-7', first_name: 'Ada', last_name: 'Zqxmarker' }, north)
      .catch(() => undefined);
    const [mirror] = named('dualwrite.mirror');
    const [write] = named('dualwrite.write');
    expect(mirror?.attributes).toMatchObject({ outcome: 'dead-letter', 'error.type': 'RejectedError' });
    expect(mirror?.status.code).toBe(2);
    expect(write?.attributes['error.type']).toBe('MirrorError');
    expectNoValues();
  });

  describe('across instances on PostgreSQL', () => {
    let pool: pg.Pool;
    let server: FhirTestServer;
    beforeAll(async () => {
      pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
      server = await startFhirTestServer();
    });
    afterAll(async () => {
      await pool.query(`DROP SCHEMA IF EXISTS "${run}" CASCADE`);
      await pool.query(`DROP TABLE IF EXISTS ${run}_patients`);
      await pool.end();
      await server.close();
    });

    it('the write’s context is stored with the entry (in the legacy write’s transaction) and the other instance’s mirror links to it', async () => {
      const options = {
        sql: sqlClientFromPg(pool),
        table: `${run}_patients`,
        schema: run,
        baseUrl: server.baseUrl,
        system: 'https://clinic.example.org/patient-id',
      };
      const app = await openClinicWriter({ ...options, writer: { telemetry: { tracerProvider } } });
      // Another instance: its own store and adapter over the same database.
      const worker = new DualWriter<{ clinic: string }, PostgresTableRow>({
        legacy: new PostgresTableAdapter({ sql: options.sql, tables: { Patient: { table: options.table } } }),
        medplum: createMedplumClient({ baseUrl: server.baseUrl }),
        mappings: [clinicPatientMapping(options.system)],
        plan: new CutoverPlan<{ clinic: string }>({ default: 'dual-write', unitOf: (ctx) => ctx.clinic }),
        store: await PostgresStore.open({ sql: options.sql, schema: run }),
        telemetry: { tracerProvider },
      });
      const created = await app.writer.create(
        'Patient',
        { clinic: 'north', first_name: 'Ada', last_name: 'Lovelace' },
        { clinic: 'north' },
      );
      await app.writer.update(
        'Patient',
        created.legacyId,
        { clinic: 'north', first_name: 'Ada', last_name: 'King' },
        { clinic: 'north' },
      );
      await worker.drain();
      const writes = named('dualwrite.write');
      const [mirror] = named('dualwrite.mirror');
      expect(writes.map((s) => s.attributes.operation)).toEqual(['create', 'update']);
      // The entry coalesced both writes: its mirror links to the latest.
      expect(mirror?.links.map((link) => link.context.spanId)).toEqual([writes[1]?.spanContext().spanId]);
      expect(mirror?.attributes.outcome).toBe('applied');
    });
  });
});

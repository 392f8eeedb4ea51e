import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMedplumClient, sqlClientFromPg, type DualWriteEvent } from '../../src/index.ts';
import { startFhirTestServer, type FhirTestServer } from '../../src/testing/index.ts';
import { openClinicWriter } from '../harness/clinic-writer.ts';

const SYSTEM = 'https://clinic.example.org/patient-id';
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const run = `dw_outage_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;

let admin: pg.Pool;
let pool: pg.Pool;
let server: FhirTestServer;

beforeAll(async () => {
  admin = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
  pool = new pg.Pool({ connectionString: DATABASE_URL, max: 6, application_name: run });
  // A pool's idle connections that the server drops report here; pg requires a listener.
  pool.on('error', () => undefined);
  server = await startFhirTestServer();
});

afterAll(async () => {
  await admin.query(`DROP SCHEMA IF EXISTS "${run}" CASCADE`);
  await admin.query(`DROP TABLE IF EXISTS ${run}_patients`);
  await pool.end();
  await admin.end();
  await server.close();
});

describe('the background drainer while the journal database drops its connections', () => {
  it('goes on after each drop, reporting it without a message, and mirrors every record once', async () => {
    const table = `${run}_patients`;
    const events: DualWriteEvent[] = [];
    const { writer, store } = await openClinicWriter({
      sql: sqlClientFromPg(pool),
      table,
      schema: run,
      baseUrl: server.baseUrl,
      system: SYSTEM,
      writer: {
        drainer: { concurrency: 4, pollIntervalMs: 10, leaseMs: 500, backoff: { minMs: 5, maxMs: 50 } },
        onEvent: (event) => events.push(event),
      },
    });
    const ids: string[] = [];
    for (let i = 0; i < 60; i++) {
      const row = { clinic: 'north', first_name: `F${i}`, last_name: `L${i}` };
      ids.push((await writer.create('Patient', row, { clinic: 'north' })).legacyId);
    }
    // Slow mirrors, so that connections are dropped while statements run.
    server.faults.latency(5);
    writer.start();
    let dropped = 0;
    for (let i = 0; i < 5; i++) {
      await new Promise((resolve) => setTimeout(resolve, 40));
      const { rows } = await admin.query<{ n: number }>(
        `SELECT count(pg_catalog.pg_terminate_backend(pid))::int AS n FROM pg_catalog.pg_stat_activity
         WHERE application_name = $1`,
        [run],
      );
      dropped += rows[0]?.n ?? 0;
    }
    expect(dropped).toBeGreaterThan(0);
    // This test's own queries may meet a dropped connection too: it asks again.
    let outbox = { pending: 1, leased: 0, dead: 0 };
    for (let i = 0; i < 300 && outbox.pending + outbox.leased > 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      outbox = await writer.outbox().catch(() => outbox);
    }
    await writer.stop();
    server.faults.latency(0);
    expect(await writer.outbox()).toEqual({ pending: 0, leased: 0, dead: 0 });
    const client = createMedplumClient({ baseUrl: server.baseUrl });
    for (const id of ids) {
      const copies = await client.searchResources(
        'Patient',
        { identifier: `${SYSTEM}|${id}` },
        { cache: 'no-cache' },
      );
      expect(copies).toHaveLength(1);
    }
    for (const event of events.filter((e) => e.type === 'journal-error')) {
      expect(event.error).toMatch(/^\w+( \([0-9A-Z]+\))?$/);
    }
    await store.close();
  });
});

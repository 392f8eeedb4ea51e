/**
 * `npm run demo`: two clinics of one organisation in different stages of their move to
 * Medplum, a few hundred patients created and updated through one DualWriter while Medplum
 * misbehaves, and a count of what reached each side.
 *
 * Embedded by default: the legacy clinic database is PGlite (PostgreSQL in process) and
 * Medplum is the library's HTTP FHIR test server, with injected failures. Real systems:
 *   DATABASE_URL=postgres://…                                 a PostgreSQL server
 *   MEDPLUM_BASE_URL, MEDPLUM_CLIENT_ID, MEDPLUM_CLIENT_SECRET  a Medplum project's client
 */
import { randomUUID } from 'node:crypto';
import type { MedplumClient } from '@medplum/core';
import type { Patient } from '@medplum/fhirtypes';
import {
  CutoverPlan,
  DualWriter,
  PostgresStore,
  PostgresTableAdapter,
  createMedplumClient,
  sqlClientFromPg,
  sqlClientFromPglite,
  type DualWriteEvent,
  type PostgresTableRow,
  type SqlClient,
  type WriteResult,
} from '../src/index.ts';
import { startFhirTestServer, type FhirTestServer } from '../src/testing/index.ts';
import { CLINIC_TABLE_SQL, clinicPatientMapping } from './clinic-mapping.ts';

interface Ctx {
  clinic: 'north' | 'south';
}

const PATIENTS_PER_CLINIC = 150;
const CONCURRENCY = 8;
const runId = randomUUID().slice(0, 8);
const table = `demo_patients_${runId}`;

const FIRST = ['Ada', 'Grace', 'Katherine', 'Mary', 'Dorothy', 'Hedy', 'Radia', 'Frances', 'Barbara', 'Joan'];
const LAST = [
  'Lovelace',
  'Hopper',
  'Johnson',
  'Jackson',
  'Vaughan',
  'Lamarr',
  'Perlman',
  'Allen',
  'Liskov',
  'Clarke',
];

async function openLegacy(): Promise<{ sql: SqlClient; where: string; close: () => Promise<void> }> {
  const url = process.env.DATABASE_URL;
  if (url !== undefined && url !== '') {
    const { default: pg } = await import('pg');
    const pool = new pg.Pool({ connectionString: url, max: CONCURRENCY });
    return {
      sql: sqlClientFromPg(pool),
      where: `PostgreSQL (DATABASE_URL), table ${table}`,
      close: () => pool.end(),
    };
  }
  const { PGlite } = await import('@electric-sql/pglite');
  const db = new PGlite();
  return { sql: sqlClientFromPglite(db), where: 'PGlite (embedded PostgreSQL)', close: () => db.close() };
}

async function openMedplum(): Promise<{
  medplum: MedplumClient;
  server: FhirTestServer | undefined;
  where: string;
}> {
  const baseUrl = process.env.MEDPLUM_BASE_URL;
  if (baseUrl !== undefined && baseUrl !== '') {
    const medplum = createMedplumClient({ baseUrl });
    await medplum.startClientLogin(
      process.env.MEDPLUM_CLIENT_ID ?? '',
      process.env.MEDPLUM_CLIENT_SECRET ?? '',
    );
    return { medplum, server: undefined, where: `Medplum at ${baseUrl}` };
  }
  const server = await startFhirTestServer({ seed: 7 });
  // The failures a real deployment sees: overload, Medplum's transient serialisation 409s,
  // dropped connections and a rate limit (and, further down, a short outage mid-run).
  server.faults
    .failShare(0.08, 503)
    .serializationFailureShare(0.04)
    .dropShare(0.02)
    .failNext(3, 429, { rateLimitResetSeconds: 1 })
    .htmlBadGatewayNext(2);
  return {
    medplum: createMedplumClient({ baseUrl: server.baseUrl }),
    server,
    where: 'in-process FHIR server (fhir-router) with injected faults',
  };
}

/** Runs `task` over `items` with at most `limit` in flight. */
async function eachLimited<T>(
  items: readonly T[],
  limit: number,
  task: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await task(item);
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
}

async function main(): Promise<void> {
  const started = Date.now();
  const legacyDb = await openLegacy();
  const { medplum, server, where } = await openMedplum();
  await legacyDb.sql.query(CLINIC_TABLE_SQL(table));
  const identifierSystem = `https://clinic.example.org/demo/${runId}/patient-id`;

  const legacy = new PostgresTableAdapter({ sql: legacyDb.sql, tables: { Patient: { table } } });
  const mapping = {
    ...clinicPatientMapping(identifierSystem),
    // South is live: Medplum is written first, so new patients draw their legacy id from the
    // legacy table's own sequence before anything is written.
    newLegacyId: async (): Promise<string> => {
      const { rows } = await legacyDb.sql.query<{ id: string }>(
        `select nextval(pg_get_serial_sequence('${table}', 'id'))::text as id`,
      );
      return rows[0]?.id ?? '';
    },
  };
  const plan = new CutoverPlan<Ctx>({
    default: 'legacy-only',
    units: { north: 'dual-write', south: 'live' },
    unitOf: (ctx) => ctx.clinic,
  });
  const retries = new Map<string, number>();
  const onEvent = (event: DualWriteEvent): void => {
    if (event.type === 'retry') {
      const key = `${event.side} ${event.status ?? 'no response'}`;
      retries.set(key, (retries.get(key) ?? 0) + 1);
    }
  };
  // The journal lives in the legacy database itself, in its own schema: each legacy write and
  // its outbox entry commit in one transaction.
  const store = await PostgresStore.open({ sql: legacyDb.sql, schema: `dualwrite_demo_${runId}` });
  const writer = new DualWriter<Ctx, PostgresTableRow>({
    legacy,
    medplum,
    mappings: [mapping],
    plan,
    store,
    // A short inline budget: when Medplum is slow or down, calls return and the drainer finishes.
    syncBudgetMs: 2000,
    retry: { retries: 8, minTimeoutMs: 20, maxTimeoutMs: 400, maxRateLimitWaitMs: 1000 },
    drainer: { concurrency: 4, pollIntervalMs: 50, backoff: { minMs: 50, maxMs: 1000 } },
    onEvent,
  });
  writer.start();

  console.log(`legacy:  ${legacyDb.where}`);
  console.log(`medplum: ${where}`);
  console.log(`stages:  north = dual-write (legacy first), south = live (Medplum first)\n`);

  const results: { ctx: Ctx; result: WriteResult<PostgresTableRow> }[] = [];
  const failures: { clinic: string; error: string }[] = [];
  const record = async (ctx: Ctx, write: () => Promise<WriteResult<PostgresTableRow>>): Promise<void> => {
    try {
      results.push({ ctx, result: await write() });
    } catch (err) {
      failures.push({
        clinic: ctx.clinic,
        error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
      });
    }
  };

  // 1. Staff in both clinics register patients: north through legacy-shaped calls (its
  //    screens still speak the legacy schema), south through FHIR-shaped calls.
  const registrations = Array.from({ length: PATIENTS_PER_CLINIC * 2 }, (_, i) => i);
  await eachLimited(registrations, CONCURRENCY, async (i) => {
    if (i === PATIENTS_PER_CLINIC) server?.faults.outage(300);
    const clinic = i % 2 === 0 ? 'north' : 'south';
    const first = FIRST[i % FIRST.length] ?? 'Ada';
    const last = `${LAST[(i * 7) % LAST.length] ?? 'Lovelace'}-${i}`;
    const birthDate = `19${String(40 + (i % 60)).padStart(2, '0')}-0${1 + (i % 9)}-1${i % 10}`;
    if (clinic === 'north') {
      await record({ clinic }, () =>
        writer.create(
          'Patient',
          {
            clinic,
            first_name: first,
            last_name: last,
            birth_date: birthDate,
            notes: 'registered at the desk',
          },
          { clinic },
        ),
      );
    } else {
      const patient: Patient = {
        resourceType: 'Patient',
        name: [{ given: [first], family: last }],
        birthDate,
        managingOrganization: { display: clinic },
      };
      await record({ clinic }, () => writer.createResource(patient, { clinic }));
    }
  });

  // 2. Every other patient gets a corrected surname, in the shape each clinic uses.
  const created = results.filter(({ result }) => result.operation === 'create');
  await eachLimited(
    created.filter((_, i) => i % 2 === 0),
    CONCURRENCY,
    async ({ ctx, result }) => {
      if (ctx.clinic === 'north' && result.row !== undefined) {
        const row = result.row;
        await record(ctx, () =>
          writer.update(
            'Patient',
            result.legacyId,
            { ...row, last_name: `${String(row.last_name)}-corrected` },
            ctx,
          ),
        );
      } else if (result.resource !== undefined) {
        const patient = result.resource as Patient;
        const family = `${patient.name?.[0]?.family ?? ''}-corrected`;
        await record(ctx, () =>
          writer.updateResource({ ...patient, name: [{ ...patient.name?.[0], family }] }, ctx),
        );
      }
    },
  );

  // 3. Whatever the drainer still holds (mirrors that outlived their call's budget) is applied
  //    with the faults still on; then what reached each side is compared record by record, with
  //    the faults off: this is the auditor reading, not the workload.
  const pendingAtEnd = await writer.outbox();
  const drained = await writer.drain({ timeoutMs: 30_000 });
  await writer.stop();
  const injected = server === undefined ? undefined : { ...server.faults.stats.injected };
  server?.faults.clear();
  const { rows } = await legacyDb.sql.query<{
    id: number;
    clinic: string;
    last_name: string;
    birth_date: string | null;
  }>(`select id, clinic, last_name, birth_date::text as birth_date from ${table}`);
  const copies = await medplum.searchResources(
    'Patient',
    { identifier: `${identifierSystem}|`, _count: '1000' },
    { cache: 'no-cache' },
  );
  const byLegacyId = new Map<string, Patient>();
  for (const copy of copies) {
    const id = copy.identifier?.find((identifier) => identifier.system === identifierSystem)?.value;
    if (id !== undefined) byLegacyId.set(id, copy);
  }

  console.log('clinic  stage       writes  failed  legacy rows  Medplum copies  agree');
  for (const clinic of ['north', 'south'] as const) {
    const own = rows.filter((row) => row.clinic === clinic);
    const agree = own.filter((row) => {
      const copy = byLegacyId.get(String(row.id));
      return copy?.name?.[0]?.family === row.last_name && (copy.birthDate ?? null) === row.birth_date;
    }).length;
    const mirrored = own.filter((row) => byLegacyId.has(String(row.id))).length;
    console.log(
      [
        clinic.padEnd(7),
        plan.stageOf(clinic, 'Patient').padEnd(11),
        String(results.filter((r) => r.ctx.clinic === clinic).length).padStart(6),
        String(failures.filter((f) => f.clinic === clinic).length).padStart(7),
        String(own.length).padStart(12),
        String(mirrored).padStart(15),
        `${agree}/${own.length}`.padStart(6),
      ].join(' '),
    );
  }
  console.log(
    `\nretries by side and status: ${[...retries].map(([k, n]) => `${k} ×${n}`).join(', ') || 'none'}`,
  );
  if (injected !== undefined) {
    console.log(
      `faults injected by the FHIR server: ${Object.entries(injected)
        .map(([k, n]) => `${k} ×${n}`)
        .join(', ')}`,
    );
  }
  console.log(
    `outbox: ${pendingAtEnd.pending} mirrors pending when the calls finished, ${drained.applied} applied by the final drain; ` +
      `${drained.remaining.pending} pending and ${drained.remaining.dead} dead letters left`,
  );
  for (const failure of failures.slice(0, 5)) console.log(`failed: ${failure.clinic}: ${failure.error}`);
  console.log(`\n${results.length} writes in ${((Date.now() - started) / 1000).toFixed(1)} s`);

  await server?.close();
  if (process.env.DATABASE_URL) {
    await legacyDb.sql.query(`drop table ${table}`);
    await legacyDb.sql.query(`drop schema dualwrite_demo_${runId} cascade`);
  }
  await legacyDb.close();
  if (failures.length > 0 || drained.remaining.pending > 0 || drained.remaining.dead > 0)
    process.exitCode = 1;
}

await main();

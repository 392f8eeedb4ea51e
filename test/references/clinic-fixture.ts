import { PGlite } from '@electric-sql/pglite';
import type { MedplumClient } from '@medplum/core';
import type { Encounter, Observation, Patient, Resource } from '@medplum/fhirtypes';
import pg from 'pg';
import { afterEach, beforeEach } from 'vitest';
import {
  CutoverPlan,
  DualWriter,
  PostgresStore,
  createMedplumClient,
  sqlClientFromPg,
  sqlClientFromPglite,
  type DualWriteEvent,
  type DualWriterOptions,
  type ResourceMapping,
  type Stage,
  type SyncStore,
} from '../../src/index.ts';
import { MemoryLegacyAdapter, startFhirTestServer, type FhirTestServer } from '../../src/testing/index.ts';

/*
 * A clinic's three tables, keyed as OpenEMR keys them: patients by id, encounters by id with
 * the patient's id, vitals with the patient's and the encounter's ids.
 */

export interface PatientRow {
  id?: string;
  name: string;
}
export interface EncounterRow {
  id?: string;
  patient_id: string;
  date: string;
}
export interface VitalsRow {
  id?: string;
  patient_id: string;
  encounter_id: string;
  pulse: number;
}
export type ClinicRow = PatientRow | EncounterRow | VitalsRow;

export const PATIENT_SYSTEM = 'https://clinic.example.org/pid';
export const ENCOUNTER_SYSTEM = 'https://clinic.example.org/encounter';
export const VITALS_SYSTEM = 'https://clinic.example.org/vitals';

export const patients: ResourceMapping<PatientRow, Patient> = {
  resourceType: 'Patient',
  identifierSystem: PATIENT_SYSTEM,
  legacyId: (row) => row.id,
  withLegacyId: (row, id) => ({ ...row, id }),
  toFhir: (row, existing) => ({ ...existing, resourceType: 'Patient', name: [{ family: row.name }] }),
  toLegacy: (patient, existing) => ({ ...existing, name: patient.name?.[0]?.family ?? '' }),
};

export const encounters: ResourceMapping<EncounterRow, Encounter, 'subject'> = {
  resourceType: 'Encounter',
  identifierSystem: ENCOUNTER_SYSTEM,
  legacyId: (row) => row.id,
  withLegacyId: (row, id) => ({ ...row, id }),
  references: { subject: { resourceType: 'Patient', legacyKey: (row) => row.patient_id } },
  // `subject` is set by the library, resolved through the links.
  toFhir: (row, existing) => ({
    ...existing,
    resourceType: 'Encounter',
    status: 'finished',
    class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
    period: { start: row.date },
  }),
  toLegacy: (encounter, existing, { subject }) => ({
    ...existing,
    patient_id: subject ?? '',
    date: encounter.period?.start ?? '',
  }),
};

export const vitals: ResourceMapping<VitalsRow, Observation, 'subject' | 'encounter'> = {
  resourceType: 'Observation',
  identifierSystem: VITALS_SYSTEM,
  legacyId: (row) => row.id,
  withLegacyId: (row, id) => ({ ...row, id }),
  references: {
    subject: { resourceType: 'Patient', legacyKey: (row) => row.patient_id },
    encounter: { resourceType: 'Encounter', legacyKey: (row) => row.encounter_id },
  },
  toFhir: (row, existing, { encounter }) => ({
    ...existing,
    resourceType: 'Observation',
    status: 'final',
    code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] },
    // The references arrive resolved; the library places them on their elements too.
    ...(encounter === undefined ? {} : { encounter }),
    valueQuantity: { value: row.pulse, unit: '/min' },
  }),
  toLegacy: (observation, existing, { subject, encounter }) => ({
    ...existing,
    patient_id: subject ?? '',
    encounter_id: encounter ?? '',
    pulse: observation.valueQuantity?.value ?? 0,
  }),
};

export interface Ctx {
  readonly unit: string;
}
export const north: Ctx = { unit: 'north' };

/** A journal on one of the two PostgreSQL engines, fresh per test. */
export interface JournalBackend {
  readonly name: string;
  open(): Promise<{ store: PostgresStore; close: () => Promise<void> }>;
}

let pglite: Promise<PGlite> | undefined;
let schemas = 0;

/**
 * PGlite: one database per test file, a schema per test (starting PGlite costs seconds on a busy
 * machine); PostgreSQL: the server of DATABASE_URL, a schema per test.
 */
export const journalBackends: readonly JournalBackend[] = [
  {
    name: 'PGlite',
    open: async () => {
      pglite ??= PGlite.create();
      const sql = sqlClientFromPglite(await pglite);
      schemas += 1;
      const schema = `refs_${schemas}`;
      const store = await PostgresStore.open({ sql, schema });
      return {
        store,
        close: async () => {
          await sql.query(`DROP SCHEMA ${schema} CASCADE`);
        },
      };
    },
  },
  {
    name: 'PostgreSQL',
    open: async () => {
      const pool = new pg.Pool({
        connectionString: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
        max: 4,
      });
      const schema = `dw_refs_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
      const store = await PostgresStore.open({ sql: sqlClientFromPg(pool), schema });
      return {
        store,
        close: async () => {
          await pool.query(`DROP SCHEMA ${schema} CASCADE`);
          await pool.end();
        },
      };
    },
  },
];

/** The clinic's writer over the HTTP FHIR test server, an in-memory legacy system and a journal. */
export interface Clinic {
  readonly server: FhirTestServer;
  readonly direct: MedplumClient;
  readonly legacy: MemoryLegacyAdapter<ClinicRow>;
  readonly plan: CutoverPlan<Ctx>;
  readonly events: DualWriteEvent[];
  writer: DualWriter<Ctx, ClinicRow>;
  /** A new writer over the same systems and journal (an instance started after a crash). */
  restart(options?: Partial<DualWriterOptions<Ctx, ClinicRow>>): DualWriter<Ctx, ClinicRow>;
  close(): Promise<void>;
}

/**
 * Starts a clinic. Mirrors are asynchronous (the drainer applies them, so their order is the
 * outbox's), retries fast, and every mirror is read back and compared.
 */
export async function startClinic(
  store: SyncStore,
  options: { stage?: Stage; writer?: Partial<DualWriterOptions<Ctx, ClinicRow>> } = {},
): Promise<Clinic> {
  const server = await startFhirTestServer();
  const direct = createMedplumClient({ baseUrl: server.baseUrl });
  const legacy = new MemoryLegacyAdapter<ClinicRow>();
  const plan = new CutoverPlan<Ctx>({ default: options.stage ?? 'dual-write', unitOf: (ctx) => ctx.unit });
  const events: DualWriteEvent[] = [];
  const open = (more: Partial<DualWriterOptions<Ctx, ClinicRow>> = {}) =>
    new DualWriter<Ctx, ClinicRow>({
      legacy,
      medplum: createMedplumClient({ baseUrl: server.baseUrl }),
      mappings: [patients, encounters, vitals],
      plan,
      store,
      mirror: 'async',
      retry: { retries: 2, minTimeoutMs: 5, maxTimeoutMs: 20, maxRateLimitWaitMs: 50 },
      drainer: { pollIntervalMs: 20, backoff: { minMs: 10, maxMs: 50 } },
      divergence: { verifySampleRate: 1 },
      onEvent: (event) => events.push(event),
      ...options.writer,
      ...more,
    });
  const clinic: Clinic = {
    server,
    direct,
    legacy,
    plan,
    events,
    writer: open(),
    restart: (more) => {
      clinic.writer = open(more);
      return clinic.writer;
    },
    close: async () => {
      await clinic.writer.stop();
      await server.close();
    },
  };
  return clinic;
}

/** The one Medplum copy of a legacy record, read directly. */
export async function copyOf<R extends Resource>(
  client: MedplumClient,
  resourceType: R['resourceType'],
  system: string,
  legacyId: string,
): Promise<R | undefined> {
  const found = await client.searchResources(
    resourceType,
    { identifier: `${system}|${legacyId}` },
    { cache: 'no-cache' },
  );
  if (found.length > 1) throw new Error(`${found.length} copies of ${resourceType} ${legacyId}`);
  return found[0] as R | undefined;
}

/** A writer over the HTTP FHIR test server, an in-memory legacy system and a journal. */
export interface Systems<L extends object> {
  readonly server: FhirTestServer;
  readonly direct: MedplumClient;
  readonly legacy: MemoryLegacyAdapter<L>;
  readonly events: DualWriteEvent[];
  readonly writer: DualWriter<Ctx, L>;
}

/**
 * Per test: a fresh journal on `backend`, and a way to start a writer over it (mirrors
 * asynchronous, fast retries, every mirror read back), stopped after the test.
 */
export function useSystems<L extends object>(
  backend: JournalBackend,
): {
  readonly store: PostgresStore;
  start(
    mappings: readonly ResourceMapping<L>[],
    options?: { readonly stage?: Stage; readonly idField?: string },
  ): Promise<Systems<L>>;
} {
  let journal: { store: PostgresStore; close: () => Promise<void> } | undefined;
  let started: Systems<L> | undefined;
  beforeEach(async () => {
    journal = await backend.open();
  });
  afterEach(async () => {
    await started?.writer.stop();
    await started?.server.close();
    started = undefined;
    await journal?.close();
  });
  const current = (): PostgresStore => {
    if (journal === undefined) throw new Error('no journal outside a test');
    return journal.store;
  };
  return {
    get store() {
      return current();
    },
    start: async (mappings, options = {}) => {
      const server = await startFhirTestServer();
      const legacy = new MemoryLegacyAdapter<L>({ idField: options.idField ?? 'id' });
      const events: DualWriteEvent[] = [];
      const writer = new DualWriter<Ctx, L>({
        legacy,
        medplum: createMedplumClient({ baseUrl: server.baseUrl }),
        mappings,
        plan: new CutoverPlan<Ctx>({ default: options.stage ?? 'dual-write', unitOf: (ctx) => ctx.unit }),
        store: current(),
        mirror: 'async',
        retry: { retries: 2, minTimeoutMs: 5, maxTimeoutMs: 20, maxRateLimitWaitMs: 50 },
        drainer: { pollIntervalMs: 20, backoff: { minMs: 10, maxMs: 50 } },
        divergence: { verifySampleRate: 1 },
        onEvent: (event) => events.push(event),
      });
      started = { server, direct: createMedplumClient({ baseUrl: server.baseUrl }), legacy, events, writer };
      return started;
    },
  };
}

import { randomUUID } from 'node:crypto';
import type { FetchLike, MedplumClient } from '@medplum/core';
import type { Patient } from '@medplum/fhirtypes';
import pg from 'pg';
import {
  CutoverPlan,
  DualWriter,
  PostgresStore,
  createMedplumClient,
  sqlClientFromPg,
  type DualWriteEvent,
  type DualWriterOptions,
  type ResourceMapping,
  type Stage,
} from '../src/index.ts';
import { MemoryLegacyAdapter } from '../src/testing/index.ts';
import { patientMapping, type PatientRow } from '../test/harness/patient-fixture.ts';
import { newBoxProject } from './server-box.ts';

/** Why the suite cannot run here (no server given, no server box), or `undefined`. */
export const notRun: string | undefined = process.env.MEDPLUM_IT_NOT_RUN;

export interface Ctx {
  readonly unit: string;
}

/** A Medplum server the suite may use: where, and the client application to log in as. */
export interface ServerAccess {
  readonly baseUrl: string;
  readonly clientId: string;
  readonly clientSecret: string;
}

/** The main server (unlimited quota when the suite started it). */
export function mainServer(): ServerAccess {
  return access('MEDPLUM');
}

/** The server with a lowered FHIR quota, when there is one. */
export function quotaServer(): (ServerAccess & { readonly points: number }) | undefined {
  if ((process.env.MEDPLUM_QUOTA_BASE_URL ?? '') === '') return undefined;
  return { ...access('MEDPLUM_QUOTA'), points: Number(process.env.MEDPLUM_QUOTA_POINTS ?? 'NaN') };
}

function access(prefix: string): ServerAccess {
  const get = (name: string): string => {
    const value = process.env[`${prefix}_${name}`];
    if (value === undefined || value === '') throw new Error(`${prefix}_${name} is not set`);
    return value;
  };
  return { baseUrl: get('BASE_URL'), clientId: get('CLIENT_ID'), clientSecret: get('CLIENT_SECRET') };
}

/**
 * The quota server under a project of its own (a new client application, so a new user with a
 * fresh quota window) when `MEDPLUM_QUOTA_NEW_PROJECTS` is `1` (the suite started the server
 * from the box, whose seeded super admin creates projects); the server as given otherwise (its
 * window then holds whatever ran before on that user).
 */
export async function freshQuotaServer(): Promise<(ServerAccess & { readonly points: number }) | undefined> {
  const server = quotaServer();
  if (server === undefined || process.env.MEDPLUM_QUOTA_NEW_PROJECTS !== '1') return server;
  return { ...server, ...(await newBoxProject(server.baseUrl, `it-${randomUUID().slice(0, 8)}`)) };
}

/** What a client's requests were answered: 429s to requests, and to entries of batches. */
export interface AnswerCount {
  readonly fetch: FetchLike;
  /** Answers by status. */
  readonly statuses: Map<number, number>;
  /** Requests answered. */
  requests(): number;
  /** Entries of batch answers answered 429. */
  entry429s(): number;
  /** Requests that met the limit: answered 429, or a batch with an entry answered 429. */
  throttledRequests(): number;
}

/** A fetch that counts its answers (see {@link AnswerCount}). */
export function countingFetch(): AnswerCount {
  const statuses = new Map<number, number>();
  let requests = 0;
  let entry429s = 0;
  let throttledRequests = 0;
  const fetchFn: FetchLike = async (url, options) => {
    const response = await fetch(url, options as RequestInit);
    requests += 1;
    statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
    if (response.status === 429) throttledRequests += 1;
    if (response.status === 200 && response.headers.get('content-type')?.includes('json') === true) {
      const entries = (await response.clone().text()).match(/"status":"429/g)?.length ?? 0;
      entry429s += entries;
      if (entries > 0) throttledRequests += 1;
    }
    return response;
  };
  return {
    fetch: fetchFn,
    statuses,
    requests: () => requests,
    entry429s: () => entry429s,
    throttledRequests: () => throttledRequests,
  };
}

/** A client logged in as the server's client application, built as the library needs it. */
export async function loggedIn(server: ServerAccess, fetchFn?: FetchLike): Promise<MedplumClient> {
  const client = createMedplumClient({
    baseUrl: server.baseUrl,
    ...(fetchFn === undefined ? {} : { fetch: fetchFn }),
  });
  await client.startClientLogin(server.clientId, server.clientSecret);
  return client;
}

/**
 * The suite's Patient mapping under an identifier system of its own: runs (and files) sharing
 * one Medplum project never see each other's records.
 */
export function runMapping(): ResourceMapping<PatientRow, Patient> & { readonly identifierSystem: string } {
  // No newLegacyId: a Patient without this run's identifier is none of the suite's business.
  return { ...patientMapping, identifierSystem: `https://legacy.example.org/it/${randomUUID()}/patient-id` };
}

/** A writer against a real Medplum, with a PostgreSQL journal and an in-memory legacy system. */
export interface RealFixture {
  readonly medplum: MedplumClient;
  /** Another client of the same application: the "Medplum app" writing behind the writer's back. */
  readonly direct: MedplumClient;
  readonly legacy: MemoryLegacyAdapter<PatientRow>;
  readonly plan: CutoverPlan<Ctx>;
  readonly store: PostgresStore;
  readonly mapping: ResourceMapping<PatientRow, Patient> & { readonly identifierSystem: string };
  readonly writer: DualWriter<Ctx, PatientRow>;
  readonly events: DualWriteEvent[];
  /** Another writer over the same journal and legacy system (a second process). */
  another(options?: Partial<DualWriterOptions<Ctx, PatientRow>>): DualWriter<Ctx, PatientRow>;
  /** Every Medplum copy of a record, read directly. */
  copies(legacyId: string): Promise<Patient[]>;
  close(): Promise<void>;
}

export async function startRealFixture(
  options: {
    readonly server?: ServerAccess;
    /** The writer's fetch (to count what it sends); the direct client uses the global one. */
    readonly fetch?: FetchLike;
    readonly stage?: Stage;
    readonly writer?: Partial<DualWriterOptions<Ctx, PatientRow>>;
  } = {},
): Promise<RealFixture> {
  const server = options.server ?? mainServer();
  const [medplum, direct] = await Promise.all([loggedIn(server, options.fetch), loggedIn(server)]);
  const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 6 });
  const schema = `dw_real_${process.pid}_${randomUUID().slice(0, 8)}`;
  await pool.query(`CREATE SCHEMA ${schema}`);
  const store = await PostgresStore.open({ sql: sqlClientFromPg(pool), schema });
  const legacy = new MemoryLegacyAdapter<PatientRow>();
  const plan = new CutoverPlan<Ctx>({ default: options.stage ?? 'dual-write', unitOf: (ctx) => ctx.unit });
  const mapping = runMapping();
  const events: DualWriteEvent[] = [];
  const writers: DualWriter<Ctx, PatientRow>[] = [];
  const another = (more: Partial<DualWriterOptions<Ctx, PatientRow>> = {}): DualWriter<Ctx, PatientRow> => {
    const writer = new DualWriter<Ctx, PatientRow>({
      legacy,
      medplum,
      mappings: [mapping],
      plan,
      store,
      onEvent: (event) => events.push(event),
      ...options.writer,
      ...more,
    });
    writers.push(writer);
    return writer;
  };
  const writer = another();
  return {
    medplum,
    direct,
    legacy,
    plan,
    store,
    mapping,
    writer,
    events,
    another,
    copies: (legacyId) =>
      direct.searchResources(
        'Patient',
        { identifier: `${mapping.identifierSystem}|${legacyId}` },
        { cache: 'no-cache' },
      ),
    close: async () => {
      await Promise.all(writers.map((w) => w.stop()));
      await pool.query(`DROP SCHEMA ${schema} CASCADE`);
      await pool.end();
    },
  };
}

export const north: Ctx = { unit: 'north' };

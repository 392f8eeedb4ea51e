import type { FetchLike, MedplumClient } from '@medplum/core';
import {
  CutoverPlan,
  DualWriter,
  MemoryStore,
  createMedplumClient,
  type DualWriteEvent,
  type DualWriterOptions,
  type LegacyAdapter,
  type Stage,
} from '../../src/index.ts';
import { MemoryLegacyAdapter, startFhirTestServer, type FhirTestServer } from '../../src/testing/index.ts';
import { patientMapping, type PatientRow } from './patient-fixture.ts';

export interface Ctx {
  unit: string;
}

/** A writer over the HTTP FHIR test server and a legacy system, with events recorded. */
export interface WriterFixture<A extends LegacyAdapter<PatientRow>> {
  readonly server: FhirTestServer;
  readonly medplum: MedplumClient;
  readonly legacy: A;
  readonly plan: CutoverPlan<Ctx>;
  readonly store: MemoryStore;
  readonly writer: DualWriter<Ctx, PatientRow>;
  readonly events: DualWriteEvent[];
  /** A second client for writes made directly in Medplum, behind the writer's back. */
  readonly direct: MedplumClient;
  close(): Promise<void>;
}

/**
 * Starts the HTTP FHIR test server and builds a writer over it. Retries are fast so fault
 * tests run quickly; everything else is the library's default.
 */
export async function startWriterFixture<
  A extends LegacyAdapter<PatientRow> = MemoryLegacyAdapter<PatientRow>,
>(
  options: {
    stage?: Stage;
    legacy?: A;
    writer?: Partial<DualWriterOptions<Ctx, PatientRow>>;
    /** Wraps the fetch of the writer's Medplum client (to hold or watch its requests). */
    fetch?: ((fetch: FetchLike) => FetchLike) | undefined;
  } = {},
): Promise<WriterFixture<A>> {
  const server = await startFhirTestServer();
  const medplum = createMedplumClient({
    baseUrl: server.baseUrl,
    ...(options.fetch === undefined ? {} : { fetch: options.fetch(globalThis.fetch.bind(globalThis)) }),
  });
  const direct = createMedplumClient({ baseUrl: server.baseUrl });
  const legacy = options.legacy ?? (new MemoryLegacyAdapter<PatientRow>() as unknown as A);
  const plan = new CutoverPlan<Ctx>({ default: options.stage ?? 'dual-write', unitOf: (ctx) => ctx.unit });
  const store = new MemoryStore();
  const events: DualWriteEvent[] = [];
  const writer = new DualWriter<Ctx, PatientRow>({
    legacy,
    medplum,
    mappings: [patientMapping],
    plan,
    store,
    retry: { retries: 4, minTimeoutMs: 5, maxTimeoutMs: 20, maxRateLimitWaitMs: 50 },
    onEvent: (event) => events.push(event),
    ...options.writer,
  });
  return { server, medplum, legacy, plan, store, writer, events, direct, close: () => server.close() };
}

export const north: Ctx = { unit: 'north' };

/** Every Medplum Patient carrying a legacy id, read directly over HTTP. */
export async function medplumCopies(
  client: MedplumClient,
  legacyId: string,
): Promise<import('@medplum/fhirtypes').Patient[]> {
  const { PATIENT_SYSTEM } = await import('./patient-fixture.ts');
  return client.searchResources(
    'Patient',
    { identifier: `${PATIENT_SYSTEM}|${legacyId}` },
    { cache: 'no-cache' },
  );
}

/**
 * Issue 10 §2: every request to either side has a time limit. A server that stops answering
 * without closing the socket (seen by stopping a real Medplum process) must not hold a call, or
 * a mirror and its lease, until the operating system gives up.
 */
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FetchLike } from '@medplum/core';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ConfigurationError,
  CutoverPlan,
  DualWriter,
  MemoryStore,
  Operator,
  QuotaPacer,
  RequestTimeoutError,
  createMedplumClient,
  type DualWriteEvent,
  type LegacyCallOptions,
} from '../../src/index.ts';
import { MemoryLegacyAdapter, startFhirTestServer, type FhirTestServer } from '../../src/testing/index.ts';
import { patientMapping, type PatientRow } from '../harness/patient-fixture.ts';
import { medplumCopies } from '../harness/writer-fixture.ts';

interface Ctx {
  readonly unit: string;
}
const north: Ctx = { unit: 'north' };
const ada: PatientRow = { id: 'p-1', first_name: 'Ada', last_name: 'Lovelace' };

let fhir: FhirTestServer | undefined;
let proxy: Server | undefined;
afterEach(async () => {
  proxy?.closeAllConnections();
  await new Promise((resolve) => (proxy === undefined ? resolve(undefined) : proxy.close(resolve)));
  await fhir?.close();
  fhir = undefined;
  proxy = undefined;
});

/**
 * A proxy in front of the FHIR test server. While `mode` is `swallow`, it forwards each request
 * (the server processes it: a create lands) and never answers; the socket stays open.
 */
async function hangingProxy(target: string, state: { mode: 'pass' | 'swallow'; swallowed: number }) {
  const upstream = new URL(target);
  proxy = createServer((req: IncomingMessage, res: ServerResponse) => {
    const forward = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        path: req.url,
        method: req.method,
        headers: req.headers,
      },
      (answer) => {
        if (state.mode === 'swallow') {
          state.swallowed += 1;
          answer.resume();
          return;
        }
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => proxy?.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/`;
}

function writerOver(
  baseUrl: string,
  legacy: MemoryLegacyAdapter<PatientRow>,
  events: DualWriteEvent[],
  stage: 'dual-write' | 'live' = 'dual-write',
  store = new MemoryStore(),
) {
  return new DualWriter<Ctx, PatientRow>({
    legacy,
    medplum: createMedplumClient({ baseUrl }),
    mappings: [patientMapping],
    plan: new CutoverPlan<Ctx>({ default: stage, unitOf: (ctx) => ctx.unit }),
    store,
    requestTimeoutMs: 150,
    retry: { retries: 1, minTimeoutMs: 5, maxTimeoutMs: 10 },
    drainer: { leaseMs: 1_000, pollIntervalMs: 5, backoff: { minMs: 5, maxMs: 20 } },
    onEvent: (event) => events.push(event),
  });
}

/** An operator with no writer over these systems, its requests limited to `requestTimeoutMs`. */
function operatorOver(
  baseUrl: string,
  legacy: MemoryLegacyAdapter<PatientRow>,
  store = new MemoryStore(),
  requestTimeoutMs = 150,
) {
  return new Operator<Ctx, PatientRow>({
    store,
    mappings: [patientMapping],
    plan: new CutoverPlan<Ctx>({ default: 'dual-write', unitOf: (ctx) => ctx.unit }),
    legacy,
    medplum: createMedplumClient({ baseUrl }),
    requestTimeoutMs,
  });
}

describe('request timeout', () => {
  it('a Medplum that takes a create and never answers: the call returns with the mirror pending, and a later drain links the one copy', async () => {
    fhir = await startFhirTestServer();
    const state = { mode: 'swallow' as 'pass' | 'swallow', swallowed: 0 };
    const baseUrl = await hangingProxy(fhir.baseUrl, state);
    const legacy = new MemoryLegacyAdapter<PatientRow>();
    const events: DualWriteEvent[] = [];
    const writer = writerOver(baseUrl, legacy, events);

    const result = await writer.create('Patient', ada, north);
    expect(result).toMatchObject({ mirror: 'pending', legacy: { action: 'created' } });
    expect(state.swallowed).toBeGreaterThan(0);
    // A timed-out write's outcome is unknown: retried as such.
    expect(events).toContainEqual(expect.objectContaining({ type: 'retry', side: 'medplum' }));

    state.mode = 'pass';
    expect(await writer.drain({ timeoutMs: 5_000 })).toMatchObject({ deadLettered: 0, timedOut: false });
    const direct = createMedplumClient({ baseUrl: fhir.baseUrl });
    const copies = await medplumCopies(direct, 'p-1');
    expect(copies).toHaveLength(1);
    expect((await writer.linkOf('Patient', 'p-1'))?.medplumId).toBe(copies[0]?.id);
  });

  it('a Medplum authority that never answers: the write call throws a retryable RequestTimeoutError naming the side and record, without values', async () => {
    fhir = await startFhirTestServer();
    const state = { mode: 'swallow' as 'pass' | 'swallow', swallowed: 0 };
    const baseUrl = await hangingProxy(fhir.baseUrl, state);
    const writer = writerOver(baseUrl, new MemoryLegacyAdapter<PatientRow>(), [], 'live');
    const error: unknown = await writer.create('Patient', ada, north).catch((err: unknown) => err);
    // A write whose answer never came: its outcome is unknown (OutcomeUnknownError wraps the
    // timeout when the write path cannot tell whether it landed).
    expect(['RequestTimeoutError', 'OutcomeUnknownError']).toContain((error as Error).name);
    expect(error).toMatchObject({ retryable: true, resourceType: 'Patient' });
    expect(RequestTimeoutError.name).toBe('RequestTimeoutError');
    expect(JSON.stringify(error)).not.toContain('Lovelace');
    expect((error as Error).message).not.toContain('Lovelace');
  });

  it('a legacy adapter that never answers gets an aborted signal; the mirror is retried later and lands once', async () => {
    fhir = await startFhirTestServer();
    const legacy = new MemoryLegacyAdapter<PatientRow>();
    let hung = true;
    const signals: AbortSignal[] = [];
    const create = legacy.create.bind(legacy);
    legacy.create = (type: string, row: PatientRow, options?: LegacyCallOptions) => {
      if (options?.signal !== undefined) signals.push(options.signal);
      return hung ? new Promise(() => undefined) : create(type, row);
    };
    const events: DualWriteEvent[] = [];
    const writer = writerOver(fhir.baseUrl, legacy, events, 'live');
    const result = await writer.create('Patient', ada, north);
    expect(result).toMatchObject({ mirror: 'pending', medplum: { action: 'created' } });
    expect(signals.length).toBeGreaterThan(0);
    expect(signals.every((signal) => signal.aborted)).toBe(true);
    expect(events).toContainEqual(expect.objectContaining({ type: 'retry', side: 'legacy' }));
    hung = false;
    expect(await writer.drain({ timeoutMs: 5_000 })).toMatchObject({ deadLettered: 0, timedOut: false });
    expect((await legacy.read('Patient', 'p-1'))?.row).toMatchObject({ last_name: 'Lovelace' });
  });

  const scope = { resourceType: 'Patient', unit: 'north', direction: 'to-medplum' } as const;
  for (const { who, backfill } of [
    {
      who: "a writer's backfill",
      backfill: (baseUrl: string, legacy: MemoryLegacyAdapter<PatientRow>, store: MemoryStore) =>
        writerOver(baseUrl, legacy, [], 'dual-write', store).backfill(scope),
    },
    {
      who: "a stand-alone operator's backfill",
      backfill: async (baseUrl: string, legacy: MemoryLegacyAdapter<PatientRow>, store: MemoryStore) => {
        await using operator = operatorOver(baseUrl, legacy, store);
        return await operator.backfill(scope);
      },
    },
  ]) {
    it(`${who} keeps its requestTimeoutMs: a Medplum that never answers fails the job with RequestTimeoutError`, async () => {
      fhir = await startFhirTestServer();
      const state = { mode: 'swallow' as 'pass' | 'swallow', swallowed: 0 };
      const baseUrl = await hangingProxy(fhir.baseUrl, state);
      const legacy = new MemoryLegacyAdapter<PatientRow>();
      await legacy.create('Patient', ada);
      const store = new MemoryStore();
      // Each search is abandoned after 150 ms and retried (six attempts, the rest is backoff);
      // with the default 10 s limit the six attempts outlast the test's minute.
      const error: unknown = await backfill(baseUrl, legacy, store).catch((err: unknown) => err);
      expect(error).toMatchObject({ name: 'RequestTimeoutError', retryable: true, resourceType: 'Patient' });
      expect((error as Error).message).toContain('within 150 ms');
      expect(state.swallowed).toBeGreaterThan(1);
      const [job] = await store.listJobs({ kind: 'backfill' });
      expect(job).toMatchObject({ state: 'failed', reason: 'RequestTimeoutError on page 1' });
    }, 60_000);
  }

  it("a stand-alone operator's reconcile gives the legacy adapter its requestTimeoutMs: a scan that never answers is abandoned with an aborted signal", async () => {
    fhir = await startFhirTestServer();
    const legacy = new MemoryLegacyAdapter<PatientRow>();
    await legacy.create('Patient', ada);
    const signals: AbortSignal[] = [];
    legacy.scan = (_type, options) => {
      if (options.signal !== undefined) signals.push(options.signal);
      return new Promise(() => undefined);
    };
    await using operator = operatorOver(fhir.baseUrl, legacy);
    const error: unknown = await operator
      .reconcile({ resourceType: 'Patient', unit: 'north' })
      .catch((err: unknown) => err);
    expect(error).toMatchObject({ name: 'RequestTimeoutError', side: 'legacy', resourceType: 'Patient' });
    expect(signals.length).toBeGreaterThan(0);
    expect(signals.every((signal) => signal.aborted)).toBe(true);
  }, 60_000);

  it("refuses an operator's requestTimeoutMs that is not a positive number, naming it", () => {
    const build = () =>
      operatorOver('http://127.0.0.1:1/', new MemoryLegacyAdapter<PatientRow>(), undefined, 0);
    expect(build).toThrow(ConfigurationError);
    expect(build).toThrow(/requestTimeoutMs/);
  });

  it("the Medplum change feed's requests keep the writer's time limit: a Medplum that never answers fails the pass, not the writer", async () => {
    fhir = await startFhirTestServer();
    const state = { mode: 'swallow' as 'pass' | 'swallow', swallowed: 0 };
    const baseUrl = await hangingProxy(fhir.baseUrl, state);
    const writer = new DualWriter<Ctx, PatientRow>({
      legacy: new MemoryLegacyAdapter<PatientRow>(),
      medplum: createMedplumClient({ baseUrl }),
      mappings: [patientMapping],
      plan: new CutoverPlan<Ctx>({ default: 'dual-write', unitOf: (ctx) => ctx.unit }),
      requestTimeoutMs: 150,
      feeds: { unitOf: () => 'north', sides: ['medplum'] },
    });
    const report = await writer.pollFeeds();
    expect(state.swallowed).toBeGreaterThan(0);
    // The failure names the writer's limit, not the 10 s default.
    expect(report.failures).toEqual([
      {
        feed: 'medplum:Patient',
        name: 'RequestTimeoutError',
        message: 'Medplum did not answer a Patient request within 150 ms',
      },
    ]);
  }, 30_000);

  it("the pacer's wait is not counted in requestTimeoutMs: an inline write, a drained batch and a backfill's search wait out a spent quota longer than the limit, then succeed", async () => {
    fhir = await startFhirTestServer();
    const legacy = new MemoryLegacyAdapter<PatientRow>();
    const pacer = new QuotaPacer();
    const events: DualWriteEvent[] = [];
    const store = new MemoryStore();
    const batches: string[] = [];
    const fetchSeen: FetchLike = (url: string, init?: RequestInit) => {
      if (init?.method === 'POST' && /\/fhir\/R4\/?$/.test(new URL(url).pathname)) batches.push(url);
      return globalThis.fetch(url, init);
    };
    const writerIn = (mirror: 'sync' | 'async') =>
      new DualWriter<Ctx, PatientRow>({
        legacy,
        medplum: createMedplumClient({ baseUrl: fhir!.baseUrl, fetch: fetchSeen }),
        mappings: [patientMapping],
        plan: new CutoverPlan<Ctx>({ default: 'dual-write', unitOf: (ctx) => ctx.unit }),
        store,
        pacer,
        mirror,
        requestTimeoutMs: 1_000,
        retry: { retries: 0 },
        onEvent: (event) => events.push(event),
      });
    const writer = writerIn('sync');
    await medplumCopies(createMedplumClient({ baseUrl: fhir.baseUrl }), 'warm-up');
    // The quota is spent for the next 2 s (Medplum's `r=0;t=2`, plus the pacer's margin): each
    // request waits 2.25 s for the pacer, more than twice its time limit of 1 s (long enough
    // for a loaded machine to answer).
    const spend = (): void =>
      pacer.observe(new Headers({ RateLimit: '"fhirInteractions";r=0;t=2' }), { fhirInteractions: 50_000 });
    const waitedBefore = (): number => pacer.stats().waitedMs;

    spend();
    let waited = waitedBefore();
    const inline = await writer.create('Patient', ada, north);
    expect(inline).toMatchObject({ mirror: 'applied' });
    expect(pacer.stats().waitedMs - waited).toBeGreaterThan(1_000);

    const queueing = writerIn('async');
    await queueing.create('Patient', { id: 'p-2', first_name: 'Grace', last_name: 'Hopper' }, north);
    await queueing.create('Patient', { id: 'p-4', first_name: 'Edsger', last_name: 'Dijkstra' }, north);
    spend();
    waited = waitedBefore();
    expect(await writer.drain({ timeoutMs: 10_000 })).toMatchObject({
      applied: 2,
      retried: 0,
      deadLettered: 0,
    });
    expect(pacer.stats().waitedMs - waited).toBeGreaterThan(1_000);
    // The two creates went together in one batch Bundle, which waited for the pacer too.
    expect(batches).toHaveLength(1);

    await legacy.create('Patient', { id: 'p-3', first_name: 'Alan', last_name: 'Turing' });
    spend();
    waited = waitedBefore();
    const job = await writer.backfill({ resourceType: 'Patient', unit: 'north', direction: 'to-medplum' });
    expect(job).toMatchObject({ state: 'done', counts: { scanned: 4, unchanged: 3, created: 1 } });
    expect(pacer.stats().waitedMs - waited).toBeGreaterThan(1_000);

    expect(events.filter((event) => event.type === 'retry')).toEqual([]);
    const direct = createMedplumClient({ baseUrl: fhir.baseUrl });
    await writer.drain({ timeoutMs: 10_000 });
    for (const id of ['p-1', 'p-2', 'p-3', 'p-4']) expect(await medplumCopies(direct, id)).toHaveLength(1);
  }, 30_000);

  it('refuses a request timeout that is not under half the drainer lease, naming it', () => {
    const options = {
      legacy: new MemoryLegacyAdapter<PatientRow>(),
      medplum: createMedplumClient({ baseUrl: 'http://127.0.0.1:1/' }),
      mappings: [patientMapping],
      plan: new CutoverPlan<Ctx>({ default: 'dual-write', unitOf: (ctx) => ctx.unit }),
    };
    expect(() => new DualWriter({ ...options, requestTimeoutMs: 15_000 })).toThrow(ConfigurationError);
    expect(() => new DualWriter({ ...options, requestTimeoutMs: 15_000 })).toThrow(
      /requestTimeoutMs: must be less than half of drainer\.leaseMs \(30000\)/,
    );
    expect(() => new DualWriter({ ...options, requestTimeoutMs: 0 })).toThrow(/requestTimeoutMs/);
    expect(() => new DualWriter({ ...options, drainer: { leaseMs: 3_000 } })).not.toThrow();
  });
});

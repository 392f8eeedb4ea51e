import { MedplumClient, tooManyRequests, type FetchLike } from '@medplum/core';
import type { Patient } from '@medplum/fhirtypes';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ConflictError,
  OutcomeUnknownError,
  RejectedError,
  UnavailableError,
  createMedplumClient,
  type ErrorDetails,
} from '../../src/index.ts';
import { MedplumSide } from '../../src/sides/medplum-side.ts';
import { startFhirTestServer, type FhirTestServer } from '../../src/testing/index.ts';

const SYSTEM = 'https://clinic.example.org/patient-id';
const details: ErrorDetails = { resourceType: 'Patient' };

/** The method and path (relative to the FHIR base) of every request the client sends. */
interface Sent {
  readonly method: string;
  readonly path: string;
}

let server: FhirTestServer;
let sent: Sent[];

beforeEach(async () => {
  server = await startFhirTestServer();
  sent = [];
});

afterEach(async () => {
  await server.close();
});

/**
 * Answers a batch POST in place of the server: what a proxy or a misbehaving server might send.
 * `forward` first lets the server process the batch (so its writes land).
 */
type BatchAnswer = (request: { forward: () => Promise<Response> }) => Promise<Response>;

function recordingFetch(answerBatch?: BatchAnswer): FetchLike {
  const base = globalThis.fetch.bind(globalThis);
  return (url: string, options?: { method?: string }) => {
    const path = new URL(url).pathname.replace(/^\/fhir\/R4\/?/, '');
    const method = options?.method ?? 'GET';
    sent.push({ method, path });
    const forward = (): Promise<Response> => base(url, options);
    if (answerBatch !== undefined && method === 'POST' && path === '') return answerBatch({ forward });
    return forward();
  };
}

function side(bundle: number, answerBatch?: BatchAnswer): MedplumSide {
  return new MedplumSide(
    createMedplumClient({ baseUrl: server.baseUrl, fetch: recordingFetch(answerBatch) }),
    bundle,
  );
}

async function allPatients(): Promise<Patient[]> {
  const direct = createMedplumClient({ baseUrl: server.baseUrl });
  return direct.searchResources('Patient', { _count: '100' }, { cache: 'no-cache' });
}

function patient(value: string, family = value): Patient {
  return { resourceType: 'Patient', identifier: [{ system: SYSTEM, value }], name: [{ family }] };
}

describe('writes bundled per turn of the event loop', () => {
  it('go as one batch request, each with the outcome a request of its own would have had', async () => {
    const direct = createMedplumClient({ baseUrl: server.baseUrl });
    const existing = await direct.createResource(patient('existing'));
    const stale = await direct.createResource(patient('stale'));
    await direct.updateResource({ ...stale, name: [{ family: 'moved on' }] });
    const fresh = await direct.createResource(patient('fresh'));
    const doomed = await direct.createResource(patient('doomed'));
    const medplum = side(16);

    const results = await Promise.allSettled([
      medplum.create(patient('plain'), undefined, details),
      medplum.create(patient('conditional'), { system: SYSTEM, value: 'conditional' }, details),
      medplum.create(patient('existing', 'other'), { system: SYSTEM, value: 'existing' }, details),
      medplum.update({ ...stale, name: [{ family: 'late' }] }, stale.meta?.versionId, details),
      medplum.update({ ...fresh, name: [{ family: 'updated' }] }, fresh.meta?.versionId, details),
      medplum.delete('Patient', doomed.id, details),
      medplum.delete('Patient', 'never-was', details),
    ]);

    expect(sent).toEqual([{ method: 'POST', path: '' }]);
    const [plain, conditional, found, late, updated, deleted, missing] = results;
    expect(plain).toMatchObject({ status: 'fulfilled', value: { created: true } });
    expect(conditional).toMatchObject({ status: 'fulfilled', value: { created: true } });
    // The conditional create found the copy: it answers that copy, not a new one.
    expect(found).toMatchObject({
      status: 'fulfilled',
      value: { created: false, resource: { id: existing.id } },
    });
    expect(late.status === 'rejected' && late.reason).toBeInstanceOf(ConflictError);
    expect(late).toMatchObject({ reason: { status: 412, side: 'medplum' } });
    expect(updated).toMatchObject({
      status: 'fulfilled',
      value: { id: fresh.id, name: [{ family: 'updated' }] },
    });
    expect(deleted).toMatchObject({ status: 'fulfilled' });
    expect(missing).toMatchObject({ status: 'fulfilled' });
    const stored = await direct.searchResources(
      'Patient',
      { identifier: `${SYSTEM}|plain` },
      { cache: 'no-cache' },
    );
    expect(stored).toHaveLength(1);
    await expect(direct.readResource('Patient', doomed.id, { cache: 'no-cache' })).rejects.toThrow();
    const check = await direct.readResource('Patient', stale.id, { cache: 'no-cache' });
    expect(check.name?.[0]?.family).toBe('moved on');
  });

  it('sends a write alone in its turn as a request of its own, and splits more than a bundle takes', async () => {
    const medplum = side(2);
    await medplum.create(patient('alone'), undefined, details);
    expect(sent).toEqual([{ method: 'POST', path: 'Patient' }]);

    sent = [];
    const created = await Promise.all(
      ['a', 'b', 'c', 'd', 'e'].map((value) => medplum.create(patient(value), undefined, details)),
    );
    expect(new Set(created.map((c) => c.resource.id)).size).toBe(5);
    expect(sent).toEqual([
      { method: 'POST', path: '' },
      { method: 'POST', path: '' },
      { method: 'POST', path: 'Patient' },
    ]);
  });

  it('fails every write of a batch that failed transiently, as unavailable, having written nothing', async () => {
    const medplum = side(16);
    server.faults.failNext(1, 503, { methods: ['POST'] });
    const results = await Promise.allSettled(
      ['a', 'b', 'c'].map((value) => medplum.create(patient(value), undefined, details)),
    );
    for (const result of results) {
      expect(result.status === 'rejected' && result.reason).toBeInstanceOf(UnavailableError);
      expect(result).toMatchObject({ reason: { status: 503 } });
    }
    expect(sent).toHaveLength(1);
    const direct = createMedplumClient({ baseUrl: server.baseUrl });
    expect(await direct.searchResources('Patient', {}, { cache: 'no-cache' })).toHaveLength(0);
  });

  it('sends each write alone when the server refuses the batch itself', async () => {
    const medplum = side(16);
    // A proxy or server without batch support: the base URL answers 404 to a POST.
    server.faults.failNext(1, 404, { methods: ['POST'], path: /^$/ });
    const created = await Promise.all(
      ['a', 'b', 'c'].map((value) => medplum.create(patient(value), undefined, details)),
    );
    expect(created.map((c) => c.created)).toEqual([true, true, true]);
    expect(sent.map((s) => s.path)).toEqual(['', 'Patient', 'Patient', 'Patient']);
  });

  it('rejects a bundled write the server refuses with the entry status, leaving the others done', async () => {
    const direct = createMedplumClient({ baseUrl: server.baseUrl });
    const medplum = side(16);
    const results = await Promise.allSettled([
      medplum.create(patient('kept'), undefined, details),
      // An update of a resource that does not exist: the entry answers 404.
      medplum.update({ ...patient('ghost'), id: 'no-such-id' }, '1', details),
    ]);
    expect(sent).toHaveLength(1);
    expect(results[0]).toMatchObject({ status: 'fulfilled', value: { created: true } });
    expect(results[1].status === 'rejected' && results[1].reason).toBeInstanceOf(RejectedError);
    expect(results[1]).toMatchObject({ reason: { status: 404 } });
    expect(await direct.searchResources('Patient', {}, { cache: 'no-cache' })).toHaveLength(1);
  });
});

describe('a batch that fails as a whole', () => {
  it('answered without a body: every write may have landed (OutcomeUnknownError), none left waiting', async () => {
    const medplum = side(16, () => Promise.resolve(new Response(null, { status: 204 })));
    const results = await Promise.allSettled(
      ['a', 'b'].map((value) => medplum.create(patient(value), undefined, details)),
    );
    for (const result of results) {
      expect(result.status === 'rejected' && result.reason).toBeInstanceOf(OutcomeUnknownError);
    }
    expect(sent).toHaveLength(1);
  });

  it('landed but its answer was cut off: every write may have landed (OutcomeUnknownError), none sent again', async () => {
    const medplum = side(16, async ({ forward }) => {
      await (await forward()).arrayBuffer(); // the server stored the batch
      const body = new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode('{"resourceType":"Bundle","ent'));
          controller.error(new Error('connection reset'));
        },
      });
      return new Response(body, { status: 200, headers: { 'Content-Type': 'application/fhir+json' } });
    });
    const results = await Promise.allSettled(
      ['a', 'b'].map((value) => medplum.create(patient(value), undefined, details)),
    );
    for (const result of results) {
      expect(result.status === 'rejected' && result.reason).toBeInstanceOf(OutcomeUnknownError);
    }
    // Sending each alone now would have stored a second copy of each.
    expect(sent).toHaveLength(1);
    expect(await allPatients()).toHaveLength(2);
  });

  it('with a serialisation failure: every write is unavailable, none sent alone at once', async () => {
    const medplum = side(16);
    server.faults.serializationFailureNext(1, { methods: ['POST'] });
    const results = await Promise.allSettled(
      ['a', 'b', 'c'].map((value) => medplum.create(patient(value), undefined, details)),
    );
    for (const result of results) {
      expect(result.status === 'rejected' && result.reason).toBeInstanceOf(UnavailableError);
      expect(result).toMatchObject({ reason: { status: 409 } });
    }
    expect(sent).toHaveLength(1);
  });

  it("with a client that does not capture statuses, a refused batch is no write's own answer", async () => {
    const direct = createMedplumClient({ baseUrl: server.baseUrl });
    const doomed = await Promise.all(['a', 'b'].map((value) => direct.createResource(patient(value))));
    const plain = new MedplumClient({ baseUrl: server.baseUrl, fetch: recordingFetch(), maxRetries: 0 });
    const medplum = new MedplumSide(plain, 16);
    server.faults.failNext(1, 404, { methods: ['POST'], path: /^$/ });
    await Promise.all(doomed.map((p) => medplum.delete('Patient', p.id, details)));
    // Each delete went alone and really deleted (a 404 of the batch is not "already gone").
    expect(await allPatients()).toHaveLength(0);
    expect(sent.map((s) => `${s.method} ${s.path}`)).toEqual([
      'POST ',
      `DELETE Patient/${doomed[0]!.id}`,
      `DELETE Patient/${doomed[1]!.id}`,
    ]);
  });

  it('with 404 at the FHIR base: bundling is off from then on', async () => {
    const medplum = side(16);
    server.faults.failNext(1, 404, { methods: ['POST'], path: /^$/ });
    await Promise.all(['a', 'b'].map((value) => medplum.create(patient(value), undefined, details)));
    await Promise.all(['c', 'd'].map((value) => medplum.create(patient(value), undefined, details)));
    expect(sent.map((s) => s.path)).toEqual(['', 'Patient', 'Patient', 'Patient', 'Patient']);
  });
});

describe('a bundled write refused by its own entry', () => {
  function answering(entry: object, headers: Record<string, string> = {}): BatchAnswer {
    const bundle = { resourceType: 'Bundle', type: 'batch-response', entry: [entry, entry] };
    return () =>
      Promise.resolve(
        new Response(JSON.stringify(bundle), {
          status: 200,
          headers: { 'Content-Type': 'application/fhir+json', ...headers },
        }),
      );
  }

  it('a rate limit inside a batch keeps the reset the batch answer announced', async () => {
    const medplum = side(
      16,
      answering(
        { response: { status: '429', outcome: tooManyRequests } },
        { RateLimit: '"fhirInteractions";r=0;t=30' },
      ),
    );
    const results = await Promise.allSettled(
      ['a', 'b'].map((value) => medplum.create(patient(value), undefined, details)),
    );
    for (const result of results) {
      expect(result.status === 'rejected' && result.reason).toBeInstanceOf(UnavailableError);
      expect(result).toMatchObject({ reason: { status: 429, retryAfterMs: 30_000 } });
    }
  });

  it('an entry answered for another resource type, or with a malformed outcome, is no answer', async () => {
    for (const [entry, error] of [
      // A success for something else: the write may have landed.
      [
        { response: { status: '201' }, resource: { resourceType: 'Observation', id: 'x' } },
        OutcomeUnknownError,
      ],
      [{ response: { status: '503', outcome: { resourceType: 'OperationOutcome' } } }, UnavailableError],
    ] as const) {
      const medplum = side(16, answering(entry));
      const results = await Promise.allSettled(
        ['a', 'b'].map((value) => medplum.create(patient(value), undefined, details)),
      );
      for (const result of results) {
        expect(result.status === 'rejected' && result.reason).toBeInstanceOf(error);
      }
    }
  });
});

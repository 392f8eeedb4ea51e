import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { getStatus, MedplumClient, OperationOutcomeError } from '@medplum/core';
import type { Bundle, Patient } from '@medplum/fhirtypes';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WRITE_METHODS } from '../../src/testing/fault-options.ts';
import { startFhirTestServer } from '../../src/testing/fhir-test-server.ts';
import type { FhirTestServer } from '../../src/testing/fhir-test-server.ts';

const SYSTEM = 'urn:test:legacy-id';

interface Exchange {
  readonly method: string;
  readonly status: number;
  readonly headers: Headers;
}

/** A MedplumClient as the library configures it, plus the raw HTTP statuses and headers it saw. */
function connect(server: FhirTestServer, options: { clientId?: string; clientSecret?: string } = {}) {
  const exchanges: Exchange[] = [];
  const recordingFetch = async (url: string, init?: RequestInit): Promise<Response> => {
    const response = await fetch(url, init);
    exchanges.push({ method: init?.method ?? 'GET', status: response.status, headers: response.headers });
    return response;
  };
  const medplum = new MedplumClient({
    baseUrl: server.baseUrl,
    fetch: recordingFetch,
    maxRetries: 0,
    ...options,
  });
  const last = (): Exchange => {
    const exchange = exchanges.at(-1);
    if (!exchange) {
      throw new Error('no request was sent');
    }
    return exchange;
  };
  return { medplum, exchanges, last };
}

function patient(value = randomUUID()): Patient {
  return { resourceType: 'Patient', identifier: [{ system: SYSTEM, value }], name: [{ family: 'Test' }] };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected the promise to reject');
}

async function outcomeError(promise: Promise<unknown>): Promise<OperationOutcomeError> {
  const err = await rejection(promise);
  expect(err).toBeInstanceOf(OperationOutcomeError);
  return err as OperationOutcomeError;
}

describe('FHIR test server with a real MedplumClient', () => {
  let server: FhirTestServer;

  beforeAll(async () => {
    server = await startFhirTestServer();
  });

  afterAll(async () => {
    await server.close();
  });

  it('serves FHIR under a base URL that ends with a slash', () => {
    expect(server.baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
  });

  it('creates a resource with 201, a Location and a weak ETag', async () => {
    const { medplum, last } = connect(server);
    const created = await medplum.createResource(patient());
    const { status, headers } = last();
    expect(status).toBe(201);
    expect(headers.get('location')).toBe(`${server.baseUrl}fhir/R4/Patient/${created.id}`);
    expect(headers.get('etag')).toBe(`W/"${created.meta?.versionId}"`);
    expect(headers.get('content-type')).toMatch(/^application\/fhir\+json/);
  });

  it('reads a created resource by id', async () => {
    const { medplum } = connect(server);
    const created = await medplum.createResource(patient());
    const read = await medplum.readResource('Patient', created.id);
    expect(read).toEqual(created);
  });

  it('updates a resource to a new version', async () => {
    const { medplum } = connect(server);
    const created = await medplum.createResource(patient());
    const updated = await medplum.updateResource({ ...created, active: true });
    expect(updated.active).toBe(true);
    expect(updated.meta?.versionId).not.toBe(created.meta?.versionId);
  });

  it('keeps the version when an update changes nothing', async () => {
    const { medplum } = connect(server);
    const created = await medplum.createResource(patient());
    const updated = await medplum.updateResource({ ...created });
    expect(updated.meta?.versionId).toBe(created.meta?.versionId);
    const history = await medplum.readHistory('Patient', created.id);
    expect(history.entry).toHaveLength(1);
  });

  it('applies an update whose If-Match names the current version', async () => {
    const { medplum } = connect(server);
    const created = await medplum.createResource(patient());
    const ifMatch = `W/"${created.meta?.versionId}"`;
    const updated = await medplum.updateResource(
      { ...created, active: true },
      { headers: { 'If-Match': ifMatch } },
    );
    expect(updated.active).toBe(true);
  });

  it('rejects an update with a stale If-Match with 412 Precondition Failed', async () => {
    const { medplum, last } = connect(server);
    const created = await medplum.createResource(patient());
    await medplum.updateResource({ ...created, active: true });
    const stale = { headers: { 'If-Match': `W/"${created.meta?.versionId}"` } };
    const err = await outcomeError(medplum.updateResource({ ...created, active: false }, stale));
    expect(last().status).toBe(412);
    expect(getStatus(err.outcome)).toBe(412);
    expect(err.outcome.id).toBe('precondition-failed');
  });

  it('answers 404 when updating an id that never existed', async () => {
    const { medplum, last } = connect(server);
    await outcomeError(medplum.updateResource({ ...patient(), id: randomUUID() }));
    expect(last().status).toBe(404);
  });

  it('finds a resource by identifier system and value', async () => {
    const { medplum } = connect(server);
    const value = randomUUID();
    const created = await medplum.createResource(patient(value));
    await medplum.createResource(patient());
    const found = await medplum.searchResources('Patient', { identifier: `${SYSTEM}|${value}` });
    expect(found.map((p) => p.id)).toEqual([created.id]);
  });

  it('creates once for repeated conditional creates with If-None-Exist', async () => {
    const { medplum, exchanges } = connect(server);
    const value = randomUUID();
    const query = `identifier=${SYSTEM}|${value}`;
    const results = [];
    for (let i = 0; i < 3; i++) {
      results.push(await medplum.createResourceIfNoneExist(patient(value), query));
    }
    expect(new Set(results.map((p) => p.id)).size).toBe(1);
    expect(exchanges.map((e) => e.status)).toEqual([201, 200, 200]);
    expect(await medplum.searchResources('Patient', query)).toHaveLength(1);
  });

  it('dedupes concurrent conditional creates', async () => {
    const { medplum } = connect(server);
    const value = randomUUID();
    const query = `identifier=${SYSTEM}|${value}`;
    await Promise.all(
      Array.from({ length: 5 }, () => medplum.createResourceIfNoneExist(patient(value), query)),
    );
    expect(await medplum.searchResources('Patient', query)).toHaveLength(1);
  });

  it('deletes a resource', async () => {
    const { medplum, last } = connect(server);
    const created = await medplum.createResource(patient());
    await medplum.deleteResource('Patient', created.id);
    expect(last().status).toBe(200);
    const found = await medplum.searchResources('Patient', {
      identifier: `${SYSTEM}|${created.identifier?.[0]?.value}`,
    });
    expect(found).toHaveLength(0);
  });

  it('answers 410 Gone when reading a deleted resource', async () => {
    const { medplum, last } = connect(server);
    const created = await medplum.createResource(patient());
    await medplum.deleteResource('Patient', created.id);
    const err = await outcomeError(medplum.readResource('Patient', created.id));
    expect(last().status).toBe(410);
    expect(err.outcome.issue[0]?.code).toBe('deleted');
  });

  it('answers 404 when reading an id that never existed', async () => {
    const { medplum, last } = connect(server);
    await outcomeError(medplum.readResource('Patient', randomUUID()));
    expect(last().status).toBe(404);
  });

  it('accepts deleting an already deleted resource', async () => {
    const { medplum, last } = connect(server);
    const created = await medplum.createResource(patient());
    await medplum.deleteResource('Patient', created.id);
    await medplum.deleteResource('Patient', created.id);
    expect(last().status).toBe(200);
  });

  it('lists versions and the deletion in instance history, newest first', async () => {
    const { medplum } = connect(server);
    const created = await medplum.createResource(patient());
    const updated = await medplum.updateResource({ ...created, active: true });
    await medplum.deleteResource('Patient', created.id);
    const history = await medplum.readHistory('Patient', created.id);
    expect(history.entry?.map((e) => e.response?.status)).toEqual(['410', '200', '200']);
    expect(history.entry?.[1]?.resource?.meta?.versionId).toBe(updated.meta?.versionId);
  });

  it('pages search results through absolute next links', async () => {
    const { medplum } = connect(server);
    const family = `Paged-${randomUUID()}`;
    for (let i = 0; i < 5; i++) {
      await medplum.createResource({ ...patient(), name: [{ family }] });
    }
    const first = await medplum.search('Patient', { family, _count: '2' });
    const next = first.link?.find((link) => link.relation === 'next')?.url;
    expect(next?.startsWith(`${server.baseUrl}fhir/R4/Patient?`)).toBe(true);
    const pages: number[] = [];
    for await (const page of medplum.searchResourcePages('Patient', { family, _count: '2' })) {
      pages.push(page.length);
    }
    expect(pages).toEqual([2, 2, 1]);
  });

  it('reports total only when _total asks for it', async () => {
    const { medplum } = connect(server);
    const value = randomUUID();
    await medplum.createResource(patient(value));
    const plain = await medplum.search('Patient', { identifier: `${SYSTEM}|${value}` });
    const counted = await medplum.search('Patient', { identifier: `${SYSTEM}|${value}`, _total: 'accurate' });
    expect(plain.total).toBeUndefined();
    expect(counted.total).toBe(1);
  });

  it('filters and sorts by _lastUpdated', async () => {
    const { medplum } = connect(server);
    const family = `Sorted-${randomUUID()}`;
    const older = await medplum.createResource({ ...patient(), name: [{ family }] });
    await sleep(5);
    const newer = await medplum.createResource({ ...patient(), name: [{ family }] });
    const since = older.meta?.lastUpdated ?? '';
    const sorted = await medplum.searchResources('Patient', { family, _sort: '-_lastUpdated' });
    const after = await medplum.searchResources('Patient', { family, _lastUpdated: `gt${since}` });
    expect(sorted.map((p) => p.id)).toEqual([newer.id, older.id]);
    expect(after.map((p) => p.id)).toEqual([newer.id]);
  });

  it('runs a batch posted to the FHIR base and reports a status per entry', async () => {
    const { medplum } = connect(server);
    const value = randomUUID();
    const batch: Bundle = {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        { request: { method: 'POST', url: 'Patient' }, resource: patient(value) },
        { request: { method: 'GET', url: `Patient/${randomUUID()}` } },
      ],
    };
    const result = await medplum.executeBatch(batch);
    expect(result.type).toBe('batch-response');
    expect(result.entry?.map((e) => e.response?.status)).toEqual(['201', '404']);
    expect(await medplum.searchResources('Patient', { identifier: `${SYSTEM}|${value}` })).toHaveLength(1);
  });
});

describe('FHIR test server authentication', () => {
  let server: FhirTestServer;

  beforeAll(async () => {
    server = await startFhirTestServer({ requireAuth: true });
  });

  afterAll(async () => {
    await server.close();
  });

  it('answers 401 to a FHIR request without a token it issued', async () => {
    const response = await fetch(`${server.baseUrl}fhir/R4/Patient`, {
      headers: { Authorization: 'Bearer forged' },
    });
    expect(response.status).toBe(401);
  });

  it('lets a client with clientId and clientSecret log in and retry after a 401', async () => {
    const { medplum, exchanges } = connect(server, { clientId: 'migration', clientSecret: 'secret' });
    const created = await medplum.createResource(patient());
    expect(created.id).toBeDefined();
    expect(exchanges.map((e) => e.status)).toEqual([401, 200, 201]);
  });
});

describe('faults as a MedplumClient sees them', () => {
  let server: FhirTestServer;

  beforeAll(async () => {
    server = await startFhirTestServer({ seed: 42 });
  });

  afterEach(() => {
    server.faults.clear();
  });

  afterAll(async () => {
    await server.close();
  });

  it('fails the next N requests with the configured status, then serves normally', async () => {
    const { medplum, exchanges } = connect(server);
    const created = await medplum.createResource(patient());
    server.faults.failNext(2, 503);
    await outcomeError(medplum.readResource('Patient', created.id));
    await outcomeError(medplum.readResource('Patient', created.id));
    await medplum.readResource('Patient', created.id);
    expect(exchanges.map((e) => e.status)).toEqual([201, 503, 503, 200]);
  });

  it('sends a 429 with a RateLimit header the client parses', async () => {
    const { medplum, last } = connect(server);
    server.faults.failNext(1, 429, { rateLimitResetSeconds: 3 });
    const err = await outcomeError(medplum.searchResources('Patient'));
    expect(last().status).toBe(429);
    expect(last().headers.get('ratelimit')).toBe('"fhirInteractions";r=0;t=3');
    expect(getStatus(err.outcome)).toBe(429);
    expect(medplum.rateLimitStatus()).toEqual([
      expect.objectContaining({ remainingUnits: 0, secondsUntilReset: 3 }),
    ]);
  });

  it('drops the connection so the client sees a network error', async () => {
    const { medplum } = connect(server);
    server.faults.dropNext(1);
    const err = await rejection(medplum.searchResources('Patient'));
    expect(err).toBeInstanceOf(TypeError);
    expect((err as TypeError).message).toBe('fetch failed');
  });

  it('drops a write without applying it by default', async () => {
    const { medplum } = connect(server);
    const value = randomUUID();
    server.faults.dropNext(1, { methods: ['POST'] });
    await rejection(medplum.createResource(patient(value)));
    expect(await medplum.searchResources('Patient', { identifier: `${SYSTEM}|${value}` })).toHaveLength(0);
  });

  it('applies a write before dropping its response when afterProcessing is set', async () => {
    const { medplum } = connect(server);
    const value = randomUUID();
    server.faults.dropNext(1, { methods: ['POST'], afterProcessing: true });
    await rejection(medplum.createResource(patient(value)));
    expect(await medplum.searchResources('Patient', { identifier: `${SYSTEM}|${value}` })).toHaveLength(1);
  });

  it('answers a serialization failure as 409 with details code 40001 and writes nothing', async () => {
    const { medplum, last } = connect(server);
    const value = randomUUID();
    server.faults.serializationFailureNext(1);
    const err = await outcomeError(medplum.createResource(patient(value)));
    const issue = err.outcome.issue[0];
    expect(last().status).toBe(409);
    expect(issue?.code).toBe('conflict');
    expect(issue?.details?.coding?.[0]?.code).toBe('40001');
    expect(issue?.details?.text).toBe('could not serialize access due to concurrent update');
    expect(await medplum.searchResources('Patient', { identifier: `${SYSTEM}|${value}` })).toHaveLength(0);
  });

  it('leaves reads alone when injecting serialization failures', async () => {
    const { medplum } = connect(server);
    server.faults.serializationFailureNext(1);
    await medplum.searchResources('Patient');
    await outcomeError(medplum.createResource(patient()));
  });

  it('answers an HTML 502 that the client can only read as a 400 outcome', async () => {
    const { medplum, last } = connect(server);
    server.faults.htmlBadGatewayNext(1);
    const err = await outcomeError(medplum.searchResources('Patient'));
    expect(last().status).toBe(502);
    expect(last().headers.get('content-type')).toBe('text/html');
    expect(getStatus(err.outcome)).toBe(400);
    expect(err.outcome.issue[0]?.details?.text).toContain('502 Bad Gateway');
  });

  it('fails every request during an outage and serves again after it ends', async () => {
    const { medplum, last } = connect(server);
    server.faults.outage(300);
    await outcomeError(medplum.searchResources('Patient'));
    expect(last().status).toBe(503);
    await sleep(350);
    await medplum.searchResources('Patient');
    expect(last().status).toBe(200);
  });

  it('starts a scheduled outage after its delay', async () => {
    const { medplum, exchanges } = connect(server);
    server.faults.outageFor({ startsInMs: 300, durationMs: 10_000, status: 502 });
    await medplum.searchResources('Patient');
    await sleep(350);
    await outcomeError(medplum.searchResources('Patient'));
    expect(exchanges.map((e) => e.status)).toEqual([200, 502]);
  });

  it('restores normal service on clear()', async () => {
    const { medplum, last } = connect(server);
    server.faults.failNext(5, 500).outage(10_000).latency(50);
    server.faults.clear();
    await medplum.searchResources('Patient');
    expect(last().status).toBe(200);
  });

  it("applies faults to a batch's entries as to requests of their own", async () => {
    const { medplum, last } = connect(server);
    const kept = await medplum.createResource(patient());
    const landed = await medplum.createResource(patient());
    const batch = (): Bundle => ({
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        { resource: patient(), request: { method: 'POST', url: 'Patient' } },
        { resource: { ...kept, gender: 'other' }, request: { method: 'PUT', url: `Patient/${kept.id}` } },
        { resource: { ...landed, gender: 'other' }, request: { method: 'PUT', url: `Patient/${landed.id}` } },
      ],
    });
    // The first PUT entry fails before processing, the second after it (applied, answer lost).
    server.faults
      .failNext(1, 503, { methods: ['PUT'] })
      .serializationFailureNext(1, { methods: ['PUT'], path: `Patient/${landed.id}` })
      .dropNext(1, { methods: ['PUT'], afterProcessing: true });
    const before = server.faults.stats;
    const answer = await medplum.executeBatch(batch());
    expect(last().status).toBe(200);
    // Entries are not requests; a dropped connection is the whole request's, so no entry takes it.
    expect(server.faults.stats.requests - before.requests).toBe(1);
    expect(server.faults.stats.injected.drop).toBe(before.injected.drop);
    expect(answer.entry?.map((e) => e.response?.status)).toEqual(['201', '503', '409']);
    expect(answer.entry?.[2]?.response?.outcome?.issue[0]?.details?.coding?.[0]?.code).toBe('40001');
    expect((await medplum.readResource('Patient', kept.id, { cache: 'no-cache' })).gender).toBeUndefined();
    // A serialisation failure is before processing too: the second PUT was not applied either.
    expect((await medplum.readResource('Patient', landed.id, { cache: 'no-cache' })).gender).toBeUndefined();
    server.faults.clear().failNext(1, 500, { methods: ['PUT'], afterProcessing: true });
    const again = await medplum.executeBatch(batch());
    expect(again.entry?.map((e) => e.response?.status)).toEqual(['201', '500', '200']);
    // Processed, then answered with the fault: the write landed.
    expect((await medplum.readResource('Patient', kept.id, { cache: 'no-cache' })).gender).toBe('other');
  });

  it('limits a fault to the given methods', async () => {
    const { medplum, exchanges } = connect(server);
    server.faults.failNext(1, 503, { methods: WRITE_METHODS });
    await medplum.searchResources('Patient');
    await outcomeError(medplum.createResource(patient()));
    expect(exchanges.map((e) => e.status)).toEqual([200, 503]);
  });

  it('limits a fault to the given path', async () => {
    const { medplum, exchanges } = connect(server);
    server.faults.failNext(1, 500, { path: 'Observation' });
    await medplum.searchResources('Patient');
    await outcomeError(medplum.searchResources('Observation'));
    expect(exchanges.map((e) => e.status)).toEqual([200, 500]);
  });

  it('delays responses by the configured latency', async () => {
    const { medplum } = connect(server);
    server.faults.latency(100);
    const started = performance.now();
    await medplum.searchResources('Patient');
    expect(performance.now() - started).toBeGreaterThanOrEqual(95);
  });

  it('counts requests by method and injected faults by kind', async () => {
    const { medplum } = connect(server);
    server.faults.resetStats();
    server.faults.dropNext(1).htmlBadGatewayNext(1);
    await rejection(medplum.searchResources('Patient'));
    await rejection(medplum.searchResources('Patient'));
    await medplum.createResource(patient());
    const stats = server.faults.stats;
    expect(stats.requests).toBe(3);
    expect(stats.byMethod).toEqual({ GET: 2, POST: 1 });
    expect(stats.injected).toMatchObject({ drop: 1, 'html-bad-gateway': 1, status: 0 });
  });

  it('counts every HTTP request on the server, faulted or not', async () => {
    const { medplum } = connect(server);
    const before = server.requests;
    server.faults.failNext(1, 503);
    await rejection(medplum.searchResources('Patient'));
    await medplum.searchResources('Patient');
    expect(server.requests - before).toBe(2);
  });

  it('fails the same share of requests for the same seed', async () => {
    const statusesFor = async (seed: number): Promise<number[]> => {
      const seeded = await startFhirTestServer({ seed });
      try {
        const { medplum, exchanges } = connect(seeded);
        seeded.faults.failShare(0.5, 503);
        for (let i = 0; i < 20; i++) {
          await medplum.searchResources('Patient').catch(() => undefined);
        }
        return exchanges.map((e) => e.status);
      } finally {
        await seeded.close();
      }
    };
    const first = await statusesFor(7);
    expect(await statusesFor(7)).toEqual(first);
    expect(first).toContain(503);
    expect(first).toContain(200);
  });
});

import type { FetchLike } from '@medplum/core';
import type { Patient } from '@medplum/fhirtypes';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ConflictError,
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

function side(bundle: number): MedplumSide {
  const base = globalThis.fetch.bind(globalThis);
  const recording: FetchLike = (url: string, options?: { method?: string }) => {
    const path = new URL(url).pathname.replace(/^\/fhir\/R4\/?/, '');
    sent.push({ method: options?.method ?? 'GET', path });
    return base(url, options);
  };
  return new MedplumSide(createMedplumClient({ baseUrl: server.baseUrl, fetch: recording }), bundle);
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

import { parseSearchRequest, type WithId } from '@medplum/core';
import type { Patient } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { indexFhirDefinitions } from '../../src/testing/fhir-definitions.ts';
import { FhirTestRepository } from '../../src/testing/fhir-test-repository.ts';

const SYSTEM = 'urn:test:legacy-id';

/** The ids a search returns: by identifier (indexed), and by the same filter with a sort (a scan). */
async function both(
  repo: FhirTestRepository,
  value: string,
): Promise<{ indexed: string[]; scanned: string[] }> {
  const ids = async (query: string): Promise<string[]> =>
    ((await repo.search(parseSearchRequest<Patient>(query))).entry ?? []).map((e) => e.resource?.id ?? '');
  const indexed = await ids(`Patient?identifier=${SYSTEM}|${value}`);
  // _sort=_lastUpdated puts the scan's results in the order of their last write (_total makes
  // it a scan: neither index answers a search that asks for a total).
  const scanned = await ids(`Patient?identifier=${SYSTEM}|${value}&_sort=_lastUpdated&_total=accurate`);
  return { indexed, scanned };
}

describe('searching the test repository by identifier', () => {
  indexFhirDefinitions();

  it('finds what a scan finds after creates, updates, deletes, restores and expunges', async () => {
    const repo = new FhirTestRepository({ baseUrl: 'http://127.0.0.1:9/' });
    const patient = (value: string): Patient => ({
      resourceType: 'Patient',
      identifier: [{ system: SYSTEM, value }],
    });
    const a = await repo.createResource(patient('1'));
    const b = await repo.createResource(patient('1'));
    expect(await both(repo, '1')).toEqual({ indexed: [a.id, b.id], scanned: [a.id, b.id] });

    const moved = await repo.updateResource<WithId<Patient>>({
      ...a,
      identifier: [{ system: SYSTEM, value: '2' }],
    });
    expect(await both(repo, '1')).toEqual({ indexed: [b.id], scanned: [b.id] });
    expect(await both(repo, '2')).toEqual({ indexed: [moved.id], scanned: [moved.id] });

    await repo.deleteResource('Patient', b.id);
    expect(await both(repo, '1')).toEqual({ indexed: [], scanned: [] });
    await repo.updateResource<WithId<Patient>>({ ...b, id: b.id });
    expect(await both(repo, '1')).toEqual({ indexed: [b.id], scanned: [b.id] });

    await repo.expungeResources('Patient', [b.id]);
    expect(await both(repo, '1')).toEqual({ indexed: [], scanned: [] });
    repo.clear();
    expect(await both(repo, '2')).toEqual({ indexed: [], scanned: [] });
  });

  it('answers a list of alternatives as the scan does, and scans what it cannot answer', async () => {
    const repo = new FhirTestRepository({ baseUrl: 'http://127.0.0.1:9/' });
    const patient = (system: string, value: string): Patient => ({
      resourceType: 'Patient',
      identifier: [{ system, value }],
    });
    const one = await repo.createResource(patient(SYSTEM, '1'));
    const two = await repo.createResource(patient(SYSTEM, 'Two'));
    await repo.createResource(patient(SYSTEM, '3'));
    await repo.createResource(patient('urn:other', '1'));
    const ids = async (query: string): Promise<string[]> =>
      ((await repo.search(parseSearchRequest<Patient>(query))).entry ?? [])
        .map((e) => e.resource?.id ?? '')
        .sort();
    for (const list of [
      `${SYSTEM}|1,${SYSTEM}|Two,${SYSTEM}|4`,
      `${SYSTEM}|1,urn:other|9`,
      `${SYSTEM}|two`,
    ]) {
      expect(await ids(`Patient?identifier=${list}`)).toEqual(
        await ids(`Patient?identifier=${list}&_sort=_id`),
      );
    }
    expect(await ids(`Patient?identifier=${SYSTEM}|1,${SYSTEM}|Two`)).toEqual([one.id, two.id].sort());
    // A value without a system is not the index's to answer; the scan answers it.
    expect(await ids(`Patient?identifier=${SYSTEM}|1,Two`)).toEqual(
      await ids(`Patient?identifier=${SYSTEM}|1,Two&_sort=_id`),
    );
  });

  it('pages an identifier search like any other', async () => {
    const repo = new FhirTestRepository({ baseUrl: 'http://127.0.0.1:9/' });
    for (let i = 0; i < 3; i++)
      await repo.createResource<Patient>({
        resourceType: 'Patient',
        identifier: [{ system: SYSTEM, value: 'same' }],
      });
    const page = await repo.search(
      parseSearchRequest<Patient>(`Patient?identifier=${SYSTEM}|same&_count=2&_offset=1&_total=accurate`),
    );
    expect(page.entry).toHaveLength(2);
    expect(page.total).toBe(3);
    expect(page.link?.map((link) => link.relation)).toEqual(['self', 'first', 'previous']);
  });
});

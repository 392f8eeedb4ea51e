import { parseSearchRequest, type WithId } from '@medplum/core';
import type { Patient } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { indexFhirDefinitions } from '../../src/testing/fhir-definitions.ts';
import { FhirTestRepository } from '../../src/testing/fhir-test-repository.ts';

const SYSTEM = 'urn:test:legacy-id';

/** A page's ids, and whether it links a next page. */
async function page(repo: FhirTestRepository, query: string): Promise<{ ids: string[]; next: boolean }> {
  const bundle = await repo.search(parseSearchRequest<Patient>(query));
  return {
    ids: (bundle.entry ?? []).map((entry) => entry.resource?.id ?? ''),
    next: bundle.link?.some((link) => link.relation === 'next') ?? false,
  };
}

/** The same page walked through the indexes and scanned (`_total` makes it a scan). */
async function both(repo: FhirTestRepository, query: string): Promise<void> {
  const scanned = await page(repo, `${query}&_total=accurate`);
  expect(await page(repo, query), query).toEqual(scanned);
}

describe('searching the test repository in _lastUpdated order, and by _id', () => {
  indexFhirDefinitions();

  it('pages as the scan pages after creates, updates, deletes and restores, from a lower bound and an offset', async () => {
    const repo = new FhirTestRepository({ baseUrl: 'http://127.0.0.1:9/' });
    const created: WithId<Patient>[] = [];
    for (let i = 0; i < 12; i += 1)
      created.push(
        await repo.createResource<Patient>({
          resourceType: 'Patient',
          identifier: [{ system: SYSTEM, value: String(i) }],
        }),
      );
    const [first, second, third] = created as [WithId<Patient>, WithId<Patient>, WithId<Patient>];
    await repo.updateResource<WithId<Patient>>({ ...second, gender: 'other' });
    await repo.deleteResource('Patient', third.id);
    await repo.updateResource<WithId<Patient>>({ ...first, gender: 'female' });
    await repo.deleteResource('Patient', first.id);
    await repo.updateResource<WithId<Patient>>({ ...first, gender: 'male' });
    const middle =
      (await repo.readResource<Patient>('Patient', created[6]?.id ?? '')).meta?.lastUpdated ?? '';
    for (const query of [
      'Patient?_sort=_lastUpdated&_count=5',
      'Patient?_sort=_lastUpdated&_count=5&_offset=5',
      'Patient?_sort=_lastUpdated&_count=5&_offset=10',
      'Patient?_sort=_lastUpdated&_count=20',
      `Patient?_sort=_lastUpdated&_count=3&_lastUpdated=ge${middle}`,
      `Patient?_sort=_lastUpdated&_count=3&_offset=1&_lastUpdated=gt${middle}`,
      `Patient?_sort=_lastUpdated&_count=3&identifier=${SYSTEM}|4,${SYSTEM}|1`,
    ])
      await both(repo, query);
  });

  it('answers _id lists as the scan does, deleted ids left out, and keeps only the _elements asked for', async () => {
    const repo = new FhirTestRepository({ baseUrl: 'http://127.0.0.1:9/' });
    const a = await repo.createResource<Patient>({
      resourceType: 'Patient',
      gender: 'female',
      birthDate: '1970-01-01',
    });
    const b = await repo.createResource<Patient>({ resourceType: 'Patient', gender: 'male' });
    const c = await repo.createResource<Patient>({ resourceType: 'Patient' });
    await repo.updateResource<WithId<Patient>>({ ...a, gender: 'other' });
    await repo.deleteResource('Patient', c.id);
    const listed = await page(repo, `Patient?_id=${c.id},${a.id},${b.id},nope`);
    expect(listed.ids).toEqual([a.id, b.id]);
    expect(listed).toEqual(await page(repo, `Patient?_id=${c.id},${a.id},${b.id},nope&_total=accurate`));
    const bundle = await repo.search(parseSearchRequest<Patient>(`Patient?_id=${a.id}&_elements=gender`));
    const resource = bundle.entry?.[0]?.resource;
    expect(Object.keys(resource ?? {}).sort()).toEqual(['gender', 'id', 'meta', 'resourceType']);
    expect(resource?.meta?.versionId).toBe((await repo.readResource('Patient', a.id)).meta?.versionId);
  });
});

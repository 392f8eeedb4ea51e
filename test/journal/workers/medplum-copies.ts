/**
 * Reads back what the workers left in Medplum: every copy carrying an identifier system, and
 * the instance history of one copy.
 */
import type { MedplumClient } from '@medplum/core';
import type { Bundle, Patient } from '@medplum/fhirtypes';

/**
 * Every Patient carrying the identifier system, by legacy id, following `link.next` pages.
 *
 * @param medplum - A client of the FHIR test server.
 * @param system - The identifier system.
 * @returns The copies of each legacy id.
 */
export async function copiesByLegacyId(
  medplum: MedplumClient,
  system: string,
): Promise<Map<string, Patient[]>> {
  const copies = new Map<string, Patient[]>();
  let url: string | undefined = `${medplum.fhirUrl('Patient').toString()}?${new URLSearchParams({
    identifier: `${system}|`,
    _count: '1000',
  }).toString()}`;
  while (url !== undefined) {
    const page: Bundle<Patient> = await medplum.get(url, { cache: 'no-cache' });
    for (const { resource } of page.entry ?? []) {
      const legacyId = resource?.identifier?.find((identifier) => identifier.system === system)?.value;
      if (resource && legacyId !== undefined)
        copies.set(legacyId, [...(copies.get(legacyId) ?? []), resource]);
    }
    url = page.link?.find((link) => link.relation === 'next')?.url;
  }
  return copies;
}

/**
 * A copy's versions, oldest first (`_history` lists them newest first).
 *
 * @param medplum - A client of the FHIR test server.
 * @param id - The Patient's id.
 * @returns Each version of the resource.
 */
export async function historyOf(medplum: MedplumClient, id: string): Promise<Patient[]> {
  const history: Bundle<Patient> = await medplum.get(medplum.fhirUrl('Patient', id, '_history'), {
    cache: 'no-cache',
  });
  return (history.entry ?? []).flatMap((entry) => (entry.resource ? [entry.resource] : [])).reverse();
}

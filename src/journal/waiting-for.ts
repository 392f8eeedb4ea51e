/**
 * The record a mirror waits for: its type, and its legacy key, or its Medplum id when it has no
 * legacy key yet (a resource created in Medplum that was never mirrored).
 *
 * @example
 * ```ts
 * const dependency: Dependency = { resourceType: 'Patient', legacyId: '42' };
 * ```
 */
export type Dependency =
  | { readonly resourceType: string; readonly legacyId: string; readonly medplumId?: undefined }
  | { readonly resourceType: string; readonly legacyId?: undefined; readonly medplumId: string };

/**
 * How an outbox entry names the record it waits for (`OutboxEntry.waitingFor`): `Patient/42` by
 * legacy key, `Patient#<id>` by Medplum id. The journal's triggers build the same names from a
 * new link or dead letter, to wake what waits for it.
 *
 * @param dependency - The record.
 * @returns Its name.
 * @example
 * ```ts
 * waitingForOf({ resourceType: 'Patient', legacyId: '42' }); // 'Patient/42'
 * ```
 */
export function waitingForOf(dependency: Dependency): string {
  return dependency.legacyId === undefined
    ? `${dependency.resourceType}#${dependency.medplumId}`
    : `${dependency.resourceType}/${dependency.legacyId}`;
}

/**
 * The parts of a {@link waitingForOf} name. Resource type names hold neither separator, so the
 * first one found splits.
 *
 * @param name - The name.
 * @returns The dependency.
 * @example
 * ```ts
 * parseWaitingFor('Patient/42'); // { resourceType: 'Patient', legacyId: '42' }
 * ```
 */
export function parseWaitingFor(name: string): Dependency {
  const at = name.search(/[/#]/);
  const resourceType = name.slice(0, at);
  const id = name.slice(at + 1);
  return name[at] === '/' ? { resourceType, legacyId: id } : { resourceType, medplumId: id };
}

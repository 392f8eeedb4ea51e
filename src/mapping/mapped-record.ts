import { valueFreeError } from '../error-values.ts';
import type { Identifier, Resource } from '@medplum/fhirtypes';
import { DualWriteError, MappingError, type ErrorDetails } from '../errors.ts';
import type { ResourceMapping } from './resource-mapping.ts';

/**
 * Calls a mapping function, turning whatever it throws into a {@link MappingError} that
 * names the mapping and the direction (never the row's values).
 *
 * @param direction - `toFhir` or `toLegacy`.
 * @param fn - The call.
 * @param details - The record concerned.
 * @returns What the mapping returned.
 */
export function runMapping<T>(
  direction: 'toFhir' | 'toLegacy' | 'legacyId' | 'withLegacyId' | 'newLegacyId' | 'references' | 'present',
  fn: () => T,
  details: ErrorDetails,
): T {
  let value: T;
  try {
    value = fn();
  } catch (err) {
    if (err instanceof MappingError) {
      throw new MappingError(err.field, `${direction} rejected the record: ${err.message}`, {
        ...details,
        cause: err,
      });
    }
    if (err instanceof DualWriteError) throw err;
    // What a mapping throws can quote the record, quoted or not (`BigInt(value)`): its name and
    // stack frames are kept, never its message.
    const cause = valueFreeError(err, { message: 'dropped' });
    throw new MappingError(undefined, `${direction} threw: ${cause.name}`, {
      ...details,
      cause,
    });
  }
  if (value === undefined && direction !== 'legacyId')
    throw new MappingError(undefined, `${direction} returned undefined`, details);
  return value;
}

/**
 * The legacy id a resource carries under the mapping's identifier system.
 *
 * @param resource - The resource.
 * @param system - The identifier system.
 * @returns The value, or `undefined` when the resource carries none.
 */
export function legacyIdOf(resource: Resource, system: string): string | undefined {
  const identifiers = (resource as { identifier?: Identifier[] | Identifier }).identifier;
  const list = identifiers === undefined ? [] : Array.isArray(identifiers) ? identifiers : [identifiers];
  return list.find((identifier) => identifier.system === system)?.value;
}

/**
 * Returns the resource carrying `legacyId` under the mapping's identifier system, adding the
 * identifier when absent.
 *
 * @param resource - The mapped resource.
 * @param mapping - The mapping (for the system and type).
 * @param legacyId - The record's legacy id.
 * @param details - The record concerned.
 * @returns The resource with the identifier.
 * @throws {@link MappingError} when the resource has another type or carries another legacy id.
 */
export function withLegacyIdentifier<R extends Resource>(
  resource: R,
  mapping: ResourceMapping<unknown, R>,
  legacyId: string,
  details: ErrorDetails,
): R {
  // Mapping output is checked as untrusted: a JavaScript mapping can return anything.
  const output: unknown = resource;
  if (
    typeof output !== 'object' ||
    output === null ||
    (output as Resource).resourceType !== mapping.resourceType
  ) {
    throw new MappingError('resourceType', `toFhir must return a ${mapping.resourceType}`, details);
  }
  const current = legacyIdOf(resource, mapping.identifierSystem);
  if (current === legacyId) return resource;
  if (current !== undefined) {
    throw new MappingError(
      'identifier',
      `carries another legacy id under ${mapping.identifierSystem}`,
      details,
    );
  }
  if (!('identifier' in resource) && !canCarryIdentifier(resource)) {
    throw new MappingError('identifier', `${resource.resourceType} has no identifier element`, details);
  }
  const existing = (resource as { identifier?: Identifier[] }).identifier ?? [];
  return { ...resource, identifier: [...existing, { system: mapping.identifierSystem, value: legacyId }] };
}

function canCarryIdentifier(resource: Resource): boolean {
  // Nearly every FHIR resource type has identifier (0..*); the few without it (Bundle has
  // 0..1, Binary, Parameters) are not mirrored record types.
  return !['Binary', 'Bundle', 'Parameters'].includes(resource.resourceType);
}

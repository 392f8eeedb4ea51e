import type { ErrorDetails } from '../errors.ts';
import { runMapping } from './mapped-record.ts';
import type { ResourceMapping } from './resource-mapping.ts';

/*
 * One legacy record, several resources (README, "One legacy record, several resources"). A
 * record belongs to its owner mapping (the Patient's `patient_data` row); a part is a mapping
 * with `partOf` naming that owner (a RelatedPerson from its guardian columns). Each resource
 * keeps its own link, keyed as every link is by its resource type and the record's legacy id:
 * one resource of each type per record.
 */

/**
 * The parts drawn from the records an owner mapping owns, in the order the mappings were given.
 *
 * @param mappings - The writer's mappings by resource type.
 * @param owner - The owner's resource type.
 * @returns The parts' mappings (none for a type without parts).
 * @example
 * ```ts
 * partsOf(new Map([['Patient', patients], ['RelatedPerson', guardians]]), 'Patient'); // [guardians]
 * ```
 */
export function partsOf<L>(
  mappings: ReadonlyMap<string, ResourceMapping<L>>,
  owner: string,
): ResourceMapping<L>[] {
  return [...mappings.values()].filter((mapping) => mapping.partOf === owner);
}

/**
 * Whether a legacy record holds a mapping's resource: always for an owner, and for a part
 * unless its `present(row)` says no.
 *
 * @param mapping - The mapping.
 * @param row - The record's row.
 * @param details - The record (for errors).
 * @returns `false` when the part is absent from the record.
 * @example
 * ```ts
 * holdsPart(guardians, { pid: '42', guardian_name: '' }, {}); // false
 * ```
 */
export function holdsPart<L>(mapping: ResourceMapping<L>, row: L, details: ErrorDetails): boolean {
  const present = mapping.present?.bind(mapping);
  if (present === undefined) return true;
  return runMapping('present', () => present(row), details);
}

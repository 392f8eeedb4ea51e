import { InvalidInputError } from '../errors.ts';
import type { ReferenceField } from '../mapping/reference-fields.ts';
import type { ResourceMapping } from '../mapping/resource-mapping.ts';

/**
 * The mapped resource types in dependency order, derived from the references the mappings
 * declare: every type after the types its records point at (a Patient before the Encounters
 * that point at it, an Encounter before the Observations), otherwise in the order the mappings
 * are given. A type that points at itself (`Organization.partOf`) is not a dependency: its
 * records wait for each other record by record. A cycle between types has no order.
 *
 * @param mappings - The mappings, one per resource type.
 * @returns The resource types, each once, dependencies first.
 * @throws {@link InvalidInputError} naming `mappings` when their references form a cycle.
 * @example
 * ```ts
 * dependencyOrder([vitals, encounters, patients]); // ['Patient', 'Encounter', 'Observation']
 * ```
 */
export function dependencyOrder<L>(mappings: readonly ResourceMapping<L>[]): string[] {
  const types: string[] = mappings.map((mapping) => mapping.resourceType);
  const needs = new Map<string, Set<string>>(
    mappings.map((mapping) => [
      mapping.resourceType,
      new Set(
        Object.values<ReferenceField<L>>(mapping.references ?? {})
          .map((field) => field.resourceType)
          .filter((type): boolean => type !== mapping.resourceType && types.includes(type)),
      ),
    ]),
  );
  const ordered: string[] = [];
  while (ordered.length < types.length) {
    // The first type, in the order given, whose dependencies are all placed.
    const next = types.find(
      (type) =>
        !ordered.includes(type) && [...(needs.get(type) ?? [])].every((need) => ordered.includes(need)),
    );
    if (next === undefined) {
      const left = types.filter((type) => !ordered.includes(type));
      throw new InvalidInputError('mappings', `references form a cycle among ${left.join(', ')}`);
    }
    ordered.push(next);
  }
  return ordered;
}

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
 * A record part (`ResourceMapping.partOf`) comes right after its owner, with the owner's other
 * parts: mirroring an owner's records queues its parts, so the owner and its parts move as one,
 * after every type any of them points at (a Coverage part's payor Organization comes before the
 * Patient that owns the Coverage), and a type that points at a part comes after the owner.
 *
 * @param mappings - The mappings, one per resource type.
 * @returns The resource types, each once, dependencies first.
 * @throws {@link InvalidInputError} naming `mappings` when their references form a cycle.
 * @example
 * ```ts
 * dependencyOrder([vitals, encounters, patients]); // ['Patient', 'Encounter', 'Observation']
 * dependencyOrder([guardians, encounters, patients]); // ['Patient', 'RelatedPerson', 'Encounter']
 * ```
 */
export function dependencyOrder<L>(mappings: readonly ResourceMapping<L>[]): string[] {
  const types: string[] = mappings.map((mapping) => mapping.resourceType);
  // A part's group is its owner's type (validated at construction to own no parts itself).
  const groupOf = (type: string): string => {
    const owner = mappings.find((mapping) => mapping.resourceType === type)?.partOf;
    return owner !== undefined && types.includes(owner) ? owner : type;
  };
  const groups = [...new Set(types.map(groupOf))];
  const needs = new Map<string, Set<string>>(groups.map((group) => [group, new Set<string>()]));
  for (const mapping of mappings) {
    const group = groupOf(mapping.resourceType);
    for (const field of Object.values<ReferenceField<L>>(mapping.references ?? {})) {
      if (!types.includes(field.resourceType)) continue;
      const need = groupOf(field.resourceType);
      if (need !== group) needs.get(group)?.add(need);
    }
  }
  const ordered: string[] = [];
  while (ordered.length < groups.length) {
    // The first group, in the order given, whose dependencies are all placed.
    const next = groups.find(
      (group) =>
        !ordered.includes(group) && [...(needs.get(group) ?? [])].every((need) => ordered.includes(need)),
    );
    if (next === undefined) {
      const left = types.filter((type) => !ordered.includes(groupOf(type)));
      throw new InvalidInputError('mappings', `references form a cycle among ${left.join(', ')}`);
    }
    ordered.push(next);
  }
  // Each group: its owner, then its parts in the order given.
  return ordered.flatMap((group) => [
    group,
    ...types.filter((type) => type !== group && groupOf(type) === group),
  ]);
}

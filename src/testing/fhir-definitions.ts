import {
  getResourceTypes,
  getSearchParameter,
  indexSearchParameter,
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
} from '@medplum/core';
import type { Bundle, SearchParameter } from '@medplum/fhirtypes';
import { definitions } from './fhir-peers.ts';

const { readJson, SEARCH_PARAMETER_BUNDLE_FILES } = definitions;

// profiles-others.json is left out on purpose: it only holds extra profiles, and it is the
// slowest file to parse.
const STRUCTURE_DEFINITION_FILES = [
  'fhir/r4/profiles-types.json',
  'fhir/r4/profiles-resources.json',
  'fhir/r4/profiles-medplum.json',
] as const;

// Parameters declared on these abstract bases (`_id`, `_lastUpdated`, `_tag`, ...) apply to
// every resource type on a real server.
const ABSTRACT_BASES: ReadonlySet<string> = new Set(['Resource', 'DomainResource']);

let indexed = false;

/**
 * Loads the FHIR R4 and Medplum structure definitions and search parameters into the
 * process-wide schema of `@medplum/core`.
 *
 * In-memory FHIR components (`MemoryRepository`, `matchesSearchRequest`) evaluate searches
 * against that schema, and with nothing indexed they silently match nothing: a search by
 * `identifier=system|value` returns an empty bundle and a conditional create never finds the
 * existing resource. The work is done once per process; later calls return at once.
 *
 * Parameters whose base is `Resource` or `DomainResource` are also indexed under each
 * concrete resource type, so `_lastUpdated` filters and `_sort=_lastUpdated` behave as on a
 * Medplum server.
 *
 * @example
 * ```ts
 * import { parseSearchRequest } from '@medplum/core';
 * import { MemoryRepository } from '@medplum/fhir-router';
 * import { indexFhirDefinitions } from 'medplum-dualwrite/testing';
 *
 * indexFhirDefinitions();
 * const repo = new MemoryRepository();
 * const found = await repo.searchResources(parseSearchRequest('Patient?identifier=urn:legacy|42'));
 * ```
 */
export function indexFhirDefinitions(): void {
  if (indexed) {
    return;
  }
  for (const file of STRUCTURE_DEFINITION_FILES) {
    indexStructureDefinitionBundle(readJson(file) as Bundle);
  }
  for (const file of SEARCH_PARAMETER_BUNDLE_FILES) {
    indexSearchParameterBundle(readJson(file) as Bundle<SearchParameter>);
  }
  indexAbstractBaseParameters();
  indexed = true;
}

function indexAbstractBaseParameters(): void {
  const resourceTypes = getResourceTypes();
  for (const file of SEARCH_PARAMETER_BUNDLE_FILES) {
    const bundle = readJson(file) as Bundle<SearchParameter>;
    for (const entry of bundle.entry ?? []) {
      const param = entry.resource;
      if (!param?.base.some((base) => ABSTRACT_BASES.has(base))) {
        continue;
      }
      // A type-specific parameter with the same code wins, as it does on the server.
      const base = resourceTypes.filter((type) => !getSearchParameter(type, param.code));
      indexSearchParameter({ ...param, base });
    }
  }
}

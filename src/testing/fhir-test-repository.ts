import { inspect } from 'node:util';
import {
  allOk,
  badRequest,
  created,
  DEFAULT_MAX_SEARCH_COUNT,
  DEFAULT_SEARCH_COUNT,
  deepEquals,
  formatSearchQuery,
  generateId,
  gone,
  matchesSearchRequest,
  multipleMatches,
  notFound,
  OperationOutcomeError,
  preconditionFailed,
  stringify,
  validateResource,
} from '@medplum/core';
import type { SearchRequest, WithId } from '@medplum/core';
import type {
  CreateResourceOptions,
  DeleteResourceOptions,
  ReadHistoryOptions,
  UpdateResourceOptions,
} from '@medplum/fhir-router';
import type { Bundle, BundleEntry, BundleLink, OperationOutcome, Resource } from '@medplum/fhirtypes';
import { fhirRouter } from './fhir-peers.ts';
import { IdentifierIndex } from './identifier-index.ts';
import { LastUpdatedIndex } from './last-updated-index.ts';

const { MemoryRepository } = fhirRouter;

/**
 * Options of the {@link FhirTestRepository} constructor.
 * @example
 * ```ts
 * const options: FhirTestRepositoryOptions = { baseUrl: 'http://127.0.0.1:8103/' };
 * ```
 */
export interface FhirTestRepositoryOptions {
  /** The server's base URL ending in `/`; links and `fullUrl`s are built from it. */
  readonly baseUrl: string;
}

type HistoryRecord =
  | { readonly kind: 'version'; readonly resource: WithId<Resource> }
  | { readonly kind: 'deletion'; readonly versionId: string; readonly lastUpdated: string };

/**
 * A `MemoryRepository` that answers like a Medplum server where the plain one does not:
 *
 * - a deleted resource reads as 410 Gone (not 404), deleting it again succeeds, and updating
 *   it restores it (the server ignores `If-Match` then, as nothing current exists to match);
 * - an update to an id that never existed is 404 (a normal project user cannot create by id);
 * - an update that changes nothing returns the existing version instead of a new one;
 * - searches page 20 results by default (at most 1000) with absolute `self`/`next`/`previous`
 *   links and `fullUrl`s, and report `total` only when `_total` asks for it;
 * - instance history lists versions newest first, with deletions as 410 entries.
 *
 * @example
 * ```ts
 * const repo = new FhirTestRepository({ baseUrl: 'http://127.0.0.1:8103/' });
 * const patient = await repo.createResource({ resourceType: 'Patient' });
 * await repo.deleteResource('Patient', patient.id);
 * await repo.readResource('Patient', patient.id); // throws OperationOutcomeError(gone)
 * ```
 */
export class FhirTestRepository extends MemoryRepository {
  readonly #fhirBase: string;
  // MemoryRepository drops a deleted resource's history and reverses its own history array in
  // place on every read, so versions and deletions are recorded here, oldest first.
  readonly #history = new Map<string, HistoryRecord[]>();
  readonly #deleted = new Set<string>();
  readonly #identifiers = new IdentifierIndex();
  readonly #lastUpdated = new LastUpdatedIndex();

  /**
   * @param options - The base URL the repository is served under.
   */
  constructor(options: FhirTestRepositoryOptions) {
    super();
    if (typeof options.baseUrl !== 'string' || !options.baseUrl.endsWith('/')) {
      throw new TypeError(`baseUrl must be a URL ending in '/', got ${inspect(options.baseUrl)}`);
    }
    this.#fhirBase = `${options.baseUrl}fhir/R4/`;
  }

  /**
   * Removes every resource, version and deletion.
   * @example
   * ```ts
   * server.repo.clear();
   * ```
   */
  override clear(): void {
    super.clear();
    this.#history.clear();
    this.#deleted.clear();
    this.#identifiers.clear();
    this.#lastUpdated.clear();
  }

  /**
   * Creates a resource (or, with `update`, writes a new version) and records it in history.
   * @param resource - The resource to store.
   * @param options - Whether the id in `resource` was assigned by the server.
   * @param update - True to write a new version of an existing id.
   * @returns The stored resource with id and meta.
   * @example
   * ```ts
   * const patient = await repo.createResource({ resourceType: 'Patient' });
   * ```
   */
  override async createResource<T extends Resource>(
    resource: T,
    options?: CreateResourceOptions,
    update = false,
  ): Promise<WithId<T>> {
    rejectInvalid(resource);
    const result = await super.createResource(resource, options, update);
    this.#record(result);
    return result;
  }

  /**
   * Creates a resource unless the search finds one, as `If-None-Exist` asks. The search goes
   * through {@link FhirTestRepository.search}, so the identifier index answers it:
   * `MemoryRepository.conditionalCreate` scans every resource of the type (FHIRPath per
   * resource), which made each conditional create cost O(stored): at about 10,000 Patients
   * under load, a drain's batch of conditional creates outlasted its 14 s request limit (the
   * 20,000-record backfill crash test failed there on every attempt).
   * @param resource - The resource to create.
   * @param search - The search that finds an existing copy.
   * @param options - Whether the id in `resource` was assigned by the server.
   * @returns The created or found resource, with `created` or `allOk`.
   * @example
   * ```ts
   * await repo.conditionalCreate(patient, parseSearchRequest('Patient?identifier=urn:legacy|42'));
   * ```
   */
  override async conditionalCreate<T extends Resource>(
    resource: T,
    search: SearchRequest<T>,
    options?: CreateResourceOptions,
  ): Promise<{ resource: WithId<T>; outcome: OperationOutcome }> {
    rejectInvalid(resource);
    if (search.resourceType !== resource.resourceType)
      return super.conditionalCreate(resource, search, options);
    // As MemoryRepository decides, with the search answered as any other.
    const { sortRules: _unsorted, ...unsorted } = search;
    const found = await this.searchResources<T>({ ...unsorted, count: 2, offset: 0 });
    if (found.length > 1) throw new OperationOutcomeError(multipleMatches);
    const [existing] = found;
    if (existing !== undefined) {
      if (options?.assignedId !== true && resource.id !== undefined && resource.id !== existing.id) {
        throw new OperationOutcomeError(
          badRequest('Resource ID did not match resolved ID', `${resource.resourceType}.id`),
        );
      }
      return { resource: existing, outcome: allOk };
    }
    return { resource: await this.createResource(resource, options), outcome: created };
  }

  /**
   * Reads the current version; a deleted resource is 410 Gone, an unknown one 404.
   * @param resourceType - The resource type.
   * @param id - The resource id.
   * @returns The resource.
   * @example
   * ```ts
   * const patient = await repo.readResource<Patient>('Patient', id);
   * ```
   */
  override async readResource<T extends Resource>(resourceType: string, id: string): Promise<T> {
    if (this.#deleted.has(`${resourceType}/${id}`)) {
      throw new OperationOutcomeError(gone);
    }
    return super.readResource<T>(resourceType, id);
  }

  /**
   * Writes a new version, like a Medplum server: 412 on a stale `ifMatch`, 404 for an id that
   * never existed, the existing version when nothing changed, and a restore of a deleted id.
   * @param resource - The full new state, with its id.
   * @param options - `ifMatch`: the version id the caller last saw.
   * @returns The stored version.
   * @example
   * ```ts
   * await repo.updateResource({ ...patient, active: true }, { ifMatch: patient.meta?.versionId });
   * ```
   */
  override async updateResource<T extends Resource>(
    resource: T,
    options?: UpdateResourceOptions,
  ): Promise<WithId<T>> {
    const { resourceType, id } = resource;
    if (!id) {
      return super.updateResource(resource, options);
    }
    if (this.#deleted.delete(`${resourceType}/${id}`)) {
      return this.createResource(resource, undefined, true);
    }
    // Throws 404 for an id that never existed, where MemoryRepository would create it.
    const existing = await super.readResource<WithId<T>>(resourceType, id);
    if (options?.ifMatch && existing.meta?.versionId !== options.ifMatch) {
      throw new OperationOutcomeError(preconditionFailed);
    }
    if (isUnchanged(existing, resource)) {
      return existing;
    }
    return this.createResource(resource, undefined, true);
  }

  /**
   * Deletes a resource; deleting it again succeeds, as on a Medplum server.
   * @param resourceType - The resource type.
   * @param id - The resource id.
   * @param options - `ifMatch`: the version id the caller last saw.
   * @example
   * ```ts
   * await repo.deleteResource('Patient', id);
   * ```
   */
  override async deleteResource(
    resourceType: string,
    id: string,
    options?: DeleteResourceOptions,
  ): Promise<void> {
    const key = `${resourceType}/${id}`;
    if (this.#deleted.has(key)) {
      return;
    }
    await super.deleteResource(resourceType, id, options);
    this.#deleted.add(key);
    this.#identifiers.remove(resourceType, id);
    this.#lastUpdated.remove(resourceType, id);
    this.#history
      .get(key)
      ?.push({ kind: 'deletion', versionId: generateId(), lastUpdated: new Date().toISOString() });
  }

  /**
   * Removes resources and all their history for good.
   * @param resourceType - The resource type.
   * @param ids - The resource ids.
   * @example
   * ```ts
   * await repo.expungeResources('Patient', [id]);
   * ```
   */
  override async expungeResources(resourceType: string, ids: string[]): Promise<void> {
    await super.expungeResources(resourceType, ids);
    for (const id of ids) {
      this.#identifiers.remove(resourceType, id);
      this.#lastUpdated.remove(resourceType, id);
      this.#history.delete(`${resourceType}/${id}`);
      this.#deleted.delete(`${resourceType}/${id}`);
    }
  }

  /**
   * Lists a resource's versions newest first, deletions included as 410 entries; works for a
   * deleted resource too.
   * @param resourceType - The resource type.
   * @param id - The resource id.
   * @param options - `offset` and `limit` (default 100) of the page.
   * @returns A `history` bundle.
   * @example
   * ```ts
   * const latest = (await repo.readHistory('Patient', id)).entry?.[0];
   * ```
   */
  override readHistory<T extends Resource>(
    resourceType: string,
    id: string,
    options?: ReadHistoryOptions,
  ): Promise<Bundle<T>> {
    return settle(() => {
      const records = this.#history.get(`${resourceType}/${id}`);
      if (!records) {
        throw new OperationOutcomeError(notFound);
      }
      const offset = options?.offset ?? 0;
      const newestFirst = records.toReversed().slice(offset, offset + (options?.limit ?? 100));
      return {
        resourceType: 'Bundle',
        type: 'history',
        entry: newestFirst.map((record) => this.#historyEntry(resourceType, id, record) as BundleEntry<T>),
      };
    });
  }

  /**
   * Reads one version, also of a deleted resource.
   * @param resourceType - The resource type.
   * @param id - The resource id.
   * @param versionId - The version id.
   * @returns That version.
   * @example
   * ```ts
   * const first = await repo.readVersion('Patient', id, versionId);
   * ```
   */
  override readVersion<T extends Resource>(resourceType: string, id: string, versionId: string): Promise<T> {
    return settle(() => {
      const record = this.#history.get(`${resourceType}/${id}`)?.find((r) => versionOf(r) === versionId);
      if (!record) {
        throw new OperationOutcomeError(notFound);
      }
      if (record.kind === 'deletion') {
        throw new OperationOutcomeError(gone);
      }
      return structuredClone(record.resource) as unknown as T;
    });
  }

  /**
   * Searches one page (20 by default, at most 1000) with absolute paging links and `fullUrl`s;
   * `total` only when the request sets `_total`.
   * @param searchRequest - The parsed search.
   * @returns A `searchset` bundle.
   * @example
   * ```ts
   * const page = await repo.search(parseSearchRequest('Patient?_sort=_lastUpdated&_count=50'));
   * ```
   */
  override async search<T extends Resource>(searchRequest: SearchRequest<T>): Promise<Bundle<WithId<T>>> {
    const count = Math.min(searchRequest.count ?? DEFAULT_SEARCH_COUNT, DEFAULT_MAX_SEARCH_COUNT);
    const offset = searchRequest.offset ?? 0;
    const paged = { ...searchRequest, count, offset };
    const bundle =
      (await this.#searchByIdentifier(paged)) ??
      (await this.#searchInOrder(paged)) ??
      (await super.search(paged));
    if (searchRequest.fields !== undefined) {
      for (const entry of bundle.entry ?? []) {
        if (entry.resource) entry.resource = onlyElements(entry.resource, searchRequest.fields);
      }
    }
    const total = bundle.total ?? 0;
    const links: BundleLink[] = [{ relation: 'self', url: this.#searchUrl(paged) }];
    links.push({ relation: 'first', url: this.#searchUrl({ ...paged, offset: 0 }) });
    if (offset + count < total) {
      links.push({ relation: 'next', url: this.#searchUrl({ ...paged, offset: offset + count }) });
    }
    if (offset > 0) {
      links.push({
        relation: 'previous',
        url: this.#searchUrl({ ...paged, offset: Math.max(0, offset - count) }),
      });
    }
    for (const entry of bundle.entry ?? []) {
      if (entry.resource) {
        entry.fullUrl = `${this.#fhirBase}${entry.resource.resourceType}/${entry.resource.id}`;
      }
    }
    const result: Bundle<WithId<T>> = { ...bundle, link: links };
    // A Medplum server counts only on request, and code that relies on `total` should show it.
    if (searchRequest.total === undefined || searchRequest.total === 'none') {
      delete result.total;
    }
    return result;
  }

  /** A search the identifier index answers, shaped as the scan's result; `undefined` to scan. */
  async #searchByIdentifier<T extends Resource>(
    searchRequest: SearchRequest<T>,
  ): Promise<Bundle<WithId<T>> | undefined> {
    const ids = this.#identifiers.candidates(searchRequest);
    if (ids === undefined) return undefined;
    const matches: WithId<T>[] = [];
    // An `_id` list matches its candidates by construction: evaluating the filter's FHIRPath
    // on each cost more than the rest of the search.
    const byId = searchRequest.filters?.[0]?.code === '_id';
    for (const id of ids) {
      const resource = await super.readResource<WithId<T>>(searchRequest.resourceType, id);
      if (byId || matchesSearchRequest(resource, searchRequest)) matches.push(resource);
    }
    const offset = searchRequest.offset ?? 0;
    const page = matches.slice(
      offset,
      searchRequest.count === undefined ? undefined : offset + searchRequest.count,
    );
    const bundle: Bundle<WithId<T>> = { resourceType: 'Bundle', type: 'searchset', total: matches.length };
    if (page.length > 0) bundle.entry = page.map((resource) => ({ search: { mode: 'match' }, resource }));
    return bundle;
  }

  /**
   * A search sorted by `_lastUpdated` that the index walks: candidates in order, each matched,
   * until the page and one more are found (the one more only says a next page exists).
   */
  async #searchInOrder<T extends Resource>(
    searchRequest: SearchRequest<T>,
  ): Promise<Bundle<WithId<T>> | undefined> {
    const found = this.#lastUpdated.candidates(searchRequest, (type, id) =>
      this.#identifiers.position(type, id),
    );
    if (found === undefined) return undefined;
    const offset = searchRequest.offset ?? 0;
    const count = searchRequest.count ?? DEFAULT_SEARCH_COUNT;
    const page: WithId<T>[] = [];
    let skipped = 0;
    for (const id of found.ids) {
      if (page.length > count) break;
      const resource = await super.readResource<WithId<T>>(searchRequest.resourceType, id);
      if (!found.exact && !matchesSearchRequest(resource, searchRequest)) continue;
      if (skipped < offset) skipped += 1;
      else page.push(resource);
    }
    // `total` here is a lower bound: enough for the `next` link, and dropped from the answer.
    const bundle: Bundle<WithId<T>> = {
      resourceType: 'Bundle',
      type: 'searchset',
      total: offset + page.length,
    };
    const shown = page.slice(0, count);
    if (shown.length > 0) bundle.entry = shown.map((resource) => ({ search: { mode: 'match' }, resource }));
    return bundle;
  }

  #record(resource: WithId<Resource>): void {
    this.#identifiers.put(resource);
    this.#lastUpdated.put(resource);
    const key = `${resource.resourceType}/${resource.id}`;
    const records = this.#history.get(key) ?? [];
    records.push({ kind: 'version', resource: structuredClone(resource) });
    this.#history.set(key, records);
  }

  #searchUrl(searchRequest: SearchRequest): string {
    return `${this.#fhirBase}${searchRequest.resourceType}${formatSearchQuery(searchRequest)}`;
  }

  #historyEntry(resourceType: string, id: string, record: HistoryRecord): BundleEntry {
    const url = `${resourceType}/${id}/_history/${versionOf(record)}`;
    const fullUrl = `${this.#fhirBase}${resourceType}/${id}`;
    if (record.kind === 'version') {
      const resource = structuredClone(record.resource);
      return {
        fullUrl,
        request: { method: 'GET', url },
        response: { status: '200', outcome: allOk },
        resource,
      };
    }
    const outcome: OperationOutcome = {
      ...gone,
      issue: [{ severity: 'error', code: 'deleted', details: { text: `Deleted on ${record.lastUpdated}` } }],
    };
    return { fullUrl, request: { method: 'GET', url }, response: { status: '410', outcome } };
  }
}

// What `_elements` leaves of a resource: its type, id, meta and the elements named.
function onlyElements<T extends Resource>(resource: T, fields: readonly string[]): T {
  const kept: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(resource)) {
    if (name === 'resourceType' || name === 'id' || name === 'meta' || fields.includes(name))
      kept[name] = value;
  }
  return kept as T;
}

// Runs a synchronous lookup behind the repository's promise interface; a throw rejects.
function settle<T>(lookup: () => T): Promise<T> {
  return new Promise((resolve) => {
    resolve(lookup());
  });
}

function versionOf(record: HistoryRecord): string | undefined {
  return record.kind === 'version' ? record.resource.meta?.versionId : record.versionId;
}

// The server compares the stored resource with the would-be new version, whose meta differs
// only in versionId/lastUpdated/author, which deepEquals ignores under the 'meta' path.
function isUnchanged(existing: Resource, incoming: Resource): boolean {
  const candidate = { ...incoming, meta: { ...incoming.meta, ...pickVersion(existing) } };
  return deepEquals(JSON.parse(stringify(existing)), JSON.parse(stringify(candidate)));
}

function pickVersion(resource: Resource): { versionId?: string; lastUpdated?: string } {
  const picked: { versionId?: string; lastUpdated?: string } = {};
  if (resource.meta?.versionId) {
    picked.versionId = resource.meta.versionId;
  }
  if (resource.meta?.lastUpdated) {
    picked.lastUpdated = resource.meta.lastUpdated;
  }
  return picked;
}

/**
 * Validates a resource against the indexed FHIR definitions, as a Medplum server does before
 * every write: an invalid one is a 400 whose issues name the fields (`Patient.birthDate`).
 */
function rejectInvalid(resource: Resource): void {
  const errors = validateResource(resource).filter(
    (issue) => issue.severity === 'error' || issue.severity === 'fatal',
  );
  if (errors.length > 0) {
    throw new OperationOutcomeError({ resourceType: 'OperationOutcome', issue: errors });
  }
}

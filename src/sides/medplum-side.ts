import type { MedplumClient, MedplumRequestOptions, WithId } from '@medplum/core';
import type { Bundle, Resource, ResourceType } from '@medplum/fhirtypes';
import { RejectedError, UnavailableError, type ErrorDetails } from '../errors.ts';
import { checkValue, fhirId } from '../option-checks.ts';
import { withHttpExchange } from './http-capture.ts';
import { abortedRequestError, DEFAULT_REQUEST_TIMEOUT_MS, requestSignal } from './request-deadline.ts';
import { currentRequestScope } from './request-scope.ts';
import { classifyMedplumError } from './medplum-failure.ts';
import { unknownIfLanded } from './write-outcome.ts';
import { WriteBundler, type BundledOutcome, type BundledWrite } from './write-bundler.ts';
import { interactionCost, type PacerLane, type QuotaPacer, type RequestCost } from '../pacing/quota-pacer.ts';

/**
 * One page of a search, as {@link MedplumSide.searchPage} returns it.
 *
 * @example
 * ```ts
 * const page: SearchPage<Patient> = { resources: [], next: undefined };
 * ```
 */
export interface SearchPage<R extends Resource> {
  /** The matches on this page, in the server's order. */
  readonly resources: readonly WithId<R>[];
  /** The absolute URL of the next page, when there is one. */
  readonly next: string | undefined;
}

/**
 * The library's view of Medplum: each method makes one HTTP request through the user's
 * `MedplumClient` and throws the library's typed errors. It never retries; the caller does.
 */
export class MedplumSide {
  readonly #client: MedplumClient;
  readonly #bundler: WriteBundler | undefined;
  readonly #pacer: QuotaPacer | undefined;
  readonly #lane: PacerLane;
  readonly #timeoutMs: number;

  /**
   * @param client - The user's client (built with {@link createMedplumClient} for real HTTP statuses).
   * @param bundle - Most writes (creates, updates, deletes) that go together in one batch
   *   `Bundle`; 1 sends each as a request of its own.
   * @param pacing - The pacer every request waits on (shared by all sides of one client), this
   *   side's lane, and for bundled writes the most batches in flight at once.
   * @param timeoutMs - How long a request may go unanswered (once the pacer let it go) before
   *   it is abandoned with a {@link RequestTimeoutError}.
   */
  constructor(
    client: MedplumClient,
    bundle = 1,
    pacing: MedplumSidePacing = {},
    timeoutMs = DEFAULT_REQUEST_TIMEOUT_MS,
  ) {
    this.#client = client;
    this.#timeoutMs = timeoutMs;
    this.#pacer = pacing.pacer;
    this.#lane = pacing.lane ?? 'live';
    this.#bundler =
      bundle > 1
        ? new WriteBundler(client, bundle, {
            requests: pacing.requests ?? Number.POSITIVE_INFINITY,
            pacer: pacing.pacer,
            lane: this.#lane,
            timeoutMs,
          })
        : undefined;
  }

  /**
   * Reads a resource; `undefined` when it does not exist or was deleted (404, 410).
   *
   * @param resourceType - The resource type.
   * @param id - The Medplum id.
   * @returns The resource or `undefined`.
   */
  async read<R extends Resource>(resourceType: string, id: string): Promise<WithId<R> | undefined> {
    const segment = pathSegment(id);
    try {
      return (await this.#call({ resourceType, medplumId: id }, 'read', (options) =>
        this.#client.readResource(resourceType as ResourceType, segment, options),
      )) as WithId<R>;
    } catch (err) {
      if (isGone(err)) return undefined;
      throw err;
    }
  }

  /**
   * Finds the resource carrying an identifier. More than one match is a duplicate the library
   * did not create; it is reported, not guessed at.
   *
   * @param resourceType - The resource type.
   * @param system - The identifier system.
   * @param value - The identifier value (the legacy id).
   * @returns The resource or `undefined`.
   */
  async findByIdentifier<R extends Resource>(
    resourceType: string,
    system: string,
    value: string,
  ): Promise<WithId<R> | undefined> {
    const details = { resourceType, legacyId: value };
    const found = await this.#call(details, 'search', (options) =>
      this.#client.searchResources(
        resourceType as ResourceType,
        new URLSearchParams({ identifier: `${system}|${value}`, _count: '2' }),
        options,
      ),
    );
    if (found.length > 1) {
      throw new RejectedError(
        `${resourceType} has ${found.length} resources with the identifier of legacy id ${value}; link one by hand`,
        ['identifier'],
        details,
      );
    }
    return found[0] as WithId<R> | undefined;
  }

  /**
   * Finds the resources carrying any of several identifiers of one system, in one search per
   * {@link MedplumSide.SEARCH_VALUES} values (`identifier=system|a,system|b,…`): a batch of
   * mirrors looks its unlinked records up at once instead of one request each.
   *
   * Only unambiguous answers are given. Values are matched to the resources found ignoring case
   * (a superset of any server's rule), and a value is left out of the answer when it could be
   * confused with another: when two values searched for differ only by case, or when a resource
   * found matches more than one of them. A value left out is for the caller to search on its
   * own; so is one whose list holds more than one resource (a duplicate to report).
   *
   * @param resourceType - The resource type.
   * @param system - The identifier system.
   * @param values - The identifier values (legacy ids); those a search value would have to
   *   escape (`,`, `|`, `$`, `\`) are left out of the answer.
   * @returns The values answered, each with the resources that carry it.
   */
  async findManyByIdentifier<R extends Resource>(
    resourceType: string,
    system: string,
    values: readonly string[],
  ): Promise<ReadonlyMap<string, readonly WithId<R>[]>> {
    const byLower = new Map<string, string[]>();
    for (const value of new Set(values)) {
      if (value === '' || /[,|$\\]/.test(value)) continue;
      const lower = value.toLowerCase();
      byLower.set(lower, [...(byLower.get(lower) ?? []), value]);
    }
    // Values that differ only by case are left out: a resource found could be either's.
    const searched = [...byLower.values()].flatMap((same) => (same.length === 1 ? same : []));
    const found = new Map<string, WithId<R>[]>();
    const chunks: string[][] = [];
    for (let i = 0; i < searched.length; i += MedplumSide.SEARCH_VALUES)
      chunks.push(searched.slice(i, i + MedplumSide.SEARCH_VALUES));
    const pages = await Promise.all(
      chunks.map((chunk) => this.#searchIdentifiers<R>(resourceType, system, chunk)),
    );
    const confused = new Set<string>();
    pages.forEach((resources, n) => {
      const chunk = chunks[n] ?? [];
      // An incomplete page answers nothing: a value it lacks might be on the next one.
      if (resources === undefined) return;
      for (const value of chunk) found.set(value, []);
      const lowerSystem = system.toLowerCase();
      for (const resource of resources) {
        const identifiers =
          (resource as { identifier?: { system?: string; value?: string }[] }).identifier ?? [];
        const matched = new Set<string>();
        for (const identifier of identifiers) {
          if (identifier.system?.toLowerCase() !== lowerSystem || identifier.value === undefined) continue;
          for (const value of byLower.get(identifier.value.toLowerCase()) ?? []) matched.add(value);
        }
        for (const value of matched) {
          found.get(value)?.push(resource);
          if (matched.size > 1) confused.add(value);
        }
      }
    });
    for (const value of confused) found.delete(value);
    return found;
  }

  /** Values per identifier search: pages stay far below any server's `_count` limit. */
  static readonly SEARCH_VALUES = 50;

  /** One search for a chunk of values; `undefined` when the page was full (maybe incomplete). */
  async #searchIdentifiers<R extends Resource>(
    resourceType: string,
    system: string,
    values: readonly string[],
  ): Promise<readonly WithId<R>[] | undefined> {
    const count = values.length * 2 + 1;
    const resources = await this.#call({ resourceType }, 'search', (options) =>
      this.#client.searchResources(
        resourceType as ResourceType,
        new URLSearchParams({
          identifier: values.map((value) => `${system}|${value}`).join(','),
          _count: String(count),
        }),
        options,
      ),
    );
    return resources.length >= count
      ? undefined
      : (resources as readonly WithId<Resource>[] as readonly WithId<R>[]);
  }

  /**
   * Creates a resource. With `identifier`, conditionally: `If-None-Exist` on it makes the
   * server return the existing copy instead of creating a second one when another process
   * created it first (for writes nothing else guards). Without, a plain POST (for mirrors an
   * outbox lease guards, after a search).
   *
   * @param resource - The resource without id.
   * @param identifier - The identifier that makes the record unique, for a conditional create.
   * @param details - The record concerned, for errors.
   * @returns The resource as stored, and whether this call created it.
   */
  async create<R extends Resource>(
    resource: R,
    identifier: { readonly system: string; readonly value: string } | undefined,
    details: ErrorDetails,
  ): Promise<{ resource: WithId<R>; created: boolean }> {
    const { resourceType } = resource;
    const write = { method: 'POST', resourceType, url: resourceType, resource } as const;
    if (identifier === undefined) {
      // Nothing on the server stops a second copy: only the lease does, so it must still hold.
      await currentRequestScope()?.fence();
      const { stored } = await this.#write(details, write, (options) =>
        this.#client.createResource(resource, options),
      );
      return { resource: stored as WithId<R>, created: true };
    }
    const query = `identifier=${encodeURIComponent(`${identifier.system}|${identifier.value}`)}`;
    const { stored, status } = await this.#write(details, { ...write, ifNoneExist: query }, (options) =>
      this.#client.createResourceIfNoneExist(resource, query, options),
    );
    // 201 Created; 200 OK means the search found a copy. Without a captured status (a client
    // built without the fetch wrapper) the two cannot be told apart: assume created.
    return { resource: stored as WithId<R>, created: status === undefined ? true : status === 201 };
  }

  /**
   * Updates a resource guarded by `If-Match`; a stale version is a {@link ConflictError}.
   *
   * @param resource - The resource with id.
   * @param expectedVersion - The `meta.versionId` it must still have, or `undefined` for none.
   * @param details - The record concerned, for errors.
   * @returns The updated resource.
   */
  async update<R extends Resource>(
    resource: R,
    expectedVersion: string | undefined,
    details: ErrorDetails,
  ): Promise<WithId<R>> {
    const segment = pathSegment(resource.id);
    // Medplum ignores an unquoted If-Match value: it must be W/"<versionId>".
    const ifMatch = expectedVersion === undefined ? undefined : `W/"${expectedVersion}"`;
    const write = {
      method: 'PUT',
      resourceType: resource.resourceType,
      url: `${resource.resourceType}/${segment}`,
      resource,
      ifMatch,
    } as const;
    const { stored } = await this.#write(details, write, (options) => {
      if (ifMatch !== undefined) options.headers = { 'If-Match': ifMatch };
      return this.#client.updateResource({ ...resource, id: segment }, options);
    });
    return stored as WithId<R>;
  }

  /**
   * Deletes a resource; a missing or already deleted one is not an error.
   *
   * @param resourceType - The resource type.
   * @param id - The Medplum id.
   * @param details - The record concerned, for errors.
   */
  async delete(resourceType: string, id: string, details: ErrorDetails): Promise<void> {
    const segment = pathSegment(id);
    try {
      await this.#write(
        details,
        { method: 'DELETE', resourceType, url: `${resourceType}/${segment}` },
        (options) => this.#client.deleteResource(resourceType as ResourceType, segment, options),
      );
    } catch (err) {
      if (!isGone(err)) throw err;
    }
  }

  /**
   * Reads one page of a search: the first page from `query`, a later one from the `next` link
   * of the page before (an absolute URL the server built, followed as is).
   *
   * @param resourceType - The resource type searched.
   * @param query - The search parameters, or the previous page's `next` URL.
   * @returns The page's resources (in the server's order) and the next page's URL, if any.
   * @example
   * ```ts
   * let page = await side.searchPage('Patient', new URLSearchParams({ _sort: '_lastUpdated', _count: '100' }));
   * while (page.next !== undefined) page = await side.searchPage('Patient', new URL(page.next));
   * ```
   */
  async searchPage<R extends Resource>(
    resourceType: string,
    query: URLSearchParams | URL,
  ): Promise<SearchPage<R>> {
    const url =
      query instanceof URL ? query : this.#client.fhirSearchUrl(resourceType as ResourceType, query);
    const bundle = await this.#call({ resourceType }, 'search', (options) =>
      this.#client.get<Bundle<WithId<R>>>(url, options),
    );
    return {
      resources: (bundle.entry ?? []).flatMap((entry) =>
        entry.resource === undefined ? [] : [entry.resource],
      ),
      next: bundle.link?.find((link) => link.relation === 'next')?.url,
    };
  }

  /**
   * One write: alone, or in the current turn's bundle when bundling is on. A create or update
   * answers the resource as stored; its absence is transient (the mirror reads again).
   */
  async #write(
    details: ErrorDetails,
    write: BundledWrite,
    request: (options: MedplumRequestOptions) => Promise<unknown>,
  ): Promise<{ stored: WithId<Resource> | undefined; status: number | undefined }> {
    const alone = async (): Promise<BundledOutcome> => {
      const cost = interactionCost(
        write.method === 'POST' ? 'create' : write.method === 'PUT' ? 'update' : 'delete',
      );
      // The time limit starts once the pacer lets the request go.
      let signal: AbortSignal | undefined;
      const result = await this.#paced(cost, () => {
        signal = requestSignal(this.#timeoutMs);
        return request({ maxRetries: 0, cache: 'no-cache', signal });
      });
      if (result.ok)
        return {
          ok: true,
          status: result.exchange.status,
          resource: result.value as WithId<Resource> | undefined,
        };
      const aborted =
        signal === undefined
          ? undefined
          : abortedRequestError(signal, this.#timeoutMs, true, { ...details, side: 'medplum' });
      return { ok: false, error: aborted ?? result.error, exchange: result.exchange };
    };
    const outcome = this.#bundler === undefined ? await alone() : await this.#bundler.send(write, alone);
    // A write whose answer was lost (no answer, a gateway's 502, an unreadable success) may
    // have landed: it is an OutcomeUnknownError, never an UnavailableError ("not written").
    if (!outcome.ok) {
      if ('unavailable' in outcome) {
        const { message, status, retryAfterMs, cause } = outcome.unavailable;
        throw unknownIfLanded(
          new UnavailableError(message, { ...details, side: 'medplum', status, cause }, retryAfterMs),
        );
      }
      throw unknownIfLanded(
        classifyMedplumError(outcome.error, outcome.exchange, { ...details, side: 'medplum' }),
        outcome.error,
      );
    }
    if (write.method !== 'DELETE' && outcome.resource?.id === undefined) {
      throw unknownIfLanded(
        new UnavailableError(`Medplum answered a ${write.method} of ${write.url} without the resource`, {
          ...details,
          side: 'medplum',
          status: outcome.status,
        }),
      );
    }
    return { stored: outcome.resource, status: outcome.status };
  }

  /** One request, within the pacer's budget; its answer's limits go back to the pacer. */
  async #paced<T>(cost: RequestCost, request: () => Promise<T>): ReturnType<typeof withHttpExchange<T>> {
    const pacer = this.#pacer;
    if (pacer === undefined) return withHttpExchange(request);
    await pacer.acquire(cost, this.#lane);
    const result = await withHttpExchange(request);
    pacer.observe(result.exchange.headers, cost);
    return result;
  }

  async #call<T>(
    details: ErrorDetails,
    kind: 'read' | 'search',
    request: (options: MedplumRequestOptions) => Promise<T>,
  ): Promise<T> {
    // A fresh options object per call: MedplumClient mutates the one it is given. Its own
    // retries are off whatever the client was built with; reads bypass its cache; a request
    // unanswered for the time limit (from when the pacer lets it go), or whose mirror lost its
    // lease, is abandoned.
    let signal: AbortSignal | undefined;
    const result = await this.#paced(interactionCost(kind), () => {
      signal = requestSignal(this.#timeoutMs);
      return request({ maxRetries: 0, cache: 'no-cache', signal });
    });
    if (result.ok) return result.value;
    throw (
      (signal === undefined
        ? undefined
        : abortedRequestError(signal, this.#timeoutMs, false, { ...details, side: 'medplum' })) ??
      classifyMedplumError(result.error, result.exchange, { ...details, side: 'medplum' })
    );
  }
}

/**
 * A Medplum id as a URL path segment. `MedplumClient` joins ids into paths as they are, so an id
 * that is not a FHIR id (`../AuditEvent`) would name another path on the server: it is refused,
 * whoever supplied it (a caller, a stored link, a notification). A FHIR id needs no escaping;
 * it is encoded anyway, so nothing unchecked can reach a path.
 */
function pathSegment(id: unknown): string {
  checkValue(id, fhirId, 'id', 'input');
  return encodeURIComponent(id);
}

/**
 * How a {@link MedplumSide} keeps to the server's rate limits.
 *
 * @example
 * ```ts
 * const pacing: MedplumSidePacing = { pacer: new QuotaPacer(), lane: 'background', requests: 4 };
 * ```
 */
export interface MedplumSidePacing {
  /** The pacer of the client's user; none: requests go as they come. */
  readonly pacer?: QuotaPacer | undefined;
  /** @default 'live' */
  readonly lane?: PacerLane | undefined;
  /** Most bundled batches in flight at once. @default unbounded */
  readonly requests?: number | undefined;
}

function isGone(err: unknown): boolean {
  return err instanceof RejectedError && (err.status === 404 || err.status === 410);
}

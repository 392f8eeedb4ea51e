import type { WithId } from '@medplum/core';
import type { ExtractResource, Resource, ResourceType } from '@medplum/fhirtypes';
import { contentHash } from './divergence/normalise.ts';
import { DualWriteError, InvalidInputError, MappingError, MirrorError, type Side } from './errors.ts';
import { LinkCache } from './journal/link-cache.ts';
import type { Link } from './journal/link.ts';
import { MemoryStore } from './journal/memory-store.ts';
import { legacyIdOf, runMapping, withLegacyIdentifier } from './mapping/mapped-record.ts';
import type { ResourceMapping } from './mapping/resource-mapping.ts';
import { applyToLegacy, withId } from './mirror/apply-to-legacy.ts';
import { applyToMedplum } from './mirror/apply-to-medplum.ts';
import { RecordLocks } from './mirror/record-locks.ts';
import { retryPolicyOf, withRetries, type RetryPolicy } from './mirror/retry-policy.ts';
import type { WriteGuard } from './mirror/write-guard.ts';
import type { CutoverPlan } from './plan/cutover-plan.ts';
import type { Stage, StageRoute } from './plan/stage.ts';
import { classifyLegacyError } from './sides/legacy-failure.ts';
import type { LegacyAdapter, LegacyRecord } from './sides/legacy-adapter.ts';
import { MedplumSide } from './sides/medplum-side.ts';
import type { SideAction, SideOutcome, WriteResult } from './write-result.ts';
import type { DualWriteEvent } from './dual-write-event.ts';
import {
  validateDualWriterOptions,
  type DualWriterOptions,
  type WriteCallOptions,
} from './dual-writer-options.ts';

interface Routed<L> {
  readonly mapping: ResourceMapping<L>;
  readonly unit: string;
  readonly route: StageRoute & { readonly stage: Stage };
}

/** What the authority and mirror steps of one call produced. */
interface SyncState<L> {
  legacyId: string;
  legacy: { action: SideAction; record: LegacyRecord<L> | undefined };
  medplum: { action: SideAction; resource: WithId<Resource> | undefined };
  mirrorAttempts: number;
}

/**
 * Wraps the legacy system and Medplum: every write goes to the side that is the authority for
 * the call's unit and resource type, then is mirrored to the other side when the stage says
 * so, and the two copies stay linked by the legacy id carried as a FHIR identifier.
 *
 * Legacy-shaped calls (`create`, `update`, `delete`, `read`) take legacy rows; FHIR-shaped
 * calls (`createResource`, `updateResource`, `deleteResource`, `readResource`, named as
 * `MedplumClient` names them) take resources, so a record can start on either side. Writes of
 * one record run one at a time, in call order, within a process.
 *
 * @typeParam C - The per-call context type.
 * @typeParam L - The legacy row type.
 * @example
 * ```ts
 * const writer = new DualWriter({ legacy, medplum, mappings: [patients], plan });
 * const result = await writer.create('Patient', { first_name: 'Ada', last_name: 'Lovelace' }, { clinic: 'north' });
 * console.log(result.legacyId, result.medplumId, result.mirror);
 * ```
 */
export class DualWriter<C, L> {
  readonly #legacy: LegacyAdapter<L>;
  readonly #medplum: MedplumSide;
  readonly #mappings = new Map<string, ResourceMapping<L>>();
  readonly #plan: CutoverPlan<C>;
  readonly #links: LinkCache;
  readonly #retry: RetryPolicy;
  readonly #locks = new RecordLocks();
  readonly #onEvent: ((event: DualWriteEvent) => void) | undefined;

  /**
   * @param options - The two systems, mappings, plan and policies.
   * @throws {@link ConfigurationError} naming the option when one is missing or invalid.
   */
  constructor(options: DualWriterOptions<C, L>) {
    validateDualWriterOptions(options);
    const { legacy, medplum, mappings, plan } = options;
    for (const mapping of mappings as readonly ResourceMapping<L>[])
      this.#mappings.set(mapping.resourceType, mapping);
    const cacheSize = options.linkCacheSize ?? 10_000;
    this.#legacy = legacy;
    this.#medplum = new MedplumSide(medplum);
    this.#plan = plan;
    this.#links = new LinkCache(options.store ?? new MemoryStore(), cacheSize);
    this.#retry = retryPolicyOf(options.retry);
    this.#onEvent = options.onEvent;
  }

  /**
   * Creates a record from a legacy row: written to the authority, mirrored to the other side.
   * Replaying a create that already landed (same row) is not an error: it returns `unchanged`.
   *
   * @param type - The FHIR resource type of the record's mapping.
   * @param row - The legacy row. Its legacy id may be absent when the legacy system assigns ids
   *   and is the authority.
   * @param ctx - The call's context (gives the unit).
   * @returns What was written on each side.
   * @throws {@link InvalidInputError} for an unknown type or a missing row; {@link MappingError}
   *   when the mapping rejects the row (nothing written); {@link ConflictError} when the record
   *   already exists with other content; {@link MirrorError} when the authority write landed
   *   but the mirror failed.
   * @example
   * ```ts
   * const { legacyId, medplumId } = await writer.create('Patient', row, { clinic: 'north' });
   * ```
   */
  async create(type: string, row: L, ctx: C): Promise<WriteResult<L>> {
    const routed = this.#route(type, ctx);
    const { mapping, route } = routed;
    requireObject(row, 'row');
    let legacyId = runMapping('legacyId', () => mapping.legacyId(row), { resourceType: type });
    if (route.authority === 'medplum' || route.mirrorTo === 'medplum') {
      // Map before writing anything: a row the mapping rejects must leave both sides untouched.
      const probe = runMapping('toFhir', () => mapping.toFhir(row), { resourceType: type, legacyId });
      if (legacyId === undefined && route.authority === 'medplum')
        legacyId = await this.#newLegacyId(mapping, probe, 'row');
    }
    if (legacyId === undefined) {
      // The legacy system assigns the id: the first write cannot be replayed, so it runs once.
      const record = await this.#legacyCall(() => this.#legacy.create(type, row), type, undefined);
      return this.#withLock(routed, record.id, (link) =>
        this.#sync('create', routed, record.id, link, {
          legacy: () => Promise.resolve({ record, action: 'created' as const }),
          medplum: (state) => ({
            desired: (existing) => mapping.toFhir(state.row(), existing),
            guard: { kind: 'last-sync' },
          }),
        }),
      );
    }
    const id = legacyId;
    return this.#withLock(routed, id, (link) =>
      this.#sync('create', routed, id, link, {
        legacy: (state) => ({
          // The caller's row is the record's full legacy state: the mapped fields come from the
          // Medplum copy when Medplum went first, the rest (unmapped columns) from the row.
          desired: () => (state.resource === undefined ? row : mapping.toLegacy(state.resource, row)),
          guard: state.resource === undefined ? { kind: 'create' } : { kind: 'last-sync' },
        }),
        medplum: (state) =>
          state.legacyDone
            ? { desired: (existing) => mapping.toFhir(state.row(), existing), guard: { kind: 'last-sync' } }
            : { desired: (existing) => mapping.toFhir(row, existing), guard: { kind: 'create' } },
      }),
    );
  }

  /**
   * Creates a record from a FHIR resource. When Medplum is the authority the resource must
   * carry its legacy id as an identifier under the mapping's system (or the mapping must
   * implement `newLegacyId`); when the legacy system is, it may assign the id.
   *
   * @param resource - The resource to create.
   * @param ctx - The call's context.
   * @returns What was written on each side.
   * @throws {@link InvalidInputError} naming `resource.resourceType` or `resource.identifier`.
   * @example
   * ```ts
   * await writer.createResource({
   *   resourceType: 'Patient',
   *   identifier: [{ system: 'https://legacy.example.org/patient-id', value: 'p-77' }],
   *   name: [{ family: 'Hopper' }],
   * }, { clinic: 'south' });
   * ```
   */
  async createResource<R extends Resource>(resource: R, ctx: C): Promise<WriteResult<L, WithId<R>>> {
    requireObject(resource, 'resource');
    const routed = this.#route(resource.resourceType, ctx, 'resource.resourceType');
    const { mapping, route } = routed;
    const type = mapping.resourceType;
    let legacyId = legacyIdOf(resource, mapping.identifierSystem);
    if (route.authority === 'legacy' || route.mirrorTo === 'legacy') {
      runMapping('toLegacy', () => mapping.toLegacy(resource), { resourceType: type, legacyId });
    }
    if (legacyId === undefined && route.authority === 'medplum')
      legacyId = await this.#newLegacyId(mapping, resource, 'resource');
    if (legacyId === undefined) {
      const record = await this.#legacyCall(
        () => this.#legacy.create(type, mapping.toLegacy(resource)),
        type,
        undefined,
      );
      return this.#withLock(routed, record.id, (link) =>
        this.#sync('create', routed, record.id, link, {
          legacy: () => Promise.resolve({ record, action: 'created' as const }),
          medplum: (state) => ({
            desired: (existing) => mapping.toFhir(state.row(), replacing(resource, existing)),
            guard: { kind: 'last-sync' },
          }),
        }),
      ) as Promise<WriteResult<L, WithId<R>>>;
    }
    const id = legacyId;
    return this.#withLock(routed, id, (link) =>
      this.#sync('create', routed, id, link, {
        legacy: (state) => ({
          desired: (existing) => mapping.toLegacy(state.resource ?? resource, existing?.row),
          guard: state.resource === undefined ? { kind: 'create' } : { kind: 'last-sync' },
        }),
        medplum: (state) =>
          state.legacyDone
            ? {
                desired: (existing) => mapping.toFhir(state.row(), replacing(resource, existing)),
                guard: { kind: 'last-sync' },
              }
            : { desired: () => resource, guard: { kind: 'create' } },
      }),
    ) as Promise<WriteResult<L, WithId<R>>>;
  }

  /**
   * Updates a record from a legacy row.
   *
   * @param type - The FHIR resource type of the record's mapping.
   * @param legacyId - The record's legacy id.
   * @param row - The new row.
   * @param ctx - The call's context.
   * @param options - `expectedVersion` for optimistic concurrency on the authority.
   * @returns What was written on each side.
   * @throws {@link RejectedError} with status 404 when the record does not exist on the
   *   authority; {@link ConflictError} when `expectedVersion` is stale or the mirror target
   *   changed since the last sync (wrapped in {@link MirrorError}).
   * @example
   * ```ts
   * await writer.update('Patient', 'p-1', { ...row, last_name: 'Byron' }, { clinic: 'north' });
   * ```
   */
  async update(
    type: string,
    legacyId: string,
    row: L,
    ctx: C,
    options: WriteCallOptions = {},
  ): Promise<WriteResult<L>> {
    const routed = this.#route(type, ctx);
    const { mapping, route } = routed;
    requireId(legacyId, 'legacyId');
    requireObject(row, 'row');
    const rowWithId = withId(mapping, row, legacyId, { resourceType: type, legacyId });
    if (route.authority === 'medplum' || route.mirrorTo === 'medplum') {
      runMapping('toFhir', () => mapping.toFhir(rowWithId), { resourceType: type, legacyId });
    }
    const expected = options.expectedVersion;
    return this.#withLock(routed, legacyId, (link) =>
      this.#sync('update', routed, legacyId, link, {
        legacy: (state) =>
          state.resource === undefined
            ? { desired: () => rowWithId, guard: { kind: 'update', version: expected } }
            : { desired: () => mapping.toLegacy(state.written(), rowWithId), guard: { kind: 'last-sync' } },
        medplum: (state) =>
          state.legacyDone
            ? { desired: (existing) => mapping.toFhir(state.row(), existing), guard: { kind: 'last-sync' } }
            : {
                desired: (existing) => mapping.toFhir(rowWithId, existing),
                guard: { kind: 'update', version: expected },
              },
      }),
    );
  }

  /**
   * Updates a record from a FHIR resource. The resource is found by its `id` when linked, else
   * by its legacy identifier.
   *
   * @param resource - The resource; it needs an `id` or the legacy identifier.
   * @param ctx - The call's context.
   * @param options - `expectedVersion` for optimistic concurrency on the authority.
   * @returns What was written on each side.
   * @example
   * ```ts
   * const patient = await writer.readResource('Patient', id, ctx);
   * await writer.updateResource({ ...patient, gender: 'female' }, ctx);
   * ```
   */
  async updateResource<R extends Resource>(
    resource: R,
    ctx: C,
    options: WriteCallOptions = {},
  ): Promise<WriteResult<L, WithId<R>>> {
    requireObject(resource, 'resource');
    const routed = this.#route(resource.resourceType, ctx, 'resource.resourceType');
    const { mapping, route } = routed;
    const legacyId = await this.#legacyIdOfResource(mapping, resource);
    if (route.authority === 'legacy' || route.mirrorTo === 'legacy') {
      runMapping('toLegacy', () => mapping.toLegacy(resource), {
        resourceType: mapping.resourceType,
        legacyId,
      });
    }
    const expected = options.expectedVersion;
    return this.#withLock(routed, legacyId, (link) =>
      this.#sync('update', routed, legacyId, link, {
        legacy: (state) => ({
          desired: (existing) => mapping.toLegacy(state.resource ?? resource, existing?.row),
          guard: state.resource === undefined ? { kind: 'update', version: expected } : { kind: 'last-sync' },
        }),
        medplum: (state) =>
          state.legacyDone
            ? {
                desired: (existing) => mapping.toFhir(state.row(), replacing(resource, existing)),
                guard: { kind: 'last-sync' },
              }
            : {
                desired: (existing) => replacing(resource, existing),
                guard: { kind: 'update', version: expected },
              },
      }),
    ) as Promise<WriteResult<L, WithId<R>>>;
  }

  /**
   * Deletes a record on both sides, authority first. Deleting a record that is already gone is
   * not an error.
   *
   * @param type - The FHIR resource type of the record's mapping.
   * @param legacyId - The record's legacy id.
   * @param ctx - The call's context.
   * @returns What was done on each side.
   * @example
   * ```ts
   * await writer.delete('Patient', 'p-1', { clinic: 'north' });
   * ```
   */
  async delete(type: string, legacyId: string, ctx: C): Promise<WriteResult<L>> {
    const routed = this.#route(type, ctx);
    requireId(legacyId, 'legacyId');
    return this.#withLock(routed, legacyId, (link) => this.#deleteBoth(routed, legacyId, link));
  }

  /**
   * Deletes a record by its Medplum id on both sides, authority first.
   *
   * @param resourceType - The resource type.
   * @param id - The Medplum id.
   * @param ctx - The call's context.
   * @returns What was done on each side.
   * @example
   * ```ts
   * await writer.deleteResource('Patient', patient.id, { clinic: 'south' });
   * ```
   */
  async deleteResource(resourceType: string, id: string, ctx: C): Promise<WriteResult<L>> {
    const routed = this.#route(resourceType, ctx, 'resourceType');
    requireId(id, 'id');
    const legacyId = await this.#legacyIdOfResource(routed.mapping, { resourceType, id } as Resource);
    return this.#withLock(routed, legacyId, (link) => this.#deleteBoth(routed, legacyId, link));
  }

  /**
   * Reads a record as a legacy row from the stage's read side (Medplum copies are mapped with
   * `toLegacy`).
   *
   * @param type - The FHIR resource type of the record's mapping.
   * @param legacyId - The record's legacy id.
   * @param ctx - The call's context.
   * @returns The row, or `undefined` when the read side has no such record.
   * @example
   * ```ts
   * const row = await writer.read('Patient', 'p-1', { clinic: 'north' });
   * ```
   */
  async read(type: string, legacyId: string, ctx: C): Promise<L | undefined> {
    const { mapping, route } = this.#route(type, ctx);
    requireId(legacyId, 'legacyId');
    if (route.readFrom === 'legacy') {
      return (await this.#legacyCall(() => this.#legacy.read(type, legacyId), type, legacyId))?.row;
    }
    const resource = await this.#findMedplum(mapping, legacyId);
    if (resource === undefined) return undefined;
    const details = { resourceType: type, legacyId };
    return withId(
      mapping,
      runMapping('toLegacy', () => mapping.toLegacy(resource), details),
      legacyId,
      details,
    );
  }

  /**
   * Reads a record as a FHIR resource from the stage's read side (legacy rows are mapped with
   * `toFhir`). Unlike `MedplumClient.readResource`, a missing record gives `undefined`.
   *
   * @param resourceType - The resource type.
   * @param id - The Medplum id.
   * @param ctx - The call's context.
   * @returns The resource, or `undefined`.
   * @example
   * ```ts
   * const patient = await writer.readResource('Patient', id, { clinic: 'south' });
   * ```
   */
  async readResource<RT extends ResourceType>(
    resourceType: RT,
    id: string,
    ctx: C,
  ): Promise<WithId<ExtractResource<RT>> | undefined> {
    type R = ExtractResource<RT>;
    const { mapping, route } = this.#route(resourceType, ctx, 'resourceType');
    requireId(id, 'id');
    if (route.readFrom === 'medplum') return this.#medplum.read<R>(resourceType, id);
    const link = await this.#links.byMedplumId(resourceType, id);
    if (link === undefined) return undefined;
    const record = await this.#legacyCall(
      () => this.#legacy.read(resourceType, link.legacyId),
      resourceType,
      link.legacyId,
    );
    if (record === undefined) return undefined;
    const details = { resourceType, legacyId: link.legacyId };
    const resource = runMapping('toFhir', () => mapping.toFhir(record.row), details);
    return { ...withLegacyIdentifier(resource, mapping, link.legacyId, details), id } as WithId<R>;
  }

  /**
   * The link of a record, if it has been synced.
   *
   * @param resourceType - The resource type.
   * @param legacyId - The legacy id.
   * @returns The link, or `undefined`.
   * @example
   * ```ts
   * const link = await writer.linkOf('Patient', 'p-1');
   * console.log(link?.medplumId, link?.medplumVersion);
   * ```
   */
  linkOf(resourceType: string, legacyId: string): Promise<Link | undefined> {
    return this.#links.get(resourceType, legacyId);
  }

  #route(type: unknown, ctx: C, field = 'type'): Routed<L> {
    if (typeof type !== 'string' || type === '')
      throw new InvalidInputError(field, 'must be a FHIR resource type string');
    const mapping = this.#mappings.get(type);
    if (mapping === undefined) {
      throw new InvalidInputError(
        field,
        `no mapping for ${JSON.stringify(type)}; mapped types: ${[...this.#mappings.keys()].join(', ')}`,
      );
    }
    const unit = this.#plan.unitOf(ctx);
    return { mapping, unit, route: this.#plan.routeOf(unit, type) };
  }

  async #newLegacyId(
    mapping: ResourceMapping<L>,
    resource: Resource,
    field: 'row' | 'resource',
  ): Promise<string> {
    if (mapping.newLegacyId === undefined) {
      throw new InvalidInputError(
        field === 'row' ? 'row' : 'resource.identifier',
        field === 'row'
          ? `has no legacy id, and Medplum is the authority: set the id on the row or implement newLegacyId in the ${mapping.resourceType} mapping`
          : `must carry the legacy id under ${mapping.identifierSystem} when Medplum is the authority (or implement newLegacyId in the mapping)`,
        { resourceType: mapping.resourceType },
      );
    }
    const details = { resourceType: mapping.resourceType };
    let id: unknown;
    try {
      id = await mapping.newLegacyId(resource);
    } catch (err) {
      throw new MappingError('newLegacyId', `threw: ${err instanceof Error ? err.message : String(err)}`, {
        ...details,
        cause: err,
      });
    }
    if (typeof id !== 'string' || id === '')
      throw new MappingError('newLegacyId', 'must return a non-empty string', details);
    return id;
  }

  async #legacyIdOfResource(mapping: ResourceMapping<L>, resource: Resource): Promise<string> {
    const fromIdentifier = legacyIdOf(resource, mapping.identifierSystem);
    if (fromIdentifier !== undefined) return fromIdentifier;
    if (typeof resource.id === 'string' && resource.id !== '') {
      const link = await this.#links.byMedplumId(mapping.resourceType, resource.id);
      if (link !== undefined) return link.legacyId;
      const id = resource.id;
      const { value: stored } = await this.#retrying(
        () => this.#medplum.read(mapping.resourceType, id),
        'medplum',
      );
      const stamped = stored === undefined ? undefined : legacyIdOf(stored, mapping.identifierSystem);
      if (stamped !== undefined) return stamped;
    }
    throw new InvalidInputError(
      'resource.identifier',
      `must carry the legacy id under ${mapping.identifierSystem}, or resource.id must name a linked resource`,
      { resourceType: mapping.resourceType, medplumId: resource.id },
    );
  }

  async #findMedplum(mapping: ResourceMapping<L>, legacyId: string): Promise<WithId<Resource> | undefined> {
    const link = await this.#links.get(mapping.resourceType, legacyId);
    const { value } = await this.#retrying(
      () =>
        link === undefined
          ? this.#medplum.findByIdentifier(mapping.resourceType, mapping.identifierSystem, legacyId)
          : this.#medplum.read(mapping.resourceType, link.medplumId),
      'medplum',
    );
    return value;
  }

  #withLock(
    routed: Routed<L>,
    legacyId: string,
    fn: (link: Link | undefined) => Promise<WriteResult<L>>,
  ): Promise<WriteResult<L>> {
    const type = routed.mapping.resourceType;
    return this.#locks.run(`${type}/${legacyId}`, async () => fn(await this.#links.get(type, legacyId)));
  }

  /**
   * Runs one call: the authority's write, then the mirror, then the link. Both steps use the
   * same idempotent apply functions the journal will replay.
   */
  async #sync(
    operation: 'create' | 'update',
    routed: Routed<L>,
    legacyId: string,
    link: Link | undefined,
    steps: SyncSteps<L>,
  ): Promise<WriteResult<L>> {
    const { mapping, route } = routed;
    const state: SyncState<L> = {
      legacyId,
      legacy: { action: 'skipped', record: undefined },
      medplum: { action: 'skipped', resource: undefined },
      mirrorAttempts: 0,
    };
    const view = (legacyDone: boolean): StepState<L> => ({
      legacyDone,
      resource: state.medplum.resource,
      written: () => {
        if (state.medplum.resource === undefined)
          throw new Error('Medplum copy read before the Medplum write');
        return state.medplum.resource;
      },
      row: () => {
        if (state.legacy.record === undefined) throw new Error('legacy row read before the legacy write');
        return state.legacy.record.row;
      },
    });
    const writeLegacy = async (): Promise<number> => {
      const step = steps.legacy(view(false));
      const { value, attempts } = await this.#retrying(
        () => ('then' in step ? step : applyToLegacy(this.#legacy, { mapping, legacyId, link, ...step })),
        'legacy',
        legacyId,
      );
      state.legacy = { action: value.action, record: value.record };
      return attempts;
    };
    const writeMedplum = async (): Promise<number> => {
      const step = steps.medplum(view(state.legacy.record !== undefined));
      const { value, attempts } = await this.#retrying(
        () => applyToMedplum(this.#medplum, { mapping, legacyId, link, ...step }),
        'medplum',
        legacyId,
      );
      state.medplum = { action: value.action, resource: value.resource };
      return attempts;
    };
    const [first, second] =
      route.authority === 'legacy' ? [writeLegacy, writeMedplum] : [writeMedplum, writeLegacy];
    await first();
    if (route.mirrorTo !== undefined) {
      try {
        state.mirrorAttempts = await second();
      } catch (err) {
        throw this.#mirrorFailed(operation, routed, state, err);
      }
      await this.#saveLink(mapping.resourceType, state, link);
    }
    const result = this.#result(operation, routed, state);
    this.#emit({
      type: 'mirrored',
      resourceType: mapping.resourceType,
      legacyId,
      medplumId: result.medplumId,
      unit: routed.unit,
      stage: route.stage,
      mirror: result.mirror,
    });
    return result;
  }

  async #deleteBoth(routed: Routed<L>, legacyId: string, link: Link | undefined): Promise<WriteResult<L>> {
    const { mapping, route } = routed;
    const type = mapping.resourceType;
    const state: SyncState<L> = {
      legacyId,
      legacy: { action: 'skipped', record: undefined },
      medplum: { action: 'skipped', resource: undefined },
      mirrorAttempts: 0,
    };
    let medplumId = link?.medplumId;
    const deleteLegacy = async (): Promise<number> => {
      const { attempts } = await this.#retrying(
        async () => {
          try {
            await this.#legacy.delete(type, legacyId);
          } catch (err) {
            throw classifyLegacyError(err, { resourceType: type, legacyId });
          }
        },
        'legacy',
        legacyId,
      );
      state.legacy = { action: 'deleted', record: undefined };
      return attempts;
    };
    const deleteMedplum = async (): Promise<number> => {
      const { attempts } = await this.#retrying(
        async () => {
          medplumId ??= (await this.#medplum.findByIdentifier(type, mapping.identifierSystem, legacyId))?.id;
          if (medplumId !== undefined)
            await this.#medplum.delete(type, medplumId, { resourceType: type, legacyId, medplumId });
        },
        'medplum',
        legacyId,
      );
      state.medplum = { action: medplumId === undefined ? 'unchanged' : 'deleted', resource: undefined };
      return attempts;
    };
    const [first, second] =
      route.authority === 'legacy' ? [deleteLegacy, deleteMedplum] : [deleteMedplum, deleteLegacy];
    await first();
    if (route.mirrorTo !== undefined) {
      try {
        state.mirrorAttempts = await second();
      } catch (err) {
        throw this.#mirrorFailed('delete', routed, state, err, medplumId);
      }
      await this.#links.delete(type, legacyId);
    }
    return this.#result('delete', routed, state, medplumId);
  }

  async #saveLink(resourceType: string, state: SyncState<L>, previous: Link | undefined): Promise<void> {
    const resource = state.medplum.resource;
    const record = state.legacy.record;
    if (resource === undefined || record === undefined) return;
    const link: Link = {
      resourceType,
      legacyId: state.legacyId,
      medplumId: resource.id,
      legacyVersion: record.version,
      medplumVersion: resource.meta?.versionId,
      contentHash: contentHash(resource),
      syncedAt: new Date().toISOString(),
    };
    if (
      previous?.medplumId === link.medplumId &&
      previous.legacyVersion === link.legacyVersion &&
      previous.medplumVersion === link.medplumVersion &&
      previous.contentHash === link.contentHash
    ) {
      return;
    }
    await this.#links.save(link);
  }

  async #retrying<T>(
    fn: () => Promise<T>,
    side: Side,
    legacyId?: string,
  ): Promise<{ value: T; attempts: number }> {
    return withRetries(fn, this.#retry, (error, attempt, delayMs) => {
      this.#emit({
        type: 'retry',
        side,
        resourceType: error.resourceType,
        legacyId: legacyId ?? error.legacyId,
        status: error.status,
        attempt,
        delayMs,
        error: error.name,
      });
    });
  }

  async #legacyCall<T>(fn: () => Promise<T>, resourceType: string, legacyId: string | undefined): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw classifyLegacyError(err, { resourceType, legacyId });
    }
  }

  #mirrorFailed(
    operation: WriteResult['operation'],
    routed: Routed<L>,
    state: SyncState<L>,
    err: unknown,
    medplumId?: string,
  ): unknown {
    if (!(err instanceof DualWriteError)) return err;
    const error = new MirrorError(this.#result(operation, routed, state, medplumId), err);
    this.#emit({
      type: 'mirror-failed',
      resourceType: routed.mapping.resourceType,
      legacyId: state.legacyId,
      medplumId: error.medplumId,
      unit: routed.unit,
      stage: routed.route.stage,
      side: err.side,
      status: err.status,
      attempts: err.attempts,
      error: err.name,
    });
    return error;
  }

  #result(
    operation: WriteResult['operation'],
    routed: Routed<L>,
    state: SyncState<L>,
    medplumId?: string,
  ): WriteResult<L> {
    const { route } = routed;
    const mirrored =
      route.mirrorTo === 'legacy'
        ? state.legacy.action
        : route.mirrorTo === 'medplum'
          ? state.medplum.action
          : undefined;
    return {
      operation,
      resourceType: routed.mapping.resourceType,
      unit: routed.unit,
      stage: route.stage,
      authority: route.authority,
      legacyId: state.legacyId,
      medplumId: state.medplum.resource?.id ?? medplumId,
      legacy: outcome(state.legacy.action, state.legacyId, state.legacy.record?.version),
      medplum: outcome(
        state.medplum.action,
        state.medplum.resource?.id ?? medplumId,
        state.medplum.resource?.meta?.versionId,
      ),
      mirror: mirrored === undefined ? 'not-required' : mirrored === 'unchanged' ? 'unchanged' : 'applied',
      mirrorAttempts: state.mirrorAttempts,
      row: state.legacy.record?.row,
      resource: state.medplum.resource,
    };
  }

  #emit(event: DualWriteEvent): void {
    try {
      this.#onEvent?.(event);
    } catch {
      // An observer's failure must never fail a write.
    }
  }
}

/** What a step's builder sees of the call so far. */
interface StepState<L> {
  /** Whether the legacy side has been written in this call. */
  readonly legacyDone: boolean;
  /** The Medplum copy written in this call, when Medplum went first. */
  readonly resource: WithId<Resource> | undefined;
  /** The legacy row written in this call. */
  readonly row: () => L;
  /** The Medplum copy written in this call. */
  readonly written: () => WithId<Resource>;
}

type LegacyStep<L> =
  | { readonly desired: (existing: LegacyRecord<L> | undefined) => L; readonly guard: WriteGuard }
  | Promise<{ record: LegacyRecord<L>; action: 'created' }>;

interface SyncSteps<L> {
  readonly legacy: (state: StepState<L>) => LegacyStep<L>;
  readonly medplum: (state: StepState<L>) => {
    readonly desired: (existing: WithId<Resource> | undefined) => Resource;
    readonly guard: WriteGuard;
  };
}

/**
 * The resource a FHIR-shaped write asks for, on the existing copy's id: an update replaces the
 * whole resource, as a FHIR update does.
 */
function replacing(resource: Resource, existing: WithId<Resource> | undefined): Resource {
  const { id: _id, meta: _meta, ...content } = resource;
  return existing === undefined ? content : { ...content, id: existing.id };
}

function outcome(action: SideAction, id: string | undefined, version: string | undefined): SideOutcome {
  return { action, id: action === 'skipped' ? undefined : id, version };
}

function requireObject(value: unknown, field: string): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidInputError(
      field,
      `must be an object, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`,
    );
  }
}

function requireId(value: unknown, field: string): asserts value is string {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new InvalidInputError(
      field,
      `must be a non-empty string, got ${typeof value === 'string' ? 'an empty string' : typeof value}`,
    );
  }
}

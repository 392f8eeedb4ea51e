import type { WithId } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { attemptGuard, type WriteGuard } from '../conflict/write-guard.ts';
import type { WriteCallOptions } from '../dual-writer-options.ts';
import { valueFreeError } from '../error-values.ts';
import { InvalidInputError, MappingError, type ErrorDetails } from '../errors.ts';
import type { Link } from '../journal/link.ts';
import { legacyIdOf, runMapping } from '../mapping/mapped-record.ts';
import type { ResourceMapping } from '../mapping/resource-mapping.ts';
import { applyToLegacy, withId } from '../mirror/apply-to-legacy.ts';
import { applyToMedplum } from '../mirror/apply-to-medplum.ts';
import { replacing, type MirrorContext } from '../mirror/mirror-entry.ts';
import type { RecordLocks } from '../mirror/record-locks.ts';
import { withReferences } from '../mirror/resolve-references.ts';
import type { AuthorityWrite, Routed, WritePath, WritePlan } from '../mirror/write-path.ts';
import { checkValue, fhirId } from '../option-checks.ts';
import type { LegacyAdapter, LegacyRecord } from '../sides/legacy-adapter.ts';
import { writeLegacy } from '../sides/write-outcome.ts';
import type { WriteResult } from '../write-result.ts';
import { expectedVersionOf, requireId, requireObject, type RecordAccess } from './record-access.ts';

/** What the write calls run on. */
export interface WriteCallParts<C, L> {
  readonly access: RecordAccess<C, L>;
  /** The mirror's context: references are resolved through it. */
  readonly mirror: MirrorContext<L>;
  readonly writes: WritePath<L>;
  /** Orders the calls on one record in this process (shared with the operator's resolutions). */
  readonly locks: RecordLocks;
}

/**
 * A writer's write calls — `create`, `createResource`, `update`, `updateResource`, `delete`,
 * `deleteResource` — checked, mapped before anything is written, and planned for the write
 * path: the authority's write by the stage, the mirror journaled. `DualWriter` documents each.
 *
 * @typeParam C - The per-call context type.
 * @typeParam L - The legacy row type.
 */
export class WriteCalls<C, L> {
  readonly #access: RecordAccess<C, L>;
  readonly #mirror: MirrorContext<L>;
  readonly #writes: WritePath<L>;
  readonly #locks: RecordLocks;

  constructor(parts: WriteCallParts<C, L>) {
    this.#access = parts.access;
    this.#mirror = parts.mirror;
    this.#writes = parts.writes;
    this.#locks = parts.locks;
  }

  /** See `DualWriter.create`. */
  async create(type: string, row: L, ctx: C): Promise<WriteResult<L>> {
    const routed = this.#access.route(type, ctx);
    const { mapping } = routed;
    requireObject(row, 'row');
    let legacyId = runMapping('legacyId', () => mapping.legacyId(row), { resourceType: type });
    // As update, delete and read refuse it: an empty id would be written, then fail every mirror.
    if (legacyId !== undefined) requireId(legacyId, 'legacyId');
    const probe = touchesMedplum(routed)
      ? // Map before writing anything: a row the mapping rejects must leave both sides untouched.
        await this.#probeToFhir(mapping, row, { resourceType: type, legacyId })
      : undefined;
    legacyId ??= await this.#allocateLegacyId(routed, probe);
    if (legacyId === undefined) {
      // The legacy system assigns the id in the write itself; the write path journals the
      // intent in the same transaction (transactional outbox) or just after the write.
      return this.#writes.run(routed, undefined, {
        operation: 'create',
        kind: 'upsert',
        base: undefined,
        authority: async (legacy) => ({
          side: 'legacy',
          action: 'created',
          record: await writeLegacy(() => legacy.create(type, row), { resourceType: type }),
        }),
      });
    }
    const id = legacyId;
    const rowWithId = withId(mapping, row, id, { resourceType: type, legacyId: id });
    return this.#locked(routed, id, 'new', (link) =>
      this.#writes.run(routed, id, this.#rowPlan('create', routed, id, link, rowWithId, { kind: 'create' })),
    );
  }

  /** See `DualWriter.createResource`. */
  async createResource<R extends Resource>(resource: R, ctx: C): Promise<WriteResult<L, WithId<R>>> {
    requireObject(resource, 'resource');
    const routed = this.#access.route(resource.resourceType, ctx, 'resource.resourceType');
    const { mapping } = routed;
    const type = mapping.resourceType;
    let legacyId = legacyIdOf(resource, mapping.identifierSystem);
    if (legacyId !== undefined) requireId(legacyId, 'resource.identifier');
    if (touchesLegacy(routed)) await this.#probeToLegacy(mapping, resource, { resourceType: type, legacyId });
    legacyId ??= await this.#allocateLegacyId(routed, resource, 'resource');
    if (legacyId === undefined) {
      return this.#writes.run(routed, undefined, {
        operation: 'create',
        kind: 'upsert',
        base: resource,
        authority: async (legacy) => ({
          side: 'legacy',
          action: 'created',
          record: await writeLegacy(
            async () => {
              const bound = await withReferences(this.#mirror, mapping, { resource }, { resourceType: type });
              return legacy.create(type, bound.toLegacy(resource, undefined, {}));
            },
            { resourceType: type },
          ),
        }),
      }) as Promise<WriteResult<L, WithId<R>>>;
    }
    const id = legacyId;
    return this.#locked(routed, id, 'new', (link) =>
      this.#writes.run(
        routed,
        id,
        this.#resourcePlan('create', routed, id, link, resource, { kind: 'create' }),
      ),
    ) as Promise<WriteResult<L, WithId<R>>>;
  }

  /** See `DualWriter.update`. */
  async update(
    type: string,
    legacyId: string,
    row: L,
    ctx: C,
    options: WriteCallOptions = {},
  ): Promise<WriteResult<L>> {
    const routed = this.#access.route(type, ctx);
    const { mapping } = routed;
    requireId(legacyId, 'legacyId');
    requireObject(row, 'row');
    const guard = { kind: 'update', version: expectedVersionOf(options) } as const;
    const rowWithId = withId(mapping, row, legacyId, { resourceType: type, legacyId });
    if (touchesMedplum(routed)) await this.#probeToFhir(mapping, rowWithId, { resourceType: type, legacyId });
    return this.#locked(routed, legacyId, 'existing', (link) =>
      this.#writes.run(routed, legacyId, this.#rowPlan('update', routed, legacyId, link, rowWithId, guard)),
    );
  }

  /** See `DualWriter.updateResource`. */
  async updateResource<R extends Resource>(
    resource: R,
    ctx: C,
    options: WriteCallOptions = {},
  ): Promise<WriteResult<L, WithId<R>>> {
    requireObject(resource, 'resource');
    const routed = this.#access.route(resource.resourceType, ctx, 'resource.resourceType');
    const { mapping } = routed;
    if (resource.id !== undefined) checkValue(resource.id, fhirId, 'resource.id', 'input');
    const guard = { kind: 'update', version: expectedVersionOf(options) } as const;
    const legacyId = await this.#legacyIdOfResource(mapping, resource);
    if (touchesLegacy(routed))
      await this.#probeToLegacy(mapping, resource, { resourceType: mapping.resourceType, legacyId });
    return this.#locked(routed, legacyId, 'existing', (link) =>
      this.#writes.run(
        routed,
        legacyId,
        this.#resourcePlan('update', routed, legacyId, link, resource, guard),
      ),
    ) as Promise<WriteResult<L, WithId<R>>>;
  }

  /** See `DualWriter.delete`. */
  async delete(type: string, legacyId: string, ctx: C): Promise<WriteResult<L>> {
    const routed = this.#access.route(type, ctx);
    requireId(legacyId, 'legacyId');
    return this.#locked(routed, legacyId, 'existing', (link) => this.#delete(routed, legacyId, link));
  }

  /** See `DualWriter.deleteResource`. */
  async deleteResource(resourceType: string, id: string, ctx: C): Promise<WriteResult<L>> {
    const routed = this.#access.route(resourceType, ctx, 'resourceType');
    checkValue(id, fhirId, 'id', 'input');
    const legacyId = await this.#legacyIdOfResource(routed.mapping, { resourceType, id } as Resource);
    return this.#locked(routed, legacyId, 'existing', (link) => this.#delete(routed, legacyId, link));
  }

  /**
   * A legacy id for a record that has none yet, allocated before anything is written so the
   * intent can name the record: the mapping's `newLegacyId`, else the adapter's `newId`.
   * While the legacy system is the authority and neither exists, it assigns the id itself
   * (`undefined` here); while Medplum is, the call is rejected.
   */
  async #allocateLegacyId(
    routed: Routed<L>,
    resource: Resource | undefined,
    field: 'row' | 'resource' = 'row',
  ): Promise<string | undefined> {
    const { mapping, route } = routed;
    // While the legacy system is the authority it may assign the id in the write itself, when
    // nothing needs the id first: no mirror to journal, or a transactional outbox that journals
    // in the write's own transaction.
    if (route.authority === 'legacy' && (route.mirrorTo === undefined || this.#writes.transactional))
      return undefined;
    const details = { resourceType: mapping.resourceType };
    let id: unknown;
    try {
      if (mapping.newLegacyId !== undefined && resource !== undefined)
        id = await mapping.newLegacyId(resource);
      else if (this.#access.legacy.newId !== undefined)
        id = await this.#access.legacy.newId(mapping.resourceType);
      if (id === undefined && route.authority === 'legacy') return undefined;
      if (id === undefined) {
        throw new InvalidInputError(
          field === 'row' ? 'row' : 'resource.identifier',
          field === 'row'
            ? `has no legacy id, and Medplum is the authority: set the id on the row or implement newLegacyId in the ${mapping.resourceType} mapping`
            : `must carry the legacy id under ${mapping.identifierSystem} when Medplum is the authority (or implement newLegacyId in the mapping)`,
          details,
        );
      }
    } catch (err) {
      if (err instanceof InvalidInputError) throw err;
      const cause = valueFreeError(err);
      throw new MappingError('newLegacyId', `threw: ${cause.message}`, { ...details, cause });
    }
    if (typeof id !== 'string' || id === '')
      throw new MappingError('newLegacyId', 'must return a non-empty string', details);
    return id;
  }

  async #legacyIdOfResource(mapping: ResourceMapping<L>, resource: Resource): Promise<string> {
    const fromIdentifier = legacyIdOf(resource, mapping.identifierSystem);
    if (fromIdentifier !== undefined) return fromIdentifier;
    if (typeof resource.id === 'string' && resource.id !== '') {
      const link = await this.#access.links.byMedplumId(mapping.resourceType, resource.id);
      if (link !== undefined) return link.legacyId;
      const id = resource.id;
      const { value: stored } = await this.#access.retrying(
        () => this.#access.medplum.read(mapping.resourceType, id),
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

  /**
   * Runs a call's work after earlier calls on the same record in this process, with the
   * record's link. A create (`new`) skips the look-up: its writes find an existing copy by
   * identifier or key anyway, and most creates have none.
   */
  #locked(
    routed: Routed<L>,
    legacyId: string,
    record: 'new' | 'existing',
    fn: (link: Link | undefined) => Promise<WriteResult<L>>,
  ): Promise<WriteResult<L>> {
    const type = routed.mapping.resourceType;
    return this.#locks.run(`${type}/${legacyId}`, async () =>
      fn(record === 'new' ? undefined : await this.#access.links.get(type, legacyId)),
    );
  }

  /**
   * The plan of a call that carries a legacy row, the record's full legacy state: written as
   * is while the legacy system is the authority; mapped with `toFhir` while Medplum is, and
   * then kept as the base of the legacy mirror (its unmapped columns survive).
   */
  #rowPlan(
    operation: 'create' | 'update',
    { mapping, route }: Routed<L>,
    legacyId: string,
    link: Link | undefined,
    row: L,
    guard: WriteGuard,
  ): WritePlan<L> {
    return {
      operation,
      kind: 'upsert',
      base: route.authority === 'medplum' ? row : undefined,
      authority:
        route.authority === 'legacy'
          ? (legacy, landed) =>
              this.#writeLegacy(legacy, mapping, legacyId, link, () => row, attemptGuard(guard, landed))
          : async (_legacy, landed) => {
              // The authority's copy must point at what the row points at: a referenced record
              // without a Medplum copy refuses the write (a DependencyError), nothing written.
              const bound = await withReferences(
                this.#mirror,
                mapping,
                { row },
                { resourceType: mapping.resourceType, legacyId },
              );
              return this.#writeMedplum(
                mapping,
                legacyId,
                link,
                (existing) => bound.toFhir(row, existing, {}),
                attemptGuard(guard, landed),
              );
            },
    };
  }

  /**
   * The plan of a call that carries a FHIR resource, which replaces the Medplum copy (as a FHIR
   * update does): mapped with `toLegacy` while the legacy system is the authority, and then
   * kept as the base of the Medplum mirror (its unmapped elements survive).
   */
  #resourcePlan(
    operation: 'create' | 'update',
    { mapping, route }: Routed<L>,
    legacyId: string,
    link: Link | undefined,
    resource: Resource,
    guard: WriteGuard,
  ): WritePlan<L> {
    return {
      operation,
      kind: 'upsert',
      base: route.authority === 'legacy' ? resource : undefined,
      authority:
        route.authority === 'legacy'
          ? async (legacy, landed) => {
              const bound = await withReferences(
                this.#mirror,
                mapping,
                { resource },
                { resourceType: mapping.resourceType, legacyId },
              );
              return this.#writeLegacy(
                legacy,
                mapping,
                legacyId,
                link,
                (existing) => bound.toLegacy(resource, existing?.row, {}),
                attemptGuard(guard, landed),
              );
            }
          : (_legacy, landed) =>
              this.#writeMedplum(
                mapping,
                legacyId,
                link,
                (existing) => replacing(resource, existing),
                attemptGuard(guard, landed),
              ),
    };
  }

  async #writeLegacy(
    legacy: LegacyAdapter<L>,
    mapping: ResourceMapping<L>,
    legacyId: string,
    link: Link | undefined,
    desired: (existing: LegacyRecord<L> | undefined) => L,
    guard: Parameters<typeof applyToLegacy>[1]['guard'],
  ): Promise<AuthorityWrite<L>> {
    const written = await applyToLegacy(legacy, { mapping, legacyId, link, desired, guard });
    return { side: 'legacy', action: written.action, record: written.record };
  }

  async #writeMedplum(
    mapping: ResourceMapping<L>,
    legacyId: string,
    link: Link | undefined,
    desired: (existing: WithId<Resource> | undefined) => Resource,
    guard: Parameters<typeof applyToMedplum>[1]['guard'],
  ): Promise<AuthorityWrite<L>> {
    const written = await applyToMedplum(this.#access.medplum, { mapping, legacyId, link, desired, guard });
    return { side: 'medplum', action: written.action, resource: written.resource };
  }

  #delete(routed: Routed<L>, legacyId: string, link: Link | undefined): Promise<WriteResult<L>> {
    const { mapping, route } = routed;
    const type = mapping.resourceType;
    const medplum = this.#access.medplum;
    return this.#writes.run(routed, legacyId, {
      operation: 'delete',
      kind: 'delete',
      base: undefined,
      authority: async (legacy) => {
        if (route.authority === 'legacy') {
          await writeLegacy(() => legacy.delete(type, legacyId), { resourceType: type, legacyId });
          return { side: 'legacy', action: 'deleted', record: undefined };
        }
        const medplumId =
          link?.medplumId ?? (await medplum.findByIdentifier(type, mapping.identifierSystem, legacyId))?.id;
        if (medplumId !== undefined)
          await medplum.delete(type, medplumId, { resourceType: type, legacyId, medplumId });
        return {
          side: 'medplum',
          action: medplumId === undefined ? 'unchanged' : 'deleted',
          resource: undefined,
        };
      },
    });
  }

  /**
   * Maps a row before anything is written, so a row the mapping rejects leaves both sides
   * untouched; its references resolved as far as they can be (the mirror waits for the rest).
   */
  async #probeToFhir(mapping: ResourceMapping<L>, row: L, details: ErrorDetails): Promise<Resource> {
    const bound = await withReferences(this.#mirror, mapping, { row }, details, 'lenient');
    return runMapping('toFhir', () => bound.toFhir(row, undefined, {}), details);
  }

  /** {@link WriteCalls.#probeToFhir} for a resource mapped to the legacy system. */
  async #probeToLegacy(mapping: ResourceMapping<L>, resource: Resource, details: ErrorDetails): Promise<L> {
    const bound = await withReferences(this.#mirror, mapping, { resource }, details, 'lenient');
    return runMapping('toLegacy', () => bound.toLegacy(resource, undefined, {}), details);
  }
}

/** Whether a call writes Medplum: as the authority, or as the mirror's target. */
function touchesMedplum<L>({ route }: Routed<L>): boolean {
  return route.authority === 'medplum' || route.mirrorTo === 'medplum';
}

/** Whether a call writes the legacy system: as the authority, or as the mirror's target. */
function touchesLegacy<L>({ route }: Routed<L>): boolean {
  return route.authority === 'legacy' || route.mirrorTo === 'legacy';
}

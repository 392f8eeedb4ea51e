import type { WithId } from '@medplum/core';
import type { ExtractResource, Resource, ResourceType } from '@medplum/fhirtypes';
import { compareLinkedCopies } from '../divergence/compare-copies.ts';
import type { DivergenceChecks, ShadowPair } from '../divergence/divergence-checks.ts';
import type { Side } from '../errors.ts';
import type { Link } from '../journal/link.ts';
import type { SyncStore } from '../journal/sync-store.ts';
import { runMapping, withLegacyIdentifier } from '../mapping/mapped-record.ts';
import type { ResourceMapping } from '../mapping/resource-mapping.ts';
import { withId } from '../mirror/apply-to-legacy.ts';
import type { MirrorContext } from '../mirror/mirror-entry.ts';
import { withReferences } from '../mirror/resolve-references.ts';
import { checkValue, fhirId, resourceTypeName } from '../option-checks.ts';
import type { LegacyRecord } from '../sides/legacy-adapter.ts';
import { requireId, type RecordAccess } from './record-access.ts';

/** What the read calls run on. */
export interface ReadCallParts<C, L> {
  readonly access: RecordAccess<C, L>;
  /** The mirror's context: references are resolved and copies compared through it. */
  readonly mirror: MirrorContext<L>;
  /** Shadow reads: the other side read and compared while a stage says so. */
  readonly checks: DivergenceChecks<L>;
  readonly store: SyncStore;
}

/**
 * A writer's read calls — `read`, `readResource`, `linkOf` — from the stage's read side, the
 * other side's copy read and compared alongside (a shadow read) while the stage says so.
 * `DualWriter` documents each.
 *
 * @typeParam C - The per-call context type.
 * @typeParam L - The legacy row type.
 */
export class ReadCalls<C, L> {
  readonly #access: RecordAccess<C, L>;
  readonly #mirror: MirrorContext<L>;
  readonly #checks: DivergenceChecks<L>;
  readonly #store: SyncStore;

  constructor(parts: ReadCallParts<C, L>) {
    this.#access = parts.access;
    this.#mirror = parts.mirror;
    this.#checks = parts.checks;
    this.#store = parts.store;
  }

  /** See `DualWriter.read`. */
  async read(type: string, legacyId: string, ctx: C): Promise<L | undefined> {
    const { mapping, route, unit } = this.#access.route(type, ctx);
    requireId(legacyId, 'legacyId');
    const pair = this.#pairer(mapping, unit, legacyId, route.authority);
    if (route.readFrom === 'legacy') {
      const record = await this.#checks.shadowRead(
        route.compareWith,
        () => this.#access.legacyCall(() => this.#access.legacy.read(type, legacyId), type, legacyId),
        async () => {
          const resource = await this.#findMedplum(mapping, legacyId);
          return (record) => pair(record, resource);
        },
      );
      return record?.row;
    }
    const resource = await this.#checks.shadowRead(
      route.compareWith,
      () => this.#findMedplum(mapping, legacyId),
      async () => {
        const record = await this.#access.legacy.read(type, legacyId);
        return (resource) => pair(record, resource);
      },
    );
    if (resource === undefined) return undefined;
    const details = { resourceType: type, legacyId };
    const bound = await withReferences(this.#mirror, mapping, { resource }, details, 'lenient');
    return withId(
      mapping,
      runMapping('toLegacy', () => bound.toLegacy(resource, undefined, {}), details),
      legacyId,
      details,
    );
  }

  /** See `DualWriter.readResource`. */
  async readResource<RT extends ResourceType>(
    resourceType: RT,
    id: string,
    ctx: C,
  ): Promise<WithId<ExtractResource<RT>> | undefined> {
    type R = ExtractResource<RT>;
    const { mapping, route, unit } = this.#access.route(resourceType, ctx, 'resourceType');
    checkValue(id, fhirId, 'id', 'input');
    const read = async () => {
      const link = await this.#access.links.byMedplumId(resourceType, id);
      if (link === undefined) return undefined;
      const { legacyId } = link;
      const record = await this.#access.legacyCall(
        () => this.#access.legacy.read(resourceType, legacyId),
        resourceType,
        legacyId,
      );
      return { legacyId, record };
    };
    if (route.readFrom === 'medplum') {
      return this.#checks.shadowRead(
        route.compareWith,
        async () =>
          (await this.#access.retrying(() => this.#access.medplum.read<R>(resourceType, id), 'medplum'))
            .value,
        async () => {
          const legacy = await read();
          return (resource) =>
            legacy === undefined
              ? undefined
              : this.#pairer(mapping, unit, legacy.legacyId, route.authority)(legacy.record, resource);
        },
      );
    }
    const legacy = await this.#checks.shadowRead(route.compareWith, read, async () => {
      const resource = await this.#access.medplum.read(resourceType, id);
      return (found) =>
        found === undefined
          ? undefined
          : this.#pairer(mapping, unit, found.legacyId, route.authority)(found.record, resource);
    });
    if (legacy?.record === undefined) return undefined;
    const details = { resourceType, legacyId: legacy.legacyId };
    const { row } = legacy.record;
    const bound = await withReferences(this.#mirror, mapping, { row }, details, 'lenient');
    const resource = runMapping('toFhir', () => bound.toFhir(row, undefined, {}), details);
    return { ...withLegacyIdentifier(resource, mapping, legacy.legacyId, details), id } as WithId<R>;
  }

  /** See `DualWriter.linkOf`. */
  async linkOf(resourceType: string, legacyId: string): Promise<Link | undefined> {
    checkValue(resourceType, resourceTypeName, 'resourceType', 'input');
    requireId(legacyId, 'legacyId');
    return this.#store.getLink(resourceType, legacyId);
  }

  /** The record's Medplum copy: by its link, else by its legacy identifier. */
  async #findMedplum(mapping: ResourceMapping<L>, legacyId: string): Promise<WithId<Resource> | undefined> {
    const link = await this.#access.links.get(mapping.resourceType, legacyId);
    const { value } = await this.#access.retrying(
      () =>
        link === undefined
          ? this.#access.medplum.findByIdentifier(mapping.resourceType, mapping.identifierSystem, legacyId)
          : this.#access.medplum.read(mapping.resourceType, link.medplumId),
      'medplum',
    );
    return value;
  }

  /** Pairs a record's two copies for a shadow read's comparison. */
  #pairer(mapping: ResourceMapping<L>, unit: string, legacyId: string, authority: Side) {
    return (record: LegacyRecord<L> | undefined, resource: WithId<Resource> | undefined): ShadowPair => ({
      resourceType: mapping.resourceType,
      legacyId,
      medplumId: resource?.id,
      unit,
      differences: () => compareLinkedCopies(this.#mirror, mapping, legacyId, record, resource, authority),
    });
  }
}

import type { Reference, Resource, ResourceType } from '@medplum/fhirtypes';
import { MappingError, type ErrorDetails, type Side } from '../errors.ts';
import type { SyncStore } from '../journal/sync-store.ts';
import type { Dependency } from '../journal/waiting-for.ts';
import { legacyIdOf, runMapping } from '../mapping/mapped-record.ts';
import type { ReferenceField } from '../mapping/reference-fields.ts';
import type { ResourceMapping } from '../mapping/resource-mapping.ts';
import type { LegacyAdapter } from '../sides/legacy-adapter.ts';
import { callLegacy } from '../sides/legacy-failure.ts';
import type { MedplumSide } from '../sides/medplum-side.ts';
import { DependencyError, type DependencyState } from './dependency-error.ts';

/*
 * Resolution of the references a mapping declares, before the mapping is called (mappings stay
 * pure and synchronous). Legacy → Medplum: the row's legacy key becomes `Type/<medplum id>`
 * through the link, else through the identifier the referenced resource carries (a record that
 * started in Medplum, or whose link is being saved). Medplum → legacy: `Type/<id>` (relative,
 * absolute or versioned) becomes the legacy key through the link, else through the resource's
 * identifier once the legacy system has that record; a `Reference.identifier` under the
 * referenced mapping's system is a legacy key already. What cannot be resolved is a
 * DependencyError: the mirror waits, it never writes a dangling reference.
 */

/** What resolving references reads: the links, both sides, and every mapping. */
export interface ReferenceSources<L> {
  readonly legacy: LegacyAdapter<L>;
  readonly medplum: MedplumSide;
  readonly store: SyncStore;
  readonly mappings: ReadonlyMap<string, ResourceMapping<L>>;
}

/**
 * `wait`: a reference that cannot be resolved throws a {@link DependencyError} (mirrors and
 * writes). `lenient`: it resolves as far as it can (comparisons, echo checks): a legacy key
 * becomes a logical reference by identifier, a Medplum reference the legacy key its resource
 * carries, or nothing.
 */
export type ResolveMode = 'wait' | 'lenient';

/** What a declared path resolves to for `toFhir`: one reference, or a list. */
type Resolved = Reference | readonly Reference[] | undefined;
/** What a declared path resolves to for `toLegacy`: one key, or a list. */
type Keys = string | readonly string[] | undefined;

/** Whether a declared path is nested (`participant.individual`): the mapping places those. */
function isNested(path: string): boolean {
  return path.includes('.');
}

/** Every `Reference` at a path of a resource, in document order (lists flattened). */
function referencesAt(resource: unknown, path: string): Reference[] {
  let values: unknown[] = [resource];
  for (const segment of path.split('.')) {
    values = values.flatMap((value) => {
      if (typeof value !== 'object' || value === null) return [];
      const child = (value as Record<string, unknown>)[segment];
      return child === undefined || child === null
        ? []
        : Array.isArray(child)
          ? (child as unknown[])
          : [child];
    });
  }
  return values.filter((value): value is Reference => typeof value === 'object' && value !== null);
}

/** The value with each `Reference` at the path replaced, in document order. */
function replacedAt<T>(
  value: T,
  segments: readonly string[],
  replace: (reference: Reference) => Reference,
): T {
  if (typeof value !== 'object' || value === null) return value;
  if (segments.length === 0) return replace(value) as T;
  const [head = '', ...rest] = segments;
  const child = (value as Record<string, unknown>)[head];
  if (child === undefined || child === null) return value;
  const replaced = Array.isArray(child)
    ? (child as unknown[]).map((item) => replacedAt(item, rest, replace))
    : replacedAt(child, rest, replace);
  return { ...value, [head]: replaced };
}

/** The declared references of a mapping, as entries. */
function declared<L>(mapping: ResourceMapping<L>): [string, ReferenceField<L>][] {
  const references = (mapping as { readonly references?: Readonly<Record<string, ReferenceField<L>>> })
    .references;
  return references === undefined ? [] : Object.entries(references);
}

/**
 * Whether a mapping declares references (a mapping without them costs nothing to resolve).
 *
 * @param mapping - The mapping.
 * @returns `true` when it declares at least one.
 */
export function hasReferences<L>(mapping: ResourceMapping<L>): boolean {
  return declared(mapping).length > 0;
}

/**
 * The FHIR `Reference` of each reference a legacy row declares.
 *
 * @param sources - Links, sides and mappings.
 * @param mapping - The row's mapping.
 * @param row - The legacy row.
 * @param details - The record (for errors).
 * @param mode - What an unresolvable reference does.
 * @returns The references by element.
 * @throws {@link DependencyError} in `wait` mode when a referenced record has no Medplum copy.
 */
export async function fhirReferencesOf<L>(
  sources: ReferenceSources<L>,
  mapping: ResourceMapping<L>,
  row: L,
  details: ErrorDetails,
  mode: ResolveMode = 'wait',
): Promise<Readonly<Record<string, Resolved>>> {
  const resolved: Record<string, Resolved> = {};
  for (const [path, field] of declared(mapping)) {
    const given = runMapping('references', () => field.legacyKey(row) ?? '', details);
    if (typeof given === 'string' && !isNested(path)) {
      resolved[path] =
        given === '' ? undefined : await referenceTo(sources, path, field, given, details, mode);
      continue;
    }
    const keys = typeof given === 'string' ? (given === '' ? [] : [given]) : given;
    if (!Array.isArray(keys) || keys.some((key) => typeof key !== 'string' || key === ''))
      throw new MappingError(path, 'legacyKey must return a string or a list of non-empty strings', details);
    const references: Reference[] = [];
    for (const key of keys as readonly string[])
      references.push(await referenceTo(sources, path, field, key, details, mode));
    resolved[path] = references;
  }
  return resolved;
}

/** The FHIR reference to the Medplum copy of the record `key` names. */
async function referenceTo<L>(
  sources: ReferenceSources<L>,
  element: string,
  field: ReferenceField<L>,
  key: string,
  details: ErrorDetails,
  mode: ResolveMode,
): Promise<Reference> {
  const target = targetMapping(sources, field, element, details);
  const link = await sources.store.getLink(field.resourceType, key);
  const medplumId =
    link?.medplumId ??
    (await sources.medplum.findByIdentifier(field.resourceType, target.identifierSystem, key))?.id;
  if (medplumId !== undefined) return { reference: `${field.resourceType}/${medplumId}` };
  if (mode === 'lenient') {
    return {
      type: field.resourceType as ResourceType,
      identifier: { system: target.identifierSystem, value: key },
    };
  }
  const dependency = { resourceType: field.resourceType, legacyId: key };
  throw new DependencyError(element, dependency, await stateOf(sources, dependency, 'medplum', target), {
    ...details,
    side: 'medplum',
  });
}

/**
 * Waits for a part's owner (see `ResourceMapping.partOf`): a part is mirrored only once the
 * record's owner resource has a copy on the target side — a Medplum copy (linked, or found by
 * its identifier), or the legacy record itself — so a RelatedPerson never reaches Medplum before
 * its Patient, nor writes columns into a legacy record that is not there.
 *
 * @param sources - Links, sides and mappings.
 * @param part - The part's mapping (a mapping that is no part returns at once).
 * @param legacyId - The record's legacy id.
 * @param target - The side the part is mirrored to.
 * @param details - The part's record (for errors).
 * @throws {@link DependencyError} on `partOf` when the owner has no copy on the target side.
 */
export async function awaitOwner<L>(
  sources: ReferenceSources<L>,
  part: ResourceMapping<L>,
  legacyId: string,
  target: Side,
  details: ErrorDetails,
): Promise<void> {
  const owner = part.partOf;
  if (owner === undefined) return;
  const field: ReferenceField<L> = { resourceType: owner, legacyKey: () => legacyId };
  if (target === 'medplum') {
    await referenceTo(sources, 'partOf', field, legacyId, details, 'wait');
    return;
  }
  const dependency = { resourceType: owner, legacyId };
  const record = await callLegacy(() => sources.legacy.read(owner, legacyId), { ...details, ...dependency });
  if (record !== undefined) return;
  const state = await stateOf(
    sources,
    dependency,
    'legacy',
    targetMapping(sources, field, 'partOf', details),
  );
  throw new DependencyError('partOf', dependency, state, { ...details, side: 'legacy' });
}

/**
 * A resource with each declared reference written the one way the library writes it
 * (`Patient/<medplum id>`) when the record it points at is known, however it was written (by
 * identifier, absolute URL, versioned): comparisons then see what a reference points at, not
 * its spelling. Other fields of the reference (`display`) are kept.
 *
 * @param sources - Links, sides and mappings.
 * @param mapping - The resource's mapping.
 * @param resource - The resource.
 * @param details - The record (for errors).
 * @returns The resource, rewritten where needed (the same object when nothing changes).
 */
export async function canonicalReferences<L, R extends Resource>(
  sources: ReferenceSources<L>,
  mapping: ResourceMapping<L>,
  resource: R,
  details: ErrorDetails,
): Promise<R> {
  if (!hasReferences(mapping)) return resource;
  let canonical = resource;
  for (const [path, field] of declared(mapping)) {
    const written = referencesAt(resource, path);
    const rewritten: Reference[] = [];
    for (const reference of written) {
      const key = await legacyKeyOf(
        sources,
        path,
        field,
        reference,
        { ...details, side: 'legacy' },
        'lenient',
      );
      const { reference: _r, identifier: _i, type: _t, ...rest } = reference;
      rewritten.push(
        key === undefined
          ? reference
          : { ...rest, ...(await referenceTo(sources, path, field, key, details, 'lenient')) },
      );
    }
    let next = 0;
    canonical = replacedAt(canonical, path.split('.'), (reference) => rewritten[next++] ?? reference);
  }
  return canonical;
}

/**
 * The legacy key of each reference a resource declares.
 *
 * @param sources - Links, sides and mappings.
 * @param mapping - The resource's mapping.
 * @param resource - The FHIR resource.
 * @param details - The record (for errors).
 * @param mode - What an unresolvable reference does.
 * @returns The legacy keys by element.
 * @throws {@link DependencyError} in `wait` mode when a referenced record has no legacy copy;
 *   {@link MappingError} naming the element when it references another type, or nothing the
 *   library can follow.
 */
export async function legacyKeysOf<L>(
  sources: ReferenceSources<L>,
  mapping: ResourceMapping<L>,
  resource: Resource,
  details: ErrorDetails,
  mode: ResolveMode = 'wait',
): Promise<Readonly<Record<string, Keys>>> {
  const keys: Record<string, Keys> = {};
  const side = { ...details, side: 'legacy' as const };
  for (const [path, field] of declared(mapping)) {
    const value = isNested(path) ? [] : (resource as unknown as Record<string, unknown>)[path];
    if (!isNested(path) && !Array.isArray(value)) {
      const reference = value as Reference | null | undefined;
      keys[path] =
        reference === undefined || reference === null
          ? undefined
          : await legacyKeyOf(sources, path, field, reference, side, mode);
      continue;
    }
    const found: string[] = [];
    for (const reference of referencesAt(resource, path)) {
      const key = await legacyKeyOf(sources, path, field, reference, side, mode);
      if (key !== undefined) found.push(key);
    }
    keys[path] = found;
  }
  return keys;
}

async function legacyKeyOf<L>(
  sources: ReferenceSources<L>,
  element: string,
  field: ReferenceField<L>,
  reference: Reference,
  details: ErrorDetails,
  mode: ResolveMode,
): Promise<string | undefined> {
  const target = targetMapping(sources, field, element, details);
  const { resourceType } = field;
  let key: string | undefined;
  let dependency: Dependency;
  if (
    reference.identifier?.system === target.identifierSystem &&
    typeof reference.identifier.value === 'string'
  ) {
    key = reference.identifier.value;
    if ((await sources.store.getLink(resourceType, key)) !== undefined) return key;
    dependency = { resourceType, legacyId: key };
  } else {
    const medplumId =
      typeof reference.reference === 'string' ? idIn(reference.reference, resourceType) : undefined;
    if (medplumId === undefined) {
      throw new MappingError(
        element,
        `must reference a ${resourceType} by id or by its legacy identifier`,
        details,
      );
    }
    const link = await sources.store.getLinkByMedplumId(resourceType, medplumId);
    if (link !== undefined) return link.legacyId;
    const referenced = await sources.medplum.read(resourceType, medplumId);
    if (referenced === undefined) {
      if (mode === 'lenient') return undefined;
      throw new DependencyError(element, { resourceType, medplumId }, 'missing', details);
    }
    key = legacyIdOf(referenced, target.identifierSystem);
    // A resource created in Medplum that no mirror has given a legacy id yet: wait for it.
    dependency = key === undefined ? { resourceType, medplumId } : { resourceType, legacyId: key };
  }
  // Not linked, but known by its legacy key: usable once the legacy system holds that record
  // (its foreign key would refuse it otherwise).
  if (key !== undefined) {
    const exists = await callLegacy(() => sources.legacy.read(resourceType, key), {
      ...details,
      resourceType,
      legacyId: key,
    });
    if (exists !== undefined || mode === 'lenient') return key;
  } else if (mode === 'lenient') return undefined;
  const state =
    dependency.legacyId === undefined ? 'pending' : await stateOf(sources, dependency, 'legacy', target);
  throw new DependencyError(element, dependency, state, details);
}

/**
 * Why a referenced record has no copy on the target side: its mirror is pending, dead-lettered,
 * or absent — and then whether the authority side has it at all.
 */
async function stateOf<L>(
  sources: ReferenceSources<L>,
  dependency: { readonly resourceType: string; readonly legacyId: string },
  target: Side,
  mapping: ResourceMapping<L>,
): Promise<DependencyState> {
  const { resourceType, legacyId } = dependency;
  if (await sources.store.hasPending(resourceType, legacyId)) return 'pending';
  if ((await sources.store.findDeadLetter(resourceType, legacyId)) !== undefined) return 'dead-lettered';
  const details = { resourceType, legacyId };
  const source =
    target === 'medplum'
      ? await callLegacy(() => sources.legacy.read(resourceType, legacyId), { ...details, side: 'legacy' })
      : await sources.medplum.findByIdentifier(resourceType, mapping.identifierSystem, legacyId);
  return source === undefined ? 'missing' : 'not-mirrored';
}

function targetMapping<L>(
  sources: ReferenceSources<L>,
  field: ReferenceField<L>,
  element: string,
  details: ErrorDetails,
): ResourceMapping<L> {
  const mapping = sources.mappings.get(field.resourceType);
  // Refused at construction; kept for mappings handed to lower layers directly.
  if (mapping === undefined)
    throw new MappingError(element, `references ${field.resourceType}, which has no mapping`, details);
  return mapping;
}

/**
 * The Medplum id in a literal reference to `resourceType`: `Patient/1`, an absolute URL ending so,
 * or either with `/_history/<v>`. `undefined` for another type, a contained (`#…`) or a URN
 * reference.
 */
function idIn(reference: string, resourceType: string): string | undefined {
  const match = /(?:^|\/)([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/.exec(reference);
  return match?.[1] === resourceType ? match[2] : undefined;
}

/**
 * A mapping whose `toFhir` and `toLegacy` use references already resolved for one record, so code
 * that maps synchronously (comparisons, conflict resolution) maps with them too.
 *
 * @param mapping - The mapping.
 * @param references - The record's resolved FHIR references.
 * @param keys - The record's resolved legacy keys.
 * @returns The bound mapping (the mapping itself when it declares none).
 */
export function boundTo<L>(
  mapping: ResourceMapping<L>,
  references: Readonly<Record<string, Resolved>>,
  keys: Readonly<Record<string, Keys>>,
): ResourceMapping<L> {
  if (!hasReferences(mapping)) return mapping;
  // Object.create keeps everything else of the mapping, getters and class methods included.
  return Object.create(mapping, {
    toFhir: {
      value: (row: L, existing: Resource | undefined) =>
        placed(mapping.toFhir(row, existing, references), references),
    },
    toLegacy: {
      value: (resource: Resource, existing: L | undefined) => mapping.toLegacy(resource, existing, keys),
    },
  }) as ResourceMapping<L>;
}

/**
 * The mapped resource with each declared top-level element holding its resolved reference or
 * list (removed where the row points at nothing): whatever the mapping wrote there, the mirror
 * writes what the links say. On a nested path the mapping places the references itself; one
 * there that the library did not resolve (dangling, or to another record) is refused. Mapping
 * output that is no object is left for the identifier check to refuse.
 */
function placed(resource: Resource, references: Readonly<Record<string, Resolved>>): Resource {
  const output: unknown = resource;
  if (typeof output !== 'object' || output === null) return resource;
  for (const [path, resolved] of Object.entries(references)) {
    if (!isNested(path)) continue;
    const known = new Set([resolved ?? []].flat().map((reference) => reference.reference));
    const stray = referencesAt(output, path).find(
      (reference) =>
        (reference.reference !== undefined || reference.identifier !== undefined) &&
        !known.has(reference.reference),
    );
    if (stray !== undefined)
      throw new MappingError(
        path,
        'holds a reference the library did not resolve: place those toFhir received',
      );
  }
  const top = Object.entries(references).filter(([path]) => !isNested(path));
  const kept = Object.entries(output as Record<string, unknown>).filter(
    ([element]) => !top.some(([path]) => path === element),
  );
  const set = top.filter(
    ([, reference]) => reference !== undefined && !(Array.isArray(reference) && reference.length === 0),
  );
  return Object.fromEntries([...kept, ...set]) as unknown as Resource;
}

/**
 * Resolves the references of a record's copies and binds them to its mapping (see
 * {@link boundTo}): the row's for `toFhir`, the resource's for `toLegacy`.
 *
 * @param sources - Links, sides and mappings.
 * @param mapping - The record's mapping.
 * @param copies - The copies to resolve for.
 * @param details - The record (for errors).
 * @param mode - What an unresolvable reference does.
 * @returns The bound mapping.
 */
export async function withReferences<L>(
  sources: ReferenceSources<L>,
  mapping: ResourceMapping<L>,
  copies: { readonly row?: L | undefined; readonly resource?: Resource | undefined },
  details: ErrorDetails,
  mode: ResolveMode = 'wait',
): Promise<ResourceMapping<L>> {
  if (!hasReferences(mapping)) return mapping;
  const references =
    copies.row === undefined ? {} : await fhirReferencesOf(sources, mapping, copies.row, details, mode);
  const keys =
    copies.resource === undefined ? {} : await legacyKeysOf(sources, mapping, copies.resource, details, mode);
  return boundTo(mapping, references, keys);
}

import type { Reference, Resource } from '@medplum/fhirtypes';

/*
 * References between records (DESIGN.md "Write path"). A legacy row points at another record by
 * its legacy key (`encounter.patient_id = 42`); the FHIR resource points at it by a `Reference`
 * (`Encounter.subject = Patient/<the Medplum id linked to legacy 42>`). A mapping declares each
 * such pointer once, by the FHIR element that holds it; the library resolves it through the
 * links before calling the mapping, in whichever direction the mirror goes, so mappings stay
 * pure and synchronous. A pointer the library cannot resolve yet (the referenced record has no
 * copy on the target side) is never written dangling: the mirror waits for it (see
 * `DependencyError`).
 */

/**
 * The top-level elements of a resource type that hold one `Reference`: the names a mapping may
 * declare in {@link ResourceMapping.references}. `Encounter` gives `'subject' | 'partOf' | …`;
 * an element holding a list of references (`Observation.performer`) is not one.
 *
 * @typeParam R - The FHIR resource type.
 * @example
 * ```ts
 * import type { Observation } from '@medplum/fhirtypes';
 * const element: ReferenceElement<Observation> = 'encounter';
 * ```
 */
export type ReferenceElement<R extends Resource> = {
  [P in keyof R]-?: NonNullable<R[P]> extends Reference
    ? NonNullable<R[P]> extends unknown[]
      ? never
      : P
    : never;
}[keyof R] &
  string;

/**
 * One reference a mapping declares: which record type it points at, and where the legacy row
 * keeps that record's legacy key.
 *
 * @typeParam L - The legacy row shape.
 * @example
 * ```ts
 * interface EncounterRow { id?: string; patient_id: string }
 * const subject: ReferenceField<EncounterRow> = { resourceType: 'Patient', legacyKey: (row) => row.patient_id };
 * ```
 */
export interface ReferenceField<L> {
  /**
   * The resource type of the record pointed at. It must have a mapping of its own in the same
   * writer (checked at construction): its links and identifier system resolve the reference.
   */
  readonly resourceType: string;
  /**
   * The legacy key of the record pointed at, from the row; `undefined` (or `''`) when the row
   * points at nothing. Pure and synchronous, like the mapping's other functions.
   */
  legacyKey(row: L): string | null | undefined;
}

/**
 * The references a mapping declares, by the element that holds each.
 *
 * @typeParam L - The legacy row shape.
 * @typeParam K - The elements (see {@link ReferenceElement}).
 * @example
 * ```ts
 * const references: ReferenceFields<{ patient_id: string }, 'subject'> = {
 *   subject: { resourceType: 'Patient', legacyKey: (row) => row.patient_id },
 * };
 * ```
 */
export type ReferenceFields<L, K extends string> = Readonly<Record<K, ReferenceField<L>>>;

/**
 * What `toFhir` receives: each declared reference resolved to a FHIR `Reference` to the
 * Medplum copy (`{ reference: 'Patient/<id>' }`), or `undefined` where the row points at nothing.
 * The library also sets each declared element to it after `toFhir` returns, so a mapping need
 * not place them (and cannot write a dangling one).
 *
 * @typeParam R - The FHIR resource type.
 * @typeParam K - The elements declared.
 * @example
 * ```ts
 * import type { Encounter } from '@medplum/fhirtypes';
 * const resolved: FhirReferences<Encounter, 'subject'> = { subject: { reference: 'Patient/0b3c' } };
 * ```
 */
export type FhirReferences<R extends Resource, K extends keyof R> = {
  readonly [P in K]: NonNullable<R[P]> | undefined;
};

/**
 * What `toLegacy` receives: each declared reference resolved to the legacy key of the record it
 * points at, or `undefined` where the resource points at nothing.
 *
 * @typeParam K - The elements declared.
 * @example
 * ```ts
 * const keys: LegacyKeys<'subject'> = { subject: '42' };
 * ```
 */
export type LegacyKeys<K extends string> = Readonly<Record<K, string | undefined>>;

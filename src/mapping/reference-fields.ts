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
 * The top-level elements of a resource type that hold one `Reference`: `Encounter` gives
 * `'subject' | 'partOf' | …`. An element holding a list of references is no such element (see
 * {@link ReferencePath} for those).
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
 * The elements of `T` that hold one `Reference` or a list of them: the top level of a
 * {@link ReferencePath}, and its second step below a structure.
 *
 * @typeParam T - A FHIR resource or structure type.
 * @example
 * ```ts
 * import type { Observation } from '@medplum/fhirtypes';
 * const holder: ReferenceHolders<Observation> = 'hasMember'; // or 'subject', 'encounter', …
 * ```
 */
export type ReferenceHolders<T> = {
  [P in keyof T]-?: NonNullable<T[P]> extends Reference | readonly Reference[] ? P : never;
}[keyof T] &
  string;

/**
 * Where a mapping may declare references: a top-level element holding one `Reference`
 * (`Encounter.subject`), or one holding a list of them (`Observation.hasMember`), or a child of
 * a structure, one or a list, holding one or a list (`Encounter.participant.individual`,
 * `Condition.evidence.detail`) — one level deep.
 *
 * @typeParam R - The FHIR resource type.
 * @example
 * ```ts
 * import type { Encounter } from '@medplum/fhirtypes';
 * const path: ReferencePath<Encounter> = 'participant.individual';
 * ```
 */
export type ReferencePath<R extends Resource> =
  | ReferenceHolders<R>
  // `element.child` for each element of `R` holding structures (one, or a list) with reference children.
  | ({
      [P in keyof R]-?: NonNullable<R[P]> extends Reference | readonly Reference[]
        ? never
        : NonNullable<R[P]> extends readonly (infer E)[]
          ? E extends object
            ? `${P & string}.${ReferenceHolders<E>}`
            : never
          : NonNullable<R[P]> extends object
            ? `${P & string}.${ReferenceHolders<NonNullable<R[P]>>}`
            : never;
    }[keyof R] &
      string);

/**
 * The `Reference` type at path `P` of `T`: what {@link FhirReferences} holds for a list or a
 * nested path (`Reference<Practitioner | PractitionerRole | RelatedPerson>` for
 * `Encounter`'s `participant.individual`); `Reference` for a path `T` does not have.
 *
 * @typeParam T - A FHIR resource or structure type.
 * @typeParam P - A path of it (see {@link ReferencePath}).
 * @example
 * ```ts
 * import type { Encounter } from '@medplum/fhirtypes';
 * const individual: ReferenceAt<Encounter, 'participant.individual'> = { reference: 'Practitioner/7c1e' };
 * ```
 */
export type ReferenceAt<T, P> = P extends `${infer A}.${infer B}`
  ? A extends keyof T
    ? ReferenceAt<NonNullable<T[A]> extends readonly (infer E)[] ? E : NonNullable<T[A]>, B>
    : Reference
  : P extends keyof T
    ? NonNullable<T[P]> extends readonly (infer E)[]
      ? E
      : NonNullable<T[P]>
    : Reference;

/**
 * One reference a mapping declares: which record type it points at, and where the legacy row
 * keeps that record's legacy key (or, for a list or a nested path, keys).
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
   * points at nothing. For a list or a nested path (`hasMember`, `participant.individual`), the
   * keys in the order the references are to be written (`[]` for none). Pure and synchronous,
   * like the mapping's other functions.
   */
  legacyKey(row: L): string | readonly string[] | null | undefined;
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
 * Medplum copy (`{ reference: 'Patient/<id>' }`), or `undefined` where the row points at nothing;
 * for a list or a nested path, the list of them in the order of the row's keys. The library
 * also sets each declared top-level element to it after `toFhir` returns, so a mapping need not
 * place them (and cannot write a dangling one); references on a nested path the mapping places
 * itself (in its structures), and the library refuses any there that it did not resolve.
 *
 * @typeParam R - The FHIR resource type.
 * @typeParam K - The paths declared.
 * @example
 * ```ts
 * import type { Encounter } from '@medplum/fhirtypes';
 * const resolved: FhirReferences<Encounter, 'subject'> = { subject: { reference: 'Patient/0b3c' } };
 * ```
 */
export type FhirReferences<R extends Resource, K extends string> = {
  // A top-level element that is no list holds one reference; any other path, a list of them.
  readonly [P in K]: P extends keyof R
    ? NonNullable<R[P]> extends unknown[]
      ? readonly ReferenceAt<R, P>[]
      : NonNullable<R[P]> | undefined
    : readonly ReferenceAt<R, P>[];
};

/**
 * What `toLegacy` receives: each declared reference resolved to the legacy key of the record it
 * points at, or `undefined` where the resource points at nothing; for a list or a nested path,
 * the keys of every reference there, in document order (for a top-level list, `undefined` when
 * the resource has no such element).
 *
 * @typeParam K - The paths declared.
 * @typeParam R - The FHIR resource type (without it, every path reads as holding one).
 * @example
 * ```ts
 * const keys: LegacyKeys<'subject'> = { subject: '42' };
 * ```
 */
export type LegacyKeys<K extends string, R = never> = {
  readonly [P in K]: [R] extends [never]
    ? string | undefined
    : P extends keyof R
      ? NonNullable<R[P]> extends unknown[]
        ? readonly string[] | undefined
        : string | undefined
      : readonly string[];
};

import type { NormaliseOptions } from '../divergence/normalise.ts';
import type { Resource } from '@medplum/fhirtypes';
import type { FhirReferences, LegacyKeys, ReferenceFields, ReferencePath } from './reference-fields.ts';

/**
 * How one legacy record type corresponds to one FHIR resource type. The library calls these
 * functions on every mirror; apart from `newLegacyId` they must be pure (no I/O) and
 * deterministic.
 *
 * Both directions receive the other side's current copy as `existing` when there is one: a
 * mapping must start from it and overwrite only the fields it maps, so that data owned by the
 * other system (fields the legacy schema has no column for, extensions added in Medplum) is
 * never wiped by a mirror.
 *
 * A mapping that cannot map an input throws (any error, or a {@link MappingError} naming the
 * field); the library reports it as a permanent {@link MappingError} and writes nothing.
 *
 * A record that points at others (an Encounter at its patient) declares each pointer in
 * `references`; the library resolves them through the links before calling `toFhir` (FHIR
 * `Reference`s) or `toLegacy` (legacy keys), and a mirror whose referenced record has no copy
 * on the target side yet waits for it (README, "References between records").
 *
 * @typeParam L - The legacy row shape.
 * @typeParam R - The FHIR resource type.
 * @typeParam K - The elements of `R` that hold references the mapping declares (none by default).
 * @example
 * ```ts
 * import type { Patient } from '@medplum/fhirtypes';
 *
 * interface PatientRow { id?: string; first_name: string; last_name: string; vip?: boolean }
 *
 * const patients: ResourceMapping<PatientRow, Patient> = {
 *   resourceType: 'Patient',
 *   identifierSystem: 'https://legacy.example.org/patient-id',
 *   legacyId: (row) => row.id,
 *   toFhir: (row, existing) => ({
 *     ...existing,
 *     resourceType: 'Patient',
 *     name: [{ given: [row.first_name], family: row.last_name }],
 *   }),
 *   toLegacy: (patient, existing) => ({
 *     ...existing,
 *     first_name: patient.name?.[0]?.given?.[0] ?? '',
 *     last_name: patient.name?.[0]?.family ?? '',
 *   }),
 * };
 * ```
 */
export interface ResourceMapping<L, R extends Resource = Resource, K extends ReferencePath<R> = never> {
  /** The FHIR resource type this mapping produces; also the key the writer routes by. */
  readonly resourceType: R['resourceType'];
  /**
   * The `Identifier.system` under which every mirrored resource carries its legacy id. The
   * library adds the identifier itself; a mapping need not.
   */
  readonly identifierSystem: string;
  /**
   * The legacy id of a row, or `undefined` when the row has none yet (the legacy system assigns
   * ids on create).
   */
  legacyId(row: L): string | undefined;
  /**
   * The other records this one points at, by the element of `R` that holds each reference:
   * `{ subject: { resourceType: 'Patient', legacyKey: (row) => row.patient_id } }`. Every
   * referenced type needs a mapping of its own in the same writer.
   * @default {}
   */
  readonly references?: ReferenceFields<L, K> | undefined;
  /**
   * Set on a mapping that draws a further resource from another mapping's legacy record (a
   * RelatedPerson from the guardian columns of the `patient_data` row the Patient mapping
   * owns): the owner's resource type. The part has its own link, identifier (its own
   * `identifierSystem`, the record's legacy id as value), conflicts and divergence checks, but
   * no legacy record of its own: the library reads and writes the owner's record for it (the
   * adapter is called with the owner's type), and a mirror of the owner towards Medplum queues
   * one of each part. A part is mirrored only once its owner has a copy on the target side;
   * deleting the record deletes every part's copy. Write calls with legacy rows go through the
   * owner's type (README, "One legacy record, several resources").
   * @default undefined (the mapping owns its records)
   */
  readonly partOf?: string | undefined;
  /**
   * For a part ({@link ResourceMapping.partOf}): whether a record holds it (a `patient_data`
   * row with empty guardian columns holds no RelatedPerson). A record that does not gets no copy
   * of the part, and loses the one it had.
   * @default every record holds it
   */
  present?(row: L): boolean;
  /**
   * Maps a legacy row to the FHIR resource. `existing` is the current Medplum copy when the
   * record is linked: keep its fields you do not map. `references` holds each declared
   * reference resolved to the Medplum copy it points at (`{ reference: 'Patient/<id>' }`), or
   * `undefined` where the row points at nothing; the library sets each declared element to it
   * afterwards, so the mapping need not.
   */
  toFhir(row: L, existing: R | undefined, references: FhirReferences<R, K>): R;
  /**
   * Maps a FHIR resource to a legacy row. `existing` is the current legacy row when there is
   * one: keep its columns you do not map. `keys` holds each declared reference resolved to the
   * legacy key of the record it points at, or `undefined` where it points at nothing. The
   * library sets the legacy id afterwards through {@link ResourceMapping.withLegacyId} when the
   * row lacks it.
   */
  toLegacy(resource: R, existing: L | undefined, keys: LegacyKeys<K, R>): L;
  /**
   * Returns the row with its legacy id set. Needed when a record starts in Medplum (its legacy
   * id comes from the resource's identifier); without it such creates are rejected for rows
   * whose `legacyId` is missing.
   */
  withLegacyId?(row: L, legacyId: string): L;
  /**
   * Allocates a legacy id for a record created while Medplum is the authority that carries
   * none (a resource without an identifier under `identifierSystem`, or a row without an id).
   * Unlike the other functions it may be async and do I/O, e.g. draw the next value of the
   * legacy table's sequence. Without it, such a record is rejected with an
   * `InvalidInputError` naming `resource.identifier` (or `row`).
   */
  newLegacyId?(resource: R): string | Promise<string>;
  /**
   * What a delete made directly in one system (seen by a change feed) does to the other, per
   * direction: `propagate` deletes the other copy, `review` deletes nothing and opens a dead
   * letter (reason `DeleteReviewError`) an operator resolves, with a `delete-review` event,
   * `ignore` deletes nothing and records a
   * `delete-ignored` event. Deleting a legacy row can orphan everything keyed by it, so a
   * delete from the side that is not the authority for the record's unit defaults to `review`.
   * @default `propagate` for a delete made in the authority, `review` for one made in the other system
   */
  readonly deletes?: DeletePolicies | undefined;
  /**
   * How the two copies of this type are compared for divergence, shadow reads and conflict
   * reports: paths to ignore (`'extension'`, `'name.period'`), arrays whose order does not
   * matter (`'identifier'`, `'telecom'`), date-time precision. `meta`, `id` and generated
   * `text` are always ignored.
   * @default {}
   */
  readonly compare?: NormaliseOptions | undefined;
}

/**
 * What a delete seen in one system does to the other: `propagate` (delete it there too),
 * `review` (delete nothing; a `delete-review` event for an operator) or `ignore` (delete
 * nothing; a `delete-ignored` event).
 *
 * @example
 * ```ts
 * const policy: DeletePolicy = 'review';
 * ```
 */
export type DeletePolicy = 'propagate' | 'review' | 'ignore';

/**
 * A mapping's delete policy per direction (see {@link ResourceMapping.deletes}).
 *
 * @example
 * ```ts
 * const deletes: DeletePolicies = { fromMedplum: 'review', fromLegacy: 'propagate' };
 * ```
 */
export interface DeletePolicies {
  /**
   * A delete made directly in the legacy system.
   * @default 'propagate' where legacy is the authority, else 'review'
   */
  readonly fromLegacy?: DeletePolicy | undefined;
  /**
   * A delete made directly in Medplum.
   * @default 'propagate' where Medplum is the authority, else 'review'
   */
  readonly fromMedplum?: DeletePolicy | undefined;
}

import type { Resource } from '@medplum/fhirtypes';
import { diff, type DiffKind } from '../divergence/diff.ts';
import type { FhirReferences, LegacyKeys, ReferencePath } from '../mapping/reference-fields.ts';
import type { ResourceMapping } from '../mapping/resource-mapping.ts';

/**
 * Checks a mapping before the first write: which fields do not survive a round trip, which
 * fields of the other side's copy a mirror would wipe, which rows have no legacy id. A mapping
 * that always sets `name.use`, or rewrites `'F'` to `'other'`, makes the copies differ after every
 * mirror — a divergence that never clears and blocks readiness — and this says so up front.
 * Findings are JSON paths, never values, so a report can go to a CI log.
 */

/**
 * What a finding is about.
 *
 * - `row-round-trip`: `toLegacy(toFhir(row), row)` differs from `row` at the path: the mapping
 *   changes the value on the way (the legacy feed would mirror it back and forth).
 * - `resource-round-trip`: `toFhir(toLegacy(resource), resource)` differs from `resource`: the
 *   mapping sets or changes a field the row does not carry (divergence that never clears).
 * - `row-unmapped` / `resource-unmapped`: lost without `existing` (the mapping does not carry
 *   it; it survives only because mirrors spread the other copy). Informational.
 * - `wipes-existing-resource` / `wipes-existing-row`: present in `existing`, absent from what the
 *   mapping returns: a mirror would delete it (the mapping does not spread `existing`). A field the
 *   mapping writes itself for some sample (a `birthDate` from a `DOB`) is its own to clear for a
 *   record that has none, and is not counted.
 * - `missing-legacy-id`: `legacyId(row)` answers nothing, or another id after the round trip.
 *
 * @example
 * ```ts
 * const check: RoundTripCheck = 'resource-round-trip';
 * ```
 */
export type RoundTripCheck =
  | 'row-round-trip'
  | 'resource-round-trip'
  | 'row-unmapped'
  | 'resource-unmapped'
  | 'wipes-existing-resource'
  | 'wipes-existing-row'
  | 'missing-legacy-id';

/**
 * One finding: which sample, which check, which path.
 *
 * @example
 * ```ts
 * const finding: RoundTripFinding = { sample: 'resources[0]', check: 'resource-round-trip', path: 'name[0].use', kind: 'added' };
 * ```
 */
export interface RoundTripFinding {
  /** `rows[i]` or `resources[i]`. */
  readonly sample: string;
  readonly check: RoundTripCheck;
  /** The JSON path (`''` for the whole record). */
  readonly path: string;
  /** As the diff says: `added` after the round trip, `removed`, or `changed`. */
  readonly kind: DiffKind;
}

/**
 * The checker's answer.
 *
 * @example
 * ```ts
 * const { ok, findings } = checkMappingRoundTrip(patients, { rows, resources });
 * ```
 */
export interface RoundTripReport {
  /** No finding other than the informational `*-unmapped` ones. */
  readonly ok: boolean;
  readonly findings: readonly RoundTripFinding[];
}

/**
 * Sample records to run the mapping on: rows as the legacy system stores them, resources as
 * Medplum holds them (with the fields other applications write, so wipes show).
 *
 * @example
 * ```ts
 * const samples: RoundTripSamples<PatientRow, Patient> = { rows: [{ id: 1, sex: 'F' }], resources: [patient] };
 * ```
 */
export interface RoundTripSamples<L, R> {
  readonly rows?: readonly L[] | undefined;
  readonly resources?: readonly R[] | undefined;
}

/** A field no mapping knows, put into `existing` to see whether a mirror keeps what it does not map. */
const PROBE_URL = 'urn:medplum-dualwrite:round-trip-probe';
const PROBE_COLUMN = '__dualwrite_round_trip_probe';

/**
 * Runs the mapping on samples and reports, as JSON paths, what does not survive the round trips,
 * what a mirror would wipe from the other side's copy, and rows without a legacy id.
 *
 * @param mapping - The mapping to check.
 * @param samples - Rows and resources to run it on.
 * @returns The findings; `ok` when none but the informational ones.
 * @example
 * ```ts
 * import { checkMappingRoundTrip } from 'medplum-dualwrite/testing';
 * const report = checkMappingRoundTrip(patients, { rows: [{ id: 1, first_name: 'Ada', last_name: 'L' }] });
 * if (!report.ok) console.error(report.findings); // [{ sample: 'rows[0]', check: 'row-round-trip', path: 'sex', kind: 'changed' }]
 * ```
 */
export function checkMappingRoundTrip<L, R extends Resource, K extends ReferencePath<R> = never>(
  mapping: ResourceMapping<L, R, K>,
  samples: RoundTripSamples<L, R>,
): RoundTripReport {
  const findings: RoundTripFinding[] = [];
  // References are given as pointing at nothing: the checker has no links to resolve them by.
  const references = {} as FhirReferences<R, K>;
  const keys = {} as LegacyKeys<K, R>;
  const toFhir = (row: L, existing: R | undefined): R => mapping.toFhir(row, existing, references);
  const toLegacy = (resource: R, existing: L | undefined): L => mapping.toLegacy(resource, existing, keys);
  const compare = mapping.compare ?? {};
  // The library manages these: it stamps the identifier and Medplum the id and meta.
  const resourceOptions = { ...compare, ignore: [...(compare.ignore ?? []), 'identifier', 'id', 'meta'] };
  const report = (
    sample: string,
    check: RoundTripCheck,
    entries: readonly { path: string; kind: DiffKind }[],
  ): void => {
    for (const { path, kind } of entries) findings.push({ sample, check, path, kind });
  };
  const rows = samples.rows ?? [];
  const resources = samples.resources ?? [];
  // What the mapping writes itself, from some sample alone: clearing it is the mapping's call.
  const writtenToFhir = leafPaths(rows.map((row) => toFhir(row, undefined)));
  const writtenToLegacy = leafPaths(resources.map((resource) => toLegacy(resource, undefined)));
  const wiped = (
    before: unknown,
    after: unknown,
    written: ReadonlySet<string>,
    options: Parameters<typeof diff>[2],
  ): { path: string; kind: DiffKind }[] =>
    removedPaths(before, after, options).filter(({ path }) => !writes(written, path));

  rows.forEach((row, index) => {
    const sample = `rows[${index}]`;
    const id = mapping.legacyId(row);
    if (id === undefined || id === '') report(sample, 'missing-legacy-id', [{ path: '', kind: 'removed' }]);
    const fhir = toFhir(row, undefined);
    const back = toLegacy(fhir, row);
    report(sample, 'row-round-trip', diff(row, back));
    if (id !== undefined && mapping.legacyId(back) !== id)
      report(sample, 'missing-legacy-id', [{ path: '', kind: 'changed' }]);
    report(
      sample,
      'row-unmapped',
      diff(row, toLegacy(fhir, undefined)).filter((entry) => entry.kind === 'removed'),
    );
    // What a mirror towards Medplum does to the copy there: the sample resources, and one
    // carrying a field no mapping knows.
    const existing: R[] = [
      ...resources,
      {
        ...fhir,
        extension: [
          ...((fhir as { extension?: unknown[] }).extension ?? []),
          { url: PROBE_URL, valueString: 'probe' },
        ],
      },
    ];
    for (const copy of existing) {
      const mirrored = toFhir(row, copy);
      report(sample, 'wipes-existing-resource', wiped(copy, mirrored, writtenToFhir, resourceOptions));
    }
  });

  resources.forEach((resource, index) => {
    const sample = `resources[${index}]`;
    const row = toLegacy(resource, undefined);
    report(sample, 'resource-round-trip', diff(resource, toFhir(row, resource), resourceOptions));
    report(
      sample,
      'resource-unmapped',
      diff(resource, toFhir(row, undefined), resourceOptions).filter((entry) => entry.kind === 'removed'),
    );
    const existing: L[] = [...rows, { ...row, [PROBE_COLUMN]: 'probe' }];
    for (const copy of existing) {
      report(sample, 'wipes-existing-row', wiped(copy, toLegacy(resource, copy), writtenToLegacy, {}));
    }
  });

  const unique = new Map(findings.map((finding) => [JSON.stringify(finding), finding]));
  const all = [...unique.values()];
  return { ok: all.every((finding) => finding.check.endsWith('-unmapped')), findings: all };
}

/** Paths present in `before` and gone from `after` (a changed value is the mapping's to own). */
function removedPaths(
  before: unknown,
  after: unknown,
  options: Parameters<typeof diff>[2],
): { path: string; kind: DiffKind }[] {
  return diff(before, after, options).filter((entry) => entry.kind === 'removed');
}

/** The JSON paths of every leaf of the records (`name[0].given[0]`, `birthDate`), as the diff writes them. */
function leafPaths(records: readonly unknown[]): Set<string> {
  const paths = new Set<string>();
  const walk = (value: unknown, path: string): void => {
    if (Array.isArray(value)) value.forEach((item, index) => walk(item, `${path}[${index}]`));
    else if (typeof value === 'object' && value !== null)
      for (const [key, item] of Object.entries(value)) walk(item, path === '' ? key : `${path}.${key}`);
    else if (value !== undefined && path !== '') paths.add(path);
  };
  for (const record of records) walk(record, '');
  return paths;
}

/** Whether the mapping writes the path, or something under it. */
function writes(written: ReadonlySet<string>, path: string): boolean {
  if (written.has(path)) return true;
  for (const leaf of written) if (leaf.startsWith(`${path}.`) || leaf.startsWith(`${path}[`)) return true;
  return false;
}

/**
 * What the demo prints at the end: per unit, its stage history, the writes made through the
 * service and directly in each system, mirrors, conflicts, divergence and its readiness; then
 * an auditor's comparison of the two systems, record by record.
 */
import type { MedplumClient } from '@medplum/core';
import type { Encounter, Observation, Patient, Resource } from '@medplum/fhirtypes';
import { STAGES, type CutoverPlan, type DualWriter } from '../../src/index.ts';
import { VITAL_SIGNS } from '../clinic-mapping.ts';
import type { Ctx } from './clinic-records.ts';
import type { ClinicRow, LegacyDatabase } from './legacy-database.ts';
import { describeFailing, describeReadiness } from './operations.ts';
import { total, type ActivityLog } from './unit-activity.ts';

/** How one unit's two copies compare. */
export interface UnitAudit {
  readonly unit: string;
  /** Rows in the legacy table. */
  readonly rows: number;
  /** Rows with exactly one Medplum copy. */
  readonly copies: number;
  /** Legacy ids with more than one Medplum copy. */
  readonly duplicates: number;
  /** Medplum copies whose legacy row does not exist (deleted in legacy, still in Medplum). */
  readonly orphans: number;
  /** Rows whose one copy has the same given name, surname and birth date. */
  readonly agree: number;
}

/**
 * Compares the systems record by record, as an auditor would: reads the whole legacy table
 * and every Medplum Patient carrying the run's legacy identifier.
 *
 * @param db - The legacy database.
 * @param medplum - A Medplum client.
 * @param identifierSystem - Where copies carry their legacy id.
 * @param units - The units to report on.
 * @returns One audit per unit.
 */
export async function auditCopies(
  db: LegacyDatabase,
  medplum: MedplumClient,
  identifierSystem: string,
  units: readonly string[],
): Promise<UnitAudit[]> {
  const rows = await db.select('patients', ['id', 'clinic', 'first_name', 'last_name', 'birth_date']);
  const copies = await copiesOf<Patient>(medplum, 'Patient', identifierSystem);
  return tally(
    units,
    rows,
    copies,
    identifierSystem,
    (copy) => copy.managingOrganization?.display,
    (row, copy) => {
      const [name] = copy.name ?? [];
      return (
        name?.family === row.last_name &&
        name.given?.[0] === row.first_name &&
        (copy.birthDate ?? null) === row.birth_date
      );
    },
  );
}

/** How one unit's copies of one resource type compare. */
export interface TypeAudit extends UnitAudit {
  readonly resourceType: string;
}

/** Where each type's copies carry their legacy id. */
export interface ChartSystems {
  readonly patient: string;
  readonly encounter: string;
  readonly vitals: string;
}

/**
 * Compares the charts record by record: every encounter and vital sign, its values and what
 * it points at. A reference agrees when it names the Medplum copy of the record the legacy row
 * keys (`Encounter.subject` is the copy of the row's `pid`, `Observation.encounter` the copy
 * of its `encounter`).
 *
 * @param db - The legacy database.
 * @param medplum - A Medplum client.
 * @param systems - Where copies carry their legacy ids.
 * @param units - The units to report on.
 * @returns One audit per type and unit.
 */
export async function auditCharts(
  db: LegacyDatabase,
  medplum: MedplumClient,
  systems: ChartSystems,
  units: readonly string[],
): Promise<TypeAudit[]> {
  const patients = await copiesOf<Patient>(medplum, 'Patient', systems.patient);
  const encounterCopies = await copiesOf<Encounter>(medplum, 'Encounter', systems.encounter);
  const vitalsCopies = await copiesOf<Observation>(medplum, 'Observation', systems.vitals);
  // Each copy's Medplum reference by the legacy key of the record it copies.
  const referenceTo = (type: string, system: string, copies: readonly Resource[]): Map<string, string> =>
    new Map(
      copies.flatMap((copy) => {
        const key = legacyIdOf(copy, system);
        return key === undefined || copy.id === undefined ? [] : [[key, `${type}/${copy.id}`] as const];
      }),
    );
  const patientRef = referenceTo('Patient', systems.patient, patients);
  const encounterRef = referenceTo('Encounter', systems.encounter, encounterCopies);
  const encounterRows = await db.select('encounters', ['id', 'clinic', 'pid', 'date', 'reason']);
  const vitalsRows = await db.select('vitals', ['id', 'clinic', 'pid', 'encounter', 'kind', 'value']);
  const encounters = tally(
    units,
    encounterRows,
    encounterCopies,
    systems.encounter,
    (copy) => copy.serviceProvider?.display,
    (row, copy) =>
      copy.subject?.reference === patientRef.get(row.pid ?? '') &&
      copy.period?.start?.slice(0, 10) === row.date &&
      copy.reasonCode?.[0]?.text === row.reason,
  ).map((audit) => ({ ...audit, resourceType: 'Encounter' }));
  const vitals = tally(
    units,
    vitalsRows,
    vitalsCopies,
    systems.vitals,
    (copy) => copy.performer?.[0]?.display,
    (row, copy) =>
      copy.subject?.reference === patientRef.get(row.pid ?? '') &&
      copy.encounter?.reference === encounterRef.get(row.encounter ?? '') &&
      copy.code.coding?.[0]?.code === VITAL_SIGNS[row.kind as keyof typeof VITAL_SIGNS].code &&
      copy.valueQuantity?.value === Number(row.value),
  ).map((audit) => ({ ...audit, resourceType: 'Observation' }));
  return [...encounters, ...vitals];
}

/** Every Medplum copy of a type that carries a legacy id of the run's system. */
async function copiesOf<R extends Resource>(
  medplum: MedplumClient,
  resourceType: R['resourceType'],
  system: string,
): Promise<R[]> {
  const found = await medplum.searchResources(
    resourceType,
    { identifier: `${system}|`, _count: '1000' },
    { cache: 'no-cache' },
  );
  return found as unknown as R[];
}

function legacyIdOf(copy: Resource, system: string): string | undefined {
  const identifiers = (copy as { identifier?: { system?: string; value?: string }[] }).identifier;
  return identifiers?.find((identifier) => identifier.system === system)?.value;
}

/** One unit's rows against the copies: one copy each, none extra, and equal. */
function tally<
  Row extends { readonly id: string | null; readonly clinic: string | null },
  R extends Resource,
>(
  units: readonly string[],
  rows: readonly Row[],
  copies: readonly R[],
  system: string,
  unitOf: (copy: R) => string | undefined,
  agrees: (row: Row, copy: R) => boolean,
): UnitAudit[] {
  const byLegacyId = new Map<string, R[]>();
  for (const copy of copies) {
    const id = legacyIdOf(copy, system);
    if (id !== undefined) byLegacyId.set(id, [...(byLegacyId.get(id) ?? []), copy]);
  }
  const legacyIds = new Set(rows.map((row) => row.id));
  return units.map((unit) => {
    const own = rows.filter((row) => row.clinic === unit);
    const single = own.filter((row) => byLegacyId.get(row.id ?? '')?.length === 1);
    return {
      unit,
      rows: own.length,
      copies: single.length,
      duplicates: own.filter((row) => (byLegacyId.get(row.id ?? '')?.length ?? 0) > 1).length,
      orphans: [...byLegacyId]
        .filter(([id]) => !legacyIds.has(id))
        .filter(([, found]) => found.some((copy) => unitOf(copy) === unit)).length,
      agree: single.filter((row) => {
        const [copy] = byLegacyId.get(row.id ?? '') ?? [];
        return copy !== undefined && agrees(row, copy);
      }).length,
    };
  });
}

/**
 * Prints one unit's story.
 *
 * @param unit - The unit.
 * @param started - The stage it started in.
 * @param shape - How its service calls write.
 * @param plan - The plan (its recorded history).
 * @param writer - The writer (readiness).
 * @param log - The unit's counts.
 * @param backfilled - Records backfilled when it started mirroring.
 */
export async function printUnit(
  unit: string,
  started: string,
  shape: string,
  plan: CutoverPlan<Ctx>,
  writer: DualWriter<Ctx, ClinicRow>,
  log: ActivityLog,
  backfilled: number,
): Promise<void> {
  const history = (await plan.history({ unit })).reverse();
  const activity = log.of(unit);
  const { service, legacy, medplum, mirrors, conflicts, divergence } = activity;
  const readiness = await writer.readiness(unit);
  const list = (counts: ReadonlyMap<string, number>): string =>
    [...counts].map(([key, n]) => `${key} ×${String(n)}`).join(', ');

  console.log(`\n${unit} (service writes ${shape})`);
  console.log(`  stages      started in ${started}`);
  for (const change of history) {
    const back = STAGES.indexOf(change.to) < STAGES.indexOf(change.from);
    const kind = change.forced ? 'forced' : back ? 'rolled back' : 'moved forward';
    console.log(
      `              ${change.from} → ${change.to} (${kind}, by ${change.by ?? '?'}: ${change.reason ?? 'no reason'})`,
    );
  }
  console.log(
    `  service     ${String(service.creates)} creates, ${String(service.updates)} updates, ${String(service.reads)} reads, ${String(service.failed)} failed; ${String(backfilled)} backfilled`,
  );
  console.log(
    `  direct      legacy screens: ${String(legacy.inserts)} inserts, ${String(legacy.updates)} updates, ${String(legacy.deletes)} deletes; ` +
      `Medplum app: ${String(medplum.creates)} creates, ${String(medplum.updates)} updates`,
  );
  console.log(
    `  mirrors     ${String(mirrors.inline + mirrors.drained)} applied (${String(mirrors.inline)} inline, ${String(mirrors.drained)} by the drainer)`,
  );
  const { bothSides } = activity;
  // Conflict events can outnumber the records they are about: when a record's two outbox
  // entries (one per direction, from the two feeds) are claimed in one batch, both mirrors run
  // at once with the link as claimed, and both report the conflict: the outbox's claim keeps
  // one entry from two workers, not one record's two directions. Both decide alike, so the
  // copies still agree, but readiness counts both events against `maxConflicts`.
  console.log(
    `  both sides  ${String(bothSides.differentFields + bothSides.sameField)} records edited in both systems between syncs ` +
      `(different fields: ${String(bothSides.differentFields)}; the same field: ${String(bothSides.sameField)}, the authority's value kept in ${String(bothSides.authorityKept)})`,
  );
  console.log(
    `  conflicts   ${String(total(conflicts))} on ${String(activity.conflicted.size)} records${conflicts.size > 0 ? `: ${list(conflicts)}` : ''}; ${String(activity.resolved)} resolved`,
  );
  console.log(
    `  divergence  ${String(total(divergence))} found${divergence.size > 0 ? ` (${list(divergence)})` : ''}; dead letters ${String(activity.deadLetters)}`,
  );
  console.log(`  readiness   ${describeReadiness(readiness)}`);
  console.log(`              failing gates: ${describeFailing(readiness)}`);
}

/**
 * Prints the auditor's comparison.
 *
 * @param audits - One per unit.
 * @param stageOf - Each unit's stage now.
 */
export function printAudit(
  audits: readonly (UnitAudit | TypeAudit)[],
  stageOf: (unit: string) => string,
): void {
  console.log('\nunit    stage         type         legacy rows  Medplum copies  duplicates  orphans  agree');
  for (const audit of audits) {
    console.log(
      [
        audit.unit.padEnd(7),
        stageOf(audit.unit).padEnd(13),
        ('resourceType' in audit ? audit.resourceType : 'Patient').padEnd(12),
        String(audit.rows).padStart(11),
        String(audit.copies).padStart(15),
        String(audit.duplicates).padStart(11),
        String(audit.orphans).padStart(8),
        `${String(audit.agree)}/${String(audit.rows)}`.padStart(7),
      ].join(' '),
    );
  }
}

/**
 * `npm run demo`: a phased migration of three clinics from their legacy database to Medplum.
 *
 * North starts in `legacy-only`, east in `dual-write`, south in `shadow`. Over three rounds
 * (think weeks), staff register and correct patients through the service (a `DualWriter`),
 * while other staff write straight into each system: SQL in the legacy application's screens,
 * and the Medplum app with its own client. The writer's change feeds carry those direct writes
 * across; a few records are edited in both systems between two syncs, and the configured
 * resolver (a three-way merge) decides. Medplum has an outage in round 2: south, live by then,
 * is rolled back to `shadow` while it lasts. Between rounds the migration team checks each
 * unit's readiness and moves it one stage forward when it passes its gates (the plan refuses
 * otherwise). At the end: each unit's story, and an auditor's record-by-record comparison.
 *
 * Embedded by default: the legacy database is PGlite (PostgreSQL in process) and Medplum is the
 * library's HTTP FHIR test server, with injected failures. Real systems:
 *   DATABASE_URL=postgres://…                                 a PostgreSQL server (legacy and journal)
 *   LEGACY_DATABASE_URL=mysql://…/db                          the legacy clinic on MariaDB (the
 *                                                             journal at DATABASE_URL, else PGlite)
 *   MEDPLUM_BASE_URL, MEDPLUM_CLIENT_ID, MEDPLUM_CLIENT_SECRET  a Medplum project's client
 * (with a real Medplum there is no injected outage; south's rollback is then a drill).
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Resource } from '@medplum/fhirtypes';
import {
  CutoverPlan,
  DualWriter,
  byResourceType,
  callbackSink,
  threeWayMerge,
  type Stage,
} from '../src/index.ts';
import { runCli } from '../src/cli/run-cli.ts';
import { processTerminal } from '../src/cli/terminal.ts';
import {
  ENCOUNTERS_TABLE,
  PATIENTS_TABLE,
  VITALS_TABLE,
  clinicEncounterMapping,
  clinicPatientMapping,
  clinicVitalsMapping,
} from './clinic-mapping.ts';
import { Charts } from './migration/charts.ts';
import { ClinicRecords, personAt, shiftDate, type Ctx } from './migration/clinic-records.ts';
import { LegacyScreens, MedplumApp } from './migration/direct-staff.ts';
import { openLegacyDatabase, type ClinicRow } from './migration/legacy-database.ts';
import { Operations } from './migration/operations.ts';
import { auditCharts, auditCopies, printAudit, printUnit } from './migration/report.ts';
import { ServiceDesk, type Shape } from './migration/service-desk.ts';
import { eachLimited, openMedplum } from './migration/systems.ts';
import { ActivityLog } from './migration/unit-activity.ts';

const UNITS = ['north', 'east', 'south'] as const;
const STARTING_STAGES: Record<string, Stage> = { north: 'legacy-only', east: 'dual-write', south: 'shadow' };
/** South's front desk already uses a FHIR front end; north and east still speak legacy rows. */
const SHAPES: Record<string, Shape> = { north: 'legacy', east: 'legacy', south: 'fhir' };
const SHAPE_NAMES: Record<Shape, string> = { legacy: 'legacy rows', fhir: 'FHIR resources' };
/** Patients each clinic's legacy database holds before the demo starts. */
const HISTORY_PER_UNIT = 30;
/** Patients of each clinic with a chart (encounters and vitals) from before the demo. */
const CHARTED_PER_UNIT = 4;
/** Each unit, each round. */
const ROUND = {
  registrations: 12,
  amendments: 8,
  legacyInserts: 2,
  legacyUpdates: 3,
  legacyDeletes: 1,
  medplumEdits: 3,
  medplumRegistrations: 2, // in `live` units only
  conflicts: 2, // in units that mirror
  lookUps: 10, // in `shadow` and `live` units
};
const CONCURRENCY = 6;
/**
 * The mirror-lag gate, a careful team's 5 s. `DEMO_MAX_MIRROR_LAG_MS` raises it: on a loaded
 * machine the lag alone would keep units back (p95 5.3–16 s measured at loads of 10–20), and the
 * demo's test checks the story, not the machine's speed.
 */
const MAX_MIRROR_LAG_MS = Number(process.env.DEMO_MAX_MIRROR_LAG_MS ?? 5000);
const OUTAGE_MS = 1500;

const runId = randomUUID().slice(0, 8);

async function main(): Promise<void> {
  const started = Date.now();
  // The legacy clinic database as the demo finds it: a patients table with history. Deletes
  // made in the legacy screens reach the change feed through tombstones (a trigger). The journal
  // and the plan, which every service instance shares, live beside it when it is PostgreSQL
  // (each legacy write and its outbox entry then commit in one transaction).
  const db = await openLegacyDatabase({
    runId,
    tables: [PATIENTS_TABLE, ENCOUNTERS_TABLE, VITALS_TABLE],
    connections: CONCURRENCY + 2,
  });
  const { medplum, app, server, where } = await openMedplum();
  const identifierSystem = `https://clinic.example.org/demo/${runId}/patient-id`;
  const mrnSystem = `https://clinic.example.org/demo/${runId}/mrn`;
  const encounterSystem = `https://clinic.example.org/demo/${runId}/encounter-id`;
  const vitalsSystem = `https://clinic.example.org/demo/${runId}/vitals-id`;
  const ownSystems = new Set([
    identifierSystem,
    mrnSystem,
    encounterSystem,
    vitalsSystem,
    `${vitalsSystem}/app`, // vitals the Medplum app records, before the feed stamps their legacy id
  ]);
  const log = new ActivityLog();
  const screens = new LegacyScreens(db, log);
  const charted = new Map<string, string[]>();
  for (let n = 0; n < HISTORY_PER_UNIT * UNITS.length; n += 1) {
    const person = personAt(n);
    const unit = UNITS[n % UNITS.length] ?? 'north';
    const id = await db.insert('patients', {
      clinic: unit,
      first_name: person.first,
      last_name: person.last,
      birth_date: person.birthDate,
      notes: 'history',
    });
    if (n < CHARTED_PER_UNIT * UNITS.length) charted.set(unit, [...(charted.get(unit) ?? []), id]);
  }
  // Charted patients' past visits: an encounter each, with a pulse and a weight.
  const charts = new Charts(db, charted);
  for (const [unit, ids] of charted)
    for (const id of ids) await charts.legacyVisit(unit, id, '2025-11-20', false);
  const legacy = db.adapter;
  // Records that start in Medplum (a live unit's writes, the Medplum app's registrations and
  // vitals) draw their legacy id from the legacy table's own sequence, reserved ahead by the
  // adapter. Encounters and vitals point at their patient (and vitals at their encounter) by
  // legacy key.
  const newIdOf = (type: string) => async (): Promise<string> => (await legacy.newId?.(type)) ?? '';
  const mappings = [
    { ...clinicPatientMapping(identifierSystem), newLegacyId: newIdOf('Patient') },
    { ...clinicEncounterMapping(encounterSystem), newLegacyId: newIdOf('Encounter') },
    { ...clinicVitalsMapping(vitalsSystem), newLegacyId: newIdOf('Observation') },
  ];
  const store = db.store;
  const plan = new CutoverPlan<Ctx>({
    default: 'legacy-only',
    units: STARTING_STAGES,
    unitOf: (ctx) => ctx.clinic,
  });
  await plan.attach(store, { refreshMs: 1000 });
  const writer = new DualWriter<Ctx, ClinicRow>({
    legacy,
    medplum,
    mappings,
    plan,
    store,
    // A short inline budget: when Medplum is slow or down, calls return and the drainer finishes.
    syncBudgetMs: 300,
    // A 429 is waited out until the reset Medplum announces (up to the default minute): on a
    // default server the demo's writes and the Medplum app's share one user's quota.
    retry: { retries: 6, minTimeoutMs: 20, maxTimeoutMs: 300 },
    drainer: { concurrency: 4, pollIntervalMs: 50, backoff: { minMs: 50, maxMs: 1000 } },
    // Disjoint edits both survive; a field both systems changed goes to the unit's authority.
    resolver: byResourceType({ Patient: threeWayMerge({ onCollision: 'authority' }) }),
    divergence: { verifySampleRate: 0.2, shadowReads: { sampleRate: 1, budgetMs: 50 } },
    // A careful team: no unit moves while it has a mirror waiting or an unexplained difference.
    readiness: {
      windowMs: 10 * 60_000,
      gates: {
        maxMirrorLagP95Ms: MAX_MIRROR_LAG_MS,
        maxConflicts: 5,
        maxDivergence: 0,
        maxDeadLetters: 0,
        maxPending: 0,
      },
    },
    feeds: {
      unitOf: ({ row, resource }) => {
        if (typeof row?.clinic === 'string') return row.clinic;
        // A real Medplum project holds resources of earlier runs (and of anyone else): this
        // run's carry one of its own identifier systems (the writer's, or the Medplum app's).
        const ours = (resource as { identifier?: { system?: string }[] } | undefined)?.identifier?.some(
          (id) => id.system !== undefined && ownSystems.has(id.system),
        );
        return ours === true ? clinicOf(resource) : undefined;
      },
      // Nothing before this run is ours: the first pass need not read the project's history
      // (a minute earlier, for a server whose clock is behind ours).
      medplumSince: new Date(started - 60_000).toISOString(),
      pollIntervalMs: 150,
      existenceCheckIntervalMs: 60_000,
    },
    sinks: [callbackSink(log.record)],
  });
  // Charted patients are never picked for deletion (nor edited): see Charts.
  const records = new ClinicRecords(db, new Set([...charted.values()].flat()));
  const desk = new ServiceDesk(writer, log, SHAPES);
  const medplumApp = new MedplumApp(app, identifierSystem, mrnSystem, log);
  const ops = new Operations(writer, plan, db, log);
  const stageOf = (unit: string): Stage => plan.stageOf(unit, 'Patient');
  let appRegistrations = 0;
  const afterSettling: (() => Promise<void>)[] = [];
  let outageRefused = 0;

  console.log(`legacy:  ${db.where}`);
  console.log(`journal: ${db.journalWhere}`);
  console.log(`medplum: ${where}`);
  console.log(
    `units:   ${UNITS.map((unit) => `${unit} ${stageOf(unit)}`).join(', ')}; ${String(HISTORY_PER_UNIT)} patients each in the legacy database`,
  );
  // The feeds' first pass picks up the history of units that already mirror (east and south):
  // their backfill. North's is skipped until it starts mirroring.
  writer.start();
  await ops.settle();
  console.log(
    `backfill: the change feeds' first pass mirrored ${String(writer.feedCounts().queued)} records of east and south; ` +
      `${String(writer.feedCounts().skippedByStage)} of north skipped (legacy-only)`,
  );

  /** One round: everyone works at once, then conflicts, then the systems settle and are read. */
  const round = async (n: number, incident?: () => Promise<void>): Promise<void> => {
    console.log(
      `\nround ${String(n)} (at ${((Date.now() - started) / 1000).toFixed(1)} s): ${UNITS.map((unit) => `${unit} ${stageOf(unit)}`).join(', ')}`,
    );
    await records.startRound();
    await charts.startRound();
    const perUnit = UNITS.map((unit) => workOf(unit, n));
    const tasks: (() => Promise<void>)[] = [];
    // Units' work interleaved, so every unit is busy throughout the round.
    for (let i = 0; perUnit.some((list) => i < list.length); i += 1) {
      for (const list of perUnit) {
        const task = list[i];
        if (task !== undefined) tasks.push(task);
      }
    }
    if (incident !== undefined) tasks.splice(Math.floor(tasks.length * 0.4), 0, incident);
    await eachLimited(tasks, CONCURRENCY, (task) => task());
    await editOnBothSides(n);
    const left = await ops.settle();
    for (const check of afterSettling.splice(0)) await check();
    for (const unit of UNITS) {
      if (stageOf(unit) !== 'shadow' && stageOf(unit) !== 'live') continue;
      await eachLimited(records.pick(unit, ROUND.lookUps), CONCURRENCY, (id) => desk.lookUp(unit, id));
    }
    await writer.settled();
    console.log(`  settled: ${String(left.pending)} mirrors pending, ${String(left.dead)} dead letters`);
  };

  /** A unit's work in one round, through the service and directly in each system. */
  const workOf = (unit: string, n: number): (() => Promise<void>)[] => {
    const stage = stageOf(unit);
    const mirrors = stage !== 'legacy-only';
    const service: (() => Promise<void>)[] = [
      ...Array.from({ length: ROUND.registrations }, () => () => desk.register(unit)),
      ...records.pick(unit, ROUND.amendments).map((id) => () => desk.amend(unit, id, n)),
    ];
    const direct: (() => Promise<void>)[] = [
      ...Array.from({ length: ROUND.legacyInserts }, (_, i) => async () => {
        await screens.insert(unit, personAt(1000 + n * 100 + i * 10 + UNITS.indexOf(unit as 'north')));
      }),
      ...records.pick(unit, ROUND.legacyUpdates).map((id) => async () => {
        await screens.update(unit, id, 'first_name', `Corrected${String(n)}`);
      }),
      ...records.pick(unit, ROUND.legacyDeletes).map((id) => () => screens.delete(unit, id)),
      ...(mirrors ? records.pick(unit, ROUND.medplumEdits) : []).map(
        (id) => () =>
          medplumApp.edit(unit, id, (patient) => ({
            ...patient,
            birthDate: shiftDate(patient.birthDate ?? '1970-01-01', 2),
          })),
      ),
      ...Array.from({ length: stage === 'live' ? ROUND.medplumRegistrations : 0 }, () => async () => {
        const k = appRegistrations++;
        await medplumApp.register(unit, personAt(5000 + k), `MRN-${String(k)}`);
      }),
    ];
    // Visits and vitals: through the service, in the legacy screens, in the Medplum app.
    const chartApp = mirrors ? { client: app, system: vitalsSystem } : undefined;
    service.push(...charts.workOf(unit, n, writer, chartApp));
    // Service and direct work alternate.
    const work: (() => Promise<void>)[] = [];
    for (let i = 0; i < Math.max(service.length, direct.length); i += 1) {
      const a = service[i];
      const b = direct[i];
      if (a !== undefined) work.push(a);
      if (b !== undefined) work.push(b);
    }
    return work;
  };

  /**
   * Records edited in both systems between two syncs. The drainer is held for the moment it
   * takes to make both edits, so that neither is mirrored before the other lands; in
   * production that happens by itself whenever two people edit a record within one feed
   * interval. Record `a` gets different fields changed (a merge keeps both), record `b` the
   * same field (the unit's authority decides).
   */
  const editOnBothSides = async (n: number): Promise<void> => {
    const sameField: { unit: string; id: string; expected: string }[] = [];
    writer.pause();
    try {
      for (const unit of UNITS) {
        if (stageOf(unit) === 'legacy-only') continue;
        const { bothSides } = log.of(unit);
        for (const [k, id] of records.pick(unit, ROUND.conflicts).entries()) {
          // Only records with a copy on both sides can change on both sides.
          if ((await writer.linkOf('Patient', id)) === undefined) continue;
          const surname = (await screens.valueOf(id, 'last_name')).split('~')[0] ?? '';
          const inMedplum = `${surname}~app${String(n)}`;
          if (k % 2 === 0) {
            const born = await screens.valueOf(id, 'birth_date');
            await screens.update(unit, id, 'birth_date', shiftDate(born, 1));
            bothSides.differentFields += 1;
          } else {
            const inLegacy = `${surname}~screens${String(n)}`;
            await screens.update(unit, id, 'last_name', inLegacy);
            bothSides.sameField += 1;
            const authority = plan.routeOf(unit, 'Patient').authority;
            sameField.push({ unit, id, expected: authority === 'legacy' ? inLegacy : inMedplum });
          }
          await medplumApp.edit(unit, id, (patient) => ({
            ...patient,
            name: [{ ...patient.name?.[0], family: inMedplum }],
          }));
        }
      }
      await writer.pollFeeds();
    } finally {
      writer.resume();
    }
    // Where both changed the surname, the resolver (onCollision: 'authority') keeps the
    // authority's; checked once everything has settled.
    afterSettling.push(async () => {
      for (const { unit, id, expected } of sameField) {
        if ((await screens.valueOf(id, 'last_name')) === expected) log.of(unit).bothSides.authorityKept += 1;
      }
    });
  };

  /** Round 2's incident: Medplum goes down; south, live since round 1, is rolled back. */
  const outage = async (): Promise<void> => {
    if (server === undefined) {
      console.log('  (a real Medplum: no outage is injected; south is rolled back as a drill)');
      if (stageOf('south') === 'live') await ops.rollBack('south', 'rollback drill');
      return;
    }
    const before = server.faults.stats.injected.outage;
    server.faults.outage(OUTAGE_MS);
    console.log(`  Medplum outage begins (${String(OUTAGE_MS)} ms)`);
    if (stageOf('south') === 'live')
      await ops.rollBack('south', 'Medplum outage: legacy takes authority back');
    await sleep(OUTAGE_MS / 3);
    // East was due to move this week; the gates keep it back while mirrors wait.
    await ops.promote('east', 'planned for this week');
    await sleep(OUTAGE_MS);
    outageRefused = server.faults.stats.injected.outage - before;
    console.log(`  Medplum outage over: ${String(outageRefused)} requests refused during it`);
  };

  await round(1);
  console.log('  migration team:');
  if (await ops.promote('north', 'legacy screens retired for registration')) await ops.backfill('north');
  await ops.promote('east', 'dual-write clean');
  await ops.promote('south', 'shadow reads clean');

  await round(2, outage);
  console.log('  migration team:');
  await ops.promote('north', 'dual-write clean');
  if (stageOf('east') === 'shadow') await ops.promote('east', 'outage over, mirrors caught up');
  console.log(`  south: stays in ${stageOf('south')} after its rollback`);

  await round(3);
  console.log('  migration team:');
  await ops.promote('north', 'shadow reads clean');
  await ops.promote('south', 'second attempt after the outage');

  await writer.stop();
  const injected = server === undefined ? undefined : { ...server.faults.stats.injected };
  // What reached each side, read by an auditor with the faults off.
  server?.faults.clear();
  for (const unit of UNITS) {
    await printUnit(
      unit,
      STARTING_STAGES[unit] ?? '',
      SHAPE_NAMES[SHAPES[unit] ?? 'legacy'],
      plan,
      writer,
      log,
      ops.backfilled.get(unit) ?? 0,
    );
  }
  for (const unit of UNITS) {
    const { service, legacy: screensWork, medplum: appWork } = charts.of(unit);
    console.log(
      `${unit} charts: service ${String(service.encounters)} encounters, ${String(service.vitals)} vitals, ${String(service.corrections)} corrections; ` +
        `legacy screens ${String(screensWork.encounters)} encounters, ${String(screensWork.vitals)} vitals, ${String(screensWork.corrections)} corrections; ` +
        `Medplum app ${String(appWork.vitals)} vitals, ${String(appWork.corrections)} corrections`,
    );
  }
  const patientAudits = await auditCopies(db, medplum, identifierSystem, UNITS);
  const chartAudits = await auditCharts(
    db,
    medplum,
    { patient: identifierSystem, encounter: encounterSystem, vitals: vitalsSystem },
    UNITS,
  );
  const audits = UNITS.flatMap((unit) =>
    [...patientAudits, ...chartAudits].filter((audit) => audit.unit === unit),
  );
  printAudit(audits, stageOf);

  const outbox = await writer.outbox();
  const feeds = writer.feedCounts();
  const checks = writer.divergenceCounts();
  const list = (entries: Iterable<[string, number]>): string =>
    [...entries].map(([key, n]) => `${key} ×${String(n)}`).join(', ') || 'none';
  console.log('');
  if (injected !== undefined) {
    console.log(
      `Medplum outage: ${String(OUTAGE_MS)} ms in round 2, ${String(outageRefused)} requests refused`,
    );
    console.log(`faults injected by the FHIR server: ${list(Object.entries(injected))}`);
  }
  console.log(`writer retries by side and status: ${list(log.retries)}`);
  console.log(
    `change feeds: ${String(feeds.seen)} changes seen, ${String(feeds.queued)} queued, ${String(feeds.echoes)} echoes, ` +
      `${String(feeds.skippedByStage)} skipped by stage, ${String(feeds.errors)} failed passes`,
  );
  console.log(
    `comparisons: ${String(checks.shadowReads)} shadow reads, ${String(checks.verified)} read-backs, ` +
      `${String(checks.skippedPending)} skipped (mirror pending), ${String(checks.divergent)} divergent`,
  );
  console.log(`stage changes refused: ${String(ops.refusals.length)}`);
  console.log(
    `outbox: ${String(outbox.pending + outbox.leased)} pending, ${String(outbox.dead)} dead letters`,
  );
  const failures = [...desk.failures, ...medplumApp.failures, ...charts.failures];
  for (const failure of failures.slice(0, 5)) console.log(`failed: ${failure}`);
  const wrong = audits.filter(
    (audit) =>
      audit.copies !== audit.rows || audit.agree !== audit.rows || audit.duplicates > 0 || audit.orphans > 0,
  );
  console.log(
    `\n${wrong.length === 0 && failures.length === 0 && outbox.pending + outbox.leased + outbox.dead === 0 ? 'every record exists once on each side and the copies agree' : 'SOMETHING IS WRONG: see above'} ` +
      `(${((Date.now() - started) / 1000).toFixed(1)} s)`,
  );

  // What an operator sees at the end, the same as running `dualwrite status` in a shell.
  console.log('\n$ dualwrite status');
  await runCli(['status'], processTerminal(), {
    config: { store, plan, legacy, medplum, mappings },
  });

  plan.detach();
  await server?.close();
  await db.close();
  if (wrong.length > 0 || failures.length > 0 || outbox.pending + outbox.leased + outbox.dead > 0)
    process.exitCode = 1;
}

/**
 * The clinic a resource belongs to, as its mapping writes it.
 *
 * @param resource - A Patient, Encounter or Observation.
 * @returns The clinic, if any.
 */
function clinicOf(resource: Resource | undefined): string | undefined {
  switch (resource?.resourceType) {
    case 'Patient':
      return resource.managingOrganization?.display;
    case 'Encounter':
      return resource.serviceProvider?.display;
    case 'Observation':
      return resource.performer?.[0]?.display;
    default:
      return undefined;
  }
}

await main();

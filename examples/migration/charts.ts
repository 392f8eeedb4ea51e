/**
 * The clinics' charts: encounters (`form_encounter`) and vital signs (`form_vitals`) of the
 * patients who have one. Visits are recorded and vitals corrected through the service, in the
 * legacy screens (SQL) and in the Medplum app; each vital sign is worked on at most once per
 * round, so that no two kinds of staff edit one at the same time.
 *
 * Charted patients are never deleted in the demo: a legacy screen deleting a patient leaves
 * their encounters pointing at a record that no longer exists, and the library then holds
 * those encounters' mirrors for review (the waiting rule) rather than write a dangling
 * reference. The demo keeps its charts whole so that its closing check can require every
 * record on both sides.
 */
import type { MedplumClient } from '@medplum/core';
import type { Observation } from '@medplum/fhirtypes';
import type { DualWriter } from '../../src/index.ts';
import { VITAL_SIGNS, vitalSign } from '../clinic-mapping.ts';
import type { Ctx } from './clinic-records.ts';
import { persevere } from './direct-staff.ts';
import type { ClinicRow, LegacyDatabase } from './legacy-database.ts';

/** What each kind of staff did to one unit's charts. */
export interface ChartWork {
  service: { encounters: number; vitals: number; corrections: number };
  legacy: { encounters: number; vitals: number; corrections: number };
  medplum: { vitals: number; corrections: number };
  failed: number;
}

/** Encounters and vitals of the charted patients, and the work done on them. */
export class Charts {
  readonly #db: LegacyDatabase;
  readonly #charted: ReadonlyMap<string, readonly string[]>;
  readonly #work = new Map<string, ChartWork>();
  readonly #taken = new Set<string>();
  #vitals = new Map<string, string[]>();
  #turn = 0;
  /** Writes that failed for good. */
  readonly failures: string[] = [];

  /**
   * @param db - The legacy database.
   * @param charted - Per unit, the legacy ids of the patients who have a chart.
   */
  constructor(db: LegacyDatabase, charted: ReadonlyMap<string, readonly string[]>) {
    this.#db = db;
    this.#charted = charted;
  }

  /**
   * The unit's counts.
   *
   * @param unit - The unit.
   * @returns Its counts (created on first use).
   */
  of(unit: string): ChartWork {
    let work = this.#work.get(unit);
    if (work === undefined) {
      work = {
        service: { encounters: 0, vitals: 0, corrections: 0 },
        legacy: { encounters: 0, vitals: 0, corrections: 0 },
        medplum: { vitals: 0, corrections: 0 },
        failed: 0,
      };
      this.#work.set(unit, work);
    }
    return work;
  }

  /**
   * A visit typed in the legacy screens: the encounter, then its pulse and weight.
   *
   * @param unit - The unit.
   * @param pid - The patient's legacy id.
   * @param date - The visit's date.
   * @param count - Whether to count it as staff work (history is not).
   */
  async legacyVisit(unit: string, pid: string, date: string, count = true): Promise<void> {
    const encounter = Number(
      await this.#db.insert('encounters', { clinic: unit, pid: Number(pid), date, reason: 'check-up' }),
    );
    for (const [kind, value] of [
      ['pulse', 60 + (encounter % 30)],
      ['weight', 55 + (encounter % 40)],
    ] as const) {
      await this.#db.insert('vitals', { clinic: unit, pid: Number(pid), encounter, kind, value });
    }
    if (count) {
      this.of(unit).legacy.encounters += 1;
      this.of(unit).legacy.vitals += 2;
    }
  }

  /** Starts a round: re-reads the vitals (the legacy table is the register) and frees all picks. */
  async startRound(): Promise<void> {
    const rows = await this.#db.select('vitals', ['id', 'clinic']);
    const vitals = new Map<string, string[]>();
    for (const { id, clinic } of rows)
      if (id !== null && clinic !== null) vitals.set(clinic, [...(vitals.get(clinic) ?? []), id]);
    this.#vitals = vitals;
    this.#taken.clear();
  }

  /**
   * One unit's chart work in one round.
   *
   * @param unit - The unit.
   * @param n - The round.
   * @param writer - The service's writer.
   * @param app - The Medplum app's client and the vitals' identifier system, when the unit
   *   mirrors (its staff then correct and record vitals in Medplum too).
   * @returns The tasks.
   */
  workOf(
    unit: string,
    n: number,
    writer: DualWriter<Ctx, ClinicRow>,
    app: { client: MedplumClient; system: string } | undefined,
  ): (() => Promise<void>)[] {
    const ctx = { clinic: unit };
    const date = `2026-0${String(n)}-1${String(UNIT_DAY(unit))}`;
    const tasks: (() => Promise<void>)[] = [
      // A visit recorded through the service: the encounter, then the pulse taken at it.
      // Each write is tried again on its own, so a retried pulse never records the visit twice.
      async () => {
        const pid = this.#nextPatient(unit);
        const encounter = await this.#try(unit, async () => {
          const created = await writer.create(
            'Encounter',
            { clinic: unit, pid, date, reason: 'follow-up' },
            ctx,
          );
          this.of(unit).service.encounters += 1;
          return created.legacyId;
        });
        if (encounter === undefined) return;
        await this.#try(unit, async () => {
          await writer.create(
            'Observation',
            { clinic: unit, pid, encounter: Number(encounter), kind: 'pulse', value: 70 + n },
            ctx,
          );
          this.of(unit).service.vitals += 1;
        });
      },
      // A visit typed in the legacy screens.
      () => this.#try(unit, () => this.legacyVisit(unit, this.#nextPatient(unit), date)),
      // A weight corrected through the service.
      ...this.#pick(unit, 1).map(
        (id) => () =>
          this.#try(unit, async () => {
            const row = await writer.read('Observation', id, ctx);
            if (row === undefined) return;
            await writer.update('Observation', id, { ...row, value: Number(row.value) + 1 }, ctx);
            this.of(unit).service.corrections += 1;
          }),
      ),
      // A reading corrected in the legacy screens.
      ...this.#pick(unit, 1).map(
        (id) => () =>
          this.#try(unit, async () => {
            const [row] = await this.#db.select('vitals', ['value'], { id: Number(id) });
            if (row?.value === null || row?.value === undefined) return;
            await this.#db.update('vitals', id, { value: Number(row.value) + 2 });
            this.of(unit).legacy.corrections += 1;
          }),
      ),
    ];
    if (app === undefined) return tasks;
    const { client, system } = app;
    // A reading corrected in the Medplum app.
    for (const id of this.#pick(unit, 1)) {
      tasks.push(() =>
        this.#try(
          unit,
          async () => {
            const copy = await client.searchOne(
              'Observation',
              { identifier: `${system}|${id}` },
              { cache: 'no-cache' },
            );
            if (copy?.valueQuantity?.value === undefined) return;
            await client.updateResource<Observation>({
              ...copy,
              valueQuantity: { ...copy.valueQuantity, value: copy.valueQuantity.value - 1 },
            });
            this.of(unit).medplum.corrections += 1;
          },
          client,
        ),
      );
    }
    // A pulse recorded in the Medplum app at an encounter it finds there, for its patient.
    for (const id of this.#pick(unit, 1)) {
      tasks.push(() =>
        this.#try(
          unit,
          async () => {
            const taken = await client.searchOne(
              'Observation',
              { identifier: `${system}|${id}` },
              { cache: 'no-cache' },
            );
            if (taken?.encounter === undefined || taken.subject === undefined) return;
            const tag = `app-${unit}-${String(n)}-${id}`;
            await client.createResourceIfNoneExist<Observation>(
              {
                resourceType: 'Observation',
                identifier: [{ system: `${system}/app`, value: tag }],
                status: 'final',
                subject: taken.subject,
                encounter: taken.encounter,
                ...vitalSign(VITAL_SIGNS.pulse, 80 + n, unit),
              },
              `identifier=${system}/app|${tag}`,
            );
            this.of(unit).medplum.vitals += 1;
          },
          client,
        ),
      );
    }
    return tasks;
  }

  #nextPatient(unit: string): string {
    const charted = this.#charted.get(unit) ?? [];
    this.#turn += 1;
    return charted[this.#turn % charted.length] ?? '';
  }

  #pick(unit: string, count: number): string[] {
    const free = (this.#vitals.get(unit) ?? []).filter((id) => !this.#taken.has(id));
    const picked = free
      .slice(-count * 3)
      .filter((_, i) => i % 3 === 0)
      .slice(0, count);
    for (const id of picked) this.#taken.add(id);
    return picked;
  }

  /**
   * A write tried again by the person at the screen (see {@link persevere}): while a system is
   * down, for a few seconds; in the Medplum app (`client`), also after the quota's reset.
   */
  async #try<T>(unit: string, write: () => Promise<T>, client?: MedplumClient): Promise<T | undefined> {
    const outcome = await persevere(client, write);
    if (outcome.saved) return outcome.value;
    this.of(unit).failed += 1;
    this.failures.push(
      `${unit}: ${outcome.error instanceof Error ? outcome.error.message : String(outcome.error)}`,
    );
    return undefined;
  }
}

const UNIT_DAY = (unit: string): number => unit.length % 10;

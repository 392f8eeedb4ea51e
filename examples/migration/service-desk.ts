/**
 * Staff writing through the service: every call goes through the `DualWriter`, in the shape
 * the unit's screens speak (legacy rows, or FHIR resources for a unit whose front end already
 * talks FHIR). A call the writer could not complete because the authority stayed down is
 * tried again a little later, as a person would press save again: the writer promises that
 * such a call wrote nothing.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Patient } from '@medplum/fhirtypes';
import { UnavailableError, type DualWriter } from '../../src/index.ts';
import { personAt, type Ctx } from './clinic-records.ts';
import type { ClinicRow } from './legacy-database.ts';
import type { ActivityLog } from './unit-activity.ts';

/** How a unit's screens write: legacy rows or FHIR resources. */
export type Shape = 'legacy' | 'fhir';

/** Writes and reads through the writer, counted per unit. */
export class ServiceDesk {
  readonly #writer: DualWriter<Ctx, ClinicRow>;
  readonly #log: ActivityLog;
  readonly #shapes: Readonly<Record<string, Shape>>;
  #registered = 0;
  /** Calls that failed for good (a unit, the error's name and message). */
  readonly failures: string[] = [];

  /**
   * @param writer - The service's writer.
   * @param log - Where calls are counted.
   * @param shapes - Each unit's shape.
   */
  constructor(writer: DualWriter<Ctx, ClinicRow>, log: ActivityLog, shapes: Readonly<Record<string, Shape>>) {
    this.#writer = writer;
    this.#log = log;
    this.#shapes = shapes;
  }

  /**
   * Registers a new patient at a unit's desk.
   *
   * @param unit - The unit.
   */
  async register(unit: string): Promise<void> {
    const person = personAt(100 + this.#registered++);
    const ctx = { clinic: unit };
    const done = await this.#attempt(unit, async () => {
      if (this.#shapes[unit] === 'fhir') {
        const patient: Patient = {
          resourceType: 'Patient',
          name: [{ given: [person.first], family: person.last }],
          birthDate: person.birthDate,
          managingOrganization: { display: unit },
        };
        await this.#writer.createResource(patient, ctx);
      } else {
        const row = {
          clinic: unit,
          first_name: person.first,
          last_name: person.last,
          birth_date: person.birthDate,
          notes: 'registered at the desk',
        };
        await this.#writer.create('Patient', row, ctx);
      }
    });
    if (done) this.#log.of(unit).service.creates += 1;
  }

  /**
   * Corrects a patient's surname: read through the writer (a shadow read in `shadow` and
   * `live`), then written back in the unit's shape.
   *
   * @param unit - The unit.
   * @param legacyId - The record.
   * @param round - Which round (goes into the new surname).
   */
  async amend(unit: string, legacyId: string, round: number): Promise<void> {
    const ctx = { clinic: unit };
    const done = await this.#attempt(unit, async () => {
      const link = this.#shapes[unit] === 'fhir' ? await this.#writer.linkOf('Patient', legacyId) : undefined;
      if (link !== undefined) {
        const patient = await this.#writer.readResource('Patient', link.medplumId, ctx);
        if (patient === undefined) throw new Error(`Patient ${legacyId} not found`);
        const [name] = patient.name ?? [];
        const family = `${(name?.family ?? '').split('~')[0] ?? ''}~desk${String(round)}`;
        await this.#writer.updateResource({ ...patient, name: [{ ...name, family }] }, ctx);
      } else {
        const row = await this.#writer.read('Patient', legacyId, ctx);
        if (row === undefined) throw new Error(`Patient ${legacyId} not found`);
        const last = `${String(row.last_name).split('~')[0] ?? ''}~desk${String(round)}`;
        await this.#writer.update('Patient', legacyId, { ...row, last_name: last }, ctx);
      }
    });
    if (done) {
      this.#log.of(unit).service.reads += 1;
      this.#log.of(unit).service.updates += 1;
    }
  }

  /**
   * Looks a patient up (a shadow read in `shadow` and `live`: the other side is read too and
   * compared).
   *
   * @param unit - The unit.
   * @param legacyId - The record.
   */
  async lookUp(unit: string, legacyId: string): Promise<void> {
    const done = await this.#attempt(unit, async () => {
      if ((await this.#writer.read('Patient', legacyId, { clinic: unit })) === undefined)
        throw new Error(`Patient ${legacyId} not found`);
    });
    if (done) this.#log.of(unit).service.reads += 1;
  }

  async #attempt(unit: string, call: () => Promise<void>): Promise<boolean> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        await call();
        return true;
      } catch (err) {
        if (err instanceof UnavailableError && attempt < 6) {
          await sleep(300 * attempt);
          continue;
        }
        this.#log.of(unit).service.failed += 1;
        this.failures.push(`${unit}: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
        return false;
      }
    }
  }
}

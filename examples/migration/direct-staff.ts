/**
 * Staff who write straight into one system, behind the service's back: the legacy
 * application's own screens (plain SQL on its table) and the Medplum app (its own
 * `MedplumClient`). Only the writer's change feeds carry these writes to the other system.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { OperationOutcomeError, type MedplumClient } from '@medplum/core';
import type { Patient } from '@medplum/fhirtypes';
import type { Person } from './clinic-records.ts';
import type { LegacyDatabase } from './legacy-database.ts';
import type { ActivityLog } from './unit-activity.ts';

/** The legacy application's screens: SQL on the patients table, as that application writes it. */
export class LegacyScreens {
  readonly #db: LegacyDatabase;
  readonly #log: ActivityLog;

  /**
   * @param db - The legacy database.
   * @param log - Where writes are counted.
   */
  constructor(db: LegacyDatabase, log: ActivityLog) {
    this.#db = db;
    this.#log = log;
  }

  /**
   * Registers a patient (the table's sequence assigns the id; version and timestamp default).
   *
   * @param unit - The unit.
   * @param person - Who.
   * @returns The new legacy id.
   */
  async insert(unit: string, person: Person): Promise<string> {
    const id = await this.#db.insert('patients', {
      clinic: unit,
      first_name: person.first,
      last_name: person.last,
      birth_date: person.birthDate,
      notes: 'typed in the legacy screens',
    });
    this.#log.of(unit).legacy.inserts += 1;
    return id;
  }

  /**
   * Changes one column, maintaining `version` and `updated_at` as the legacy application does
   * (the adapter's conflict detection and change feed read them).
   *
   * @param unit - The unit.
   * @param legacyId - The record.
   * @param column - `last_name`, `first_name` or `birth_date`.
   * @param value - The new value.
   */
  async update(
    unit: string,
    legacyId: string,
    column: 'last_name' | 'first_name' | 'birth_date',
    value: string,
  ): Promise<void> {
    await this.#db.update('patients', legacyId, { [column]: value });
    this.#log.of(unit).legacy.updates += 1;
  }

  /**
   * Reads one column.
   *
   * @param legacyId - The record.
   * @param column - The column.
   * @returns Its value as text.
   */
  async valueOf(legacyId: string, column: 'last_name' | 'birth_date'): Promise<string> {
    const [row] = await this.#db.select('patients', [column], { id: Number(legacyId) });
    return row?.[column] ?? '';
  }

  /**
   * Deletes a record (a duplicate registration). The tombstone trigger records it for the feed.
   *
   * @param unit - The unit.
   * @param legacyId - The record.
   */
  async delete(unit: string, legacyId: string): Promise<void> {
    await this.#db.delete('patients', legacyId);
    this.#log.of(unit).legacy.deletes += 1;
  }
}

/**
 * The Medplum app: finds patients by the legacy id they carry and saves edits with its own
 * client. A save that fails (Medplum down, overloaded, a dropped connection) is tried again by
 * the person at the screen, for a few seconds; one refused for the quota (429) is tried again
 * once the quota resets, when the server's `RateLimit` header says it does, as any client should.
 */
export class MedplumApp {
  readonly #client: MedplumClient;
  readonly #identifierSystem: string;
  readonly #mrnSystem: string;
  readonly #log: ActivityLog;
  /** Saves that failed for good. */
  readonly failures: string[] = [];

  /**
   * @param client - The app's own client.
   * @param identifierSystem - Where Medplum copies carry their legacy id.
   * @param mrnSystem - The app's own identifier for patients it registers.
   * @param log - Where writes are counted.
   */
  constructor(client: MedplumClient, identifierSystem: string, mrnSystem: string, log: ActivityLog) {
    this.#client = client;
    this.#identifierSystem = identifierSystem;
    this.#mrnSystem = mrnSystem;
    this.#log = log;
  }

  /**
   * Edits a patient.
   *
   * @param unit - The unit.
   * @param legacyId - The record, as the legacy id its Medplum copy carries.
   * @param edit - The change.
   */
  async edit(unit: string, legacyId: string, edit: (patient: Patient) => Patient): Promise<void> {
    const saved = await this.#persevere(unit, async () => {
      const patient = await this.#client.searchOne(
        'Patient',
        { identifier: `${this.#identifierSystem}|${legacyId}` },
        { cache: 'no-cache' },
      );
      if (patient === undefined) throw new Error(`no Medplum copy of ${legacyId}`);
      await this.#client.updateResource(edit(patient));
    });
    if (saved) this.#log.of(unit).medplum.updates += 1;
  }

  /**
   * Registers a patient in Medplum only: no legacy id (the change feed allocates one and stamps
   * it). Saved conditionally on the app's own MRN, so pressing save twice registers one patient.
   *
   * @param unit - The unit.
   * @param person - Who.
   * @param mrn - The app's number for them.
   */
  async register(unit: string, person: Person, mrn: string): Promise<void> {
    const saved = await this.#persevere(unit, async () => {
      await this.#client.createResourceIfNoneExist<Patient>(
        {
          resourceType: 'Patient',
          identifier: [{ system: this.#mrnSystem, value: mrn }],
          name: [{ given: [person.first], family: person.last }],
          birthDate: person.birthDate,
          managingOrganization: { display: unit },
        },
        `identifier=${this.#mrnSystem}|${mrn}`,
      );
    });
    if (saved) this.#log.of(unit).medplum.creates += 1;
  }

  async #persevere(unit: string, save: () => Promise<void>): Promise<boolean> {
    const outcome = await persevere(this.#client, save);
    if (outcome.saved) return true;
    this.failures.push(
      `${unit}: ${outcome.error instanceof Error ? outcome.error.message : String(outcome.error)}`,
    );
    return false;
  }
}

/**
 * A save tried again as staff at a screen (and any client) would: one refused for the quota
 * (429) after the reset the server announces, as often as it takes within a few windows; any
 * other failure (the system down, a dropped connection) every 100 ms for about four seconds.
 *
 * @param client - The Medplum client the save uses (its `RateLimit` header), or `undefined`
 *   for a save to the legacy database.
 * @param save - The save.
 * @returns Its value, or the failure it ended with.
 */
export async function persevere<T>(
  client: MedplumClient | undefined,
  save: () => Promise<T>,
): Promise<{ saved: true; value: T } | { saved: false; error: unknown }> {
  for (let attempt = 1, throttled = 0; ; attempt += 1) {
    try {
      return { saved: true, value: await save() };
    } catch (err) {
      const resetMs = client === undefined ? undefined : quotaResetMs(client, err, throttled);
      if (resetMs !== undefined && throttled < 10) {
        throttled += 1;
        await sleep(resetMs);
        continue;
      }
      if (attempt < 40) {
        await sleep(100);
        continue;
      }
      return { saved: false, error: err };
    }
  }
}

/**
 * How long to wait before a request refused for the quota (429) may be sent again: until the
 * spent policy of the `RateLimit` header (which `MedplumClient` keeps from the last answer)
 * resets, plus a margin (Medplum rounds to whole seconds). The last answer may be another
 * request's, answered since with budget left (another run, or another screen, on the same
 * client application spent the window meanwhile): then 1, 2, 4… seconds, up to the minute a
 * window lasts. `undefined` for other failures.
 *
 * @param client - The client that made the request.
 * @param err - Its failure.
 * @param throttled - How many times this save was refused for the quota already.
 * @returns Milliseconds to wait, or `undefined`.
 */
function quotaResetMs(client: MedplumClient, err: unknown, throttled: number): number | undefined {
  if (!(err instanceof OperationOutcomeError) || err.outcome.issue[0]?.code !== 'throttled') return undefined;
  const spent = client.rateLimitStatus().filter((limit) => limit.remainingUnits <= 0);
  if (spent.length === 0) return Math.min(60, 2 ** throttled) * 1000 + 250;
  return Math.max(1, ...spent.map((limit) => limit.secondsUntilReset)) * 1000 + 250;
}

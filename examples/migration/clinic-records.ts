/**
 * The demo's patients: made-up names and birth dates, and which records each unit has. Staff
 * pick records to work on from here, each record at most once per round, so that two kinds of
 * staff only ever edit one record at the same time where the demo means them to (a conflict).
 */
import type { LegacyDatabase } from './legacy-database.ts';

/** The per-call context of the demo's service: the clinic (unit) a call belongs to. */
export interface Ctx {
  readonly clinic: string;
}

const FIRST = ['Ada', 'Grace', 'Katherine', 'Mary', 'Dorothy', 'Hedy', 'Radia', 'Frances', 'Barbara', 'Joan'];
const LAST = [
  'Lovelace',
  'Hopper',
  'Johnson',
  'Jackson',
  'Vaughan',
  'Lamarr',
  'Perlman',
  'Allen',
  'Liskov',
  'Clarke',
];

/** A made-up person. */
export interface Person {
  readonly first: string;
  readonly last: string;
  readonly birthDate: string;
}

/**
 * The `n`th made-up person (the same for the same `n`).
 *
 * @param n - Any integer.
 * @returns Names and a birth date.
 */
export function personAt(n: number): Person {
  return {
    first: FIRST[n % FIRST.length] ?? 'Ada',
    last: `${LAST[(n * 7) % LAST.length] ?? 'Lovelace'}-${String(n)}`,
    birthDate: `19${String(40 + (n % 60)).padStart(2, '0')}-0${String(1 + (n % 9))}-1${String(n % 10)}`,
  };
}

/**
 * A birth date `n` days after another (a correction).
 *
 * @param date - `YYYY-MM-DD`.
 * @param days - Days to add.
 * @returns The new date.
 */
export function shiftDate(date: string, days: number): string {
  const shifted = new Date(Date.parse(`${date}T00:00:00Z`) + days * 86_400_000);
  return shifted.toISOString().slice(0, 10);
}

/** The legacy ids of each unit's records, read from the legacy table, and this round's picks. */
export class ClinicRecords {
  readonly #db: LegacyDatabase;
  #ids = new Map<string, string[]>();
  readonly #taken = new Set<string>();
  #cursor = new Map<string, number>();
  readonly #reserved: ReadonlySet<string>;

  /**
   * @param db - The legacy database.
   * @param reserved - Records never picked (the charted patients).
   */
  constructor(db: LegacyDatabase, reserved: ReadonlySet<string> = new Set()) {
    this.#db = db;
    this.#reserved = reserved;
  }

  /** Starts a round: re-reads every unit's records (the legacy table is the register) and frees all picks. */
  async startRound(): Promise<void> {
    const rows = await this.#db.select('patients', ['id', 'clinic']);
    const ids = new Map<string, string[]>();
    for (const { id, clinic } of rows) {
      if (id !== null && clinic !== null) ids.set(clinic, [...(ids.get(clinic) ?? []), id]);
    }
    this.#ids = ids;
    this.#taken.clear();
    for (const id of this.#reserved) this.#taken.add(id);
  }

  /**
   * Picks records of a unit that nobody else works on this round, spread over the unit's list.
   *
   * @param unit - The unit.
   * @param count - How many.
   * @returns Their legacy ids (fewer when the unit has fewer free records).
   */
  pick(unit: string, count: number): string[] {
    const ids = this.#ids.get(unit) ?? [];
    const picked: string[] = [];
    let cursor = this.#cursor.get(unit) ?? 0;
    for (let tried = 0; tried < ids.length && picked.length < count; tried += 1) {
      // A stride coprime with most list lengths spreads the picks over old and new records.
      cursor = (cursor + 7) % ids.length;
      const id = ids[cursor];
      if (id !== undefined && !this.#taken.has(id)) {
        this.#taken.add(id);
        picked.push(id);
      }
    }
    this.#cursor.set(unit, cursor);
    return picked;
  }
}

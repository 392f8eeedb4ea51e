/**
 * No values in errors, dead-letter reasons or the journal (issue 10 §5). Marker values go into
 * names, a social security number, notes and dates, and through every kind of failure a write
 * can meet: a legacy table refusing the row (unique key, check constraint, bad date), a mirror
 * dead-lettered after the authority write (`MirrorError`), a stale version, a mapping throwing,
 * an unknown column, a MariaDB driver's message, a lost connection. Every error is searched with
 * `JSON.stringify` and `util.inspect` (causes included, hidden properties too); so is every
 * column of the journal except the data in flight (the outbox's `base`) and the documented full
 * base snapshot (links' `base`, which `hash-only` leaves empty anyway). Zero hits.
 */
import { inspect } from 'node:util';
import type { Patient } from '@medplum/fhirtypes';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clinicPatientMapping } from '../../examples/clinic-mapping.ts';
import {
  CutoverPlan,
  DualWriteError,
  DualWriter,
  MemoryStore,
  MirrorError,
  PostgresStore,
  PostgresTableAdapter,
  createMedplumClient,
  sqlClientFromPg,
  type PostgresTableRow,
  type ResourceMapping,
} from '../../src/index.ts';
import { MemoryLegacyAdapter, startFhirTestServer, type FhirTestServer } from '../../src/testing/index.ts';

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const run = `dw_phi_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
const table = `${run}_patients`;
const SYSTEM = 'https://clinic.example.org/patient-id';

const MARKERS = {
  given: 'Marzipanfrau',
  family: 'Quokkabridge',
  ssn: '987-65-4321',
  note: 'Zebracrossing Lane 42',
  badDate: '1931-02-30',
  mariaDbDate: '1931-07-04',
  json: 'Wombatinski',
  /** Put in a message without quotes: by a trigger's RAISE, and by BigInt(). */
  raised: 'Okapimeadow',
  bigint: 'Platypusweg',
  /** A caller's garbage id (an SSN passed where a legacy id goes), for an integer-keyed table. */
  garbageId: '321-54-9876',
} as const;

interface Ctx {
  readonly clinic: string;
}
const north: Ctx = { clinic: 'north' };
/** Medplum is the authority there: the mirror to the legacy table fails after the write. */
const south: Ctx = { clinic: 'south' };

function row(overrides: Partial<PostgresTableRow> = {}): PostgresTableRow {
  return { clinic: 'north', first_name: MARKERS.given, last_name: MARKERS.family, ...overrides };
}

/** Everything an error shows to a logger or an error reporter, causes included. */
function exposed(error: unknown): string {
  const own = (value: unknown, depth: number): unknown => {
    if (typeof value !== 'object' || value === null || depth > 8) return value;
    return Object.fromEntries(
      Object.getOwnPropertyNames(value).map((key) => [
        key,
        own((value as Record<string, unknown>)[key], depth + 1),
      ]),
    );
  };
  return [
    JSON.stringify(error),
    JSON.stringify(own(error, 0)),
    inspect(error, { depth: null }),
    inspect(error, { depth: null, showHidden: true }),
  ].join('\n');
}

function hits(texts: readonly string[]): Record<string, number> {
  const found: Record<string, number> = {};
  for (const [name, marker] of Object.entries(MARKERS)) {
    const n = texts.reduce((sum, text) => sum + text.split(marker).length - 1, 0);
    if (n > 0) found[name] = n;
  }
  return found;
}

let pool: pg.Pool;
let server: FhirTestServer;
let store: PostgresStore;
const errors = new Map<string, unknown>();

async function failure(name: string, call: () => Promise<unknown>): Promise<void> {
  const error = await call().then(
    () => undefined,
    (err: unknown) => err,
  );
  errors.set(name, error);
}

/** A writer on the PostgreSQL legacy table and journal, `hash-only`, mirroring inline. */
function postgresWriter(revealValues = false): DualWriter<Ctx, PostgresTableRow> {
  const sql = sqlClientFromPg(pool);
  return new DualWriter<Ctx, PostgresTableRow>({
    legacy: new PostgresTableAdapter({ sql, tables: { Patient: { table } }, revealValues }),
    medplum: createMedplumClient({ baseUrl: server.baseUrl }),
    mappings: [clinicPatientMapping(SYSTEM)],
    plan: new CutoverPlan<Ctx>({
      default: 'dual-write',
      units: { south: 'live' },
      unitOf: (ctx) => ctx.clinic,
    }),
    store,
    baseSnapshot: 'hash-only',
    retry: { retries: 0 },
  });
}

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
  server = await startFhirTestServer();
  await pool.query(`
    create table ${table} (
      id serial primary key,
      clinic text not null,
      first_name text not null,
      last_name text not null,
      birth_date date,
      notes text check (notes is null or notes not like 'FORBIDDEN%'),
      ssn text unique,
      version integer not null default 1,
      updated_at timestamptz not null default clock_timestamp()
    )`);
  // A trigger of the legacy application's own, whose message quotes the row without quotes.
  await pool.query(`
    create function ${table}_block() returns trigger language plpgsql as $$
    begin
      if new.notes = 'BLOCK' then
        raise exception 'patient % % is on the blocked list', new.first_name, new.last_name;
      end if;
      return new;
    end $$`);
  await pool.query(
    `create trigger ${table}_block before insert or update on ${table} for each row execute function ${table}_block()`,
  );
  store = await PostgresStore.open({ sql: sqlClientFromPg(pool), schema: run });
  const writer = postgresWriter();

  await writer.create('Patient', row({ ssn: MARKERS.ssn, notes: MARKERS.note }), north);
  await failure('legacy unique key (DETAIL Key (ssn)=(…))', () =>
    writer.create('Patient', row({ ssn: MARKERS.ssn }), north),
  );
  await failure('legacy check constraint (DETAIL Failing row contains (…))', () =>
    writer.create('Patient', row({ notes: `FORBIDDEN ${MARKERS.note}` }), north),
  );
  await failure('legacy bad date (the value quoted in the message)', () =>
    writer.create('Patient', row({ birth_date: MARKERS.badDate }), north),
  );
  await failure('legacy unknown column', () =>
    writer.create('Patient', { ...row(), famly_typo: MARKERS.family }, north),
  );
  const created = await writer.create('Patient', row({ notes: MARKERS.note }), north);
  await failure('stale expected version', () =>
    writer.update('Patient', created.legacyId, row({ notes: `${MARKERS.note} 2` }), north, {
      expectedVersion: '7',
    }),
  );
  await failure('mirror to the legacy table dead-lettered (MirrorError)', () =>
    writer.create('Patient', row({ clinic: 'south', ssn: MARKERS.ssn, notes: MARKERS.note }), south),
  );
  await failure('legacy trigger raising an exception (P0001, values unquoted)', () =>
    writer.create('Patient', row({ last_name: MARKERS.raised, notes: 'BLOCK' }), north),
  );
  await failure('mirror to the legacy table refused by the trigger (MirrorError)', () =>
    writer.create('Patient', row({ clinic: 'south', last_name: MARKERS.raised, notes: 'BLOCK' }), south),
  );
  await failure('retry of an unknown dead letter', () => writer.retryDeadLetter('999999'));
  await failure('update of a garbage id (integer keys)', () =>
    writer.update('Patient', MARKERS.garbageId, row(), north),
  );

  // A legacy system of the caller's own: a MariaDB driver's error, a lost connection, and a
  // mapping that parses a legacy column.
  const legacy = new MemoryLegacyAdapter<PostgresTableRow>();
  const parsing: ResourceMapping<PostgresTableRow, Patient> = {
    ...clinicPatientMapping(SYSTEM),
    toFhir: (legacyRow, existing, references) => ({
      ...clinicPatientMapping(SYSTEM).toFhir(legacyRow, existing, references),
      extension: [
        {
          url: 'https://clinic.example.org/extra',
          valueString: String(legacyRow.notes).startsWith('#')
            ? String(BigInt(String(legacyRow.notes).slice(1)))
            : String(JSON.parse(String(legacyRow.notes))),
        },
      ],
    }),
  };
  const other = new DualWriter<Ctx, PostgresTableRow>({
    legacy,
    medplum: createMedplumClient({ baseUrl: server.baseUrl }),
    mappings: [parsing],
    plan: new CutoverPlan<Ctx>({ default: 'dual-write', unitOf: (ctx) => ctx.clinic }),
    store: new MemoryStore(),
    retry: { retries: 0 },
  });
  legacy.failNext(
    1,
    Object.assign(
      new Error(
        `Incorrect date value: '${MARKERS.mariaDbDate}' for column \`clinic\`.\`patients\`.\`birth_date\` at row 1`,
      ),
      { code: 'ER_TRUNCATED_WRONG_VALUE', errno: 1292, sqlState: '22007', retryable: false },
    ),
  );
  await failure('MariaDB driver error', () =>
    other.create('Patient', row({ id: 'm-1', notes: '"x"', birth_date: MARKERS.mariaDbDate }), north),
  );
  legacy.failNext(
    1,
    Object.assign(new Error(`socket hang up while writing '${MARKERS.given}'`), { code: 'ECONNRESET' }),
  );
  await failure('lost connection', () => other.create('Patient', row({ id: 'm-2', notes: '"x"' }), north));
  await failure('mapping throwing', () =>
    other.create('Patient', row({ id: 'm-3', notes: `{${MARKERS.json}` }), north),
  );
  await failure('mapping throwing a message that quotes nothing (BigInt)', () =>
    other.create('Patient', row({ id: 'm-4', notes: `#${MARKERS.bigint} 7` }), north),
  );
});

afterAll(async () => {
  await pool.query(`DROP SCHEMA IF EXISTS "${run}" CASCADE`);
  await pool.query(`DROP TABLE IF EXISTS ${table}`);
  await pool.query(`DROP FUNCTION IF EXISTS ${table}_block()`);
  await pool.end();
  await server.close();
});

describe('marker values pushed through every kind of failure', () => {
  it('made every call fail with a typed error', () => {
    const names = Object.fromEntries(
      [...errors].map(([call, error]) => [call, (error as Error | undefined)?.name]),
    );
    expect(names).toEqual({
      'legacy unique key (DETAIL Key (ssn)=(…))': 'RejectedError',
      'legacy check constraint (DETAIL Failing row contains (…))': 'RejectedError',
      'legacy bad date (the value quoted in the message)': 'RejectedError',
      'legacy unknown column': 'InvalidInputError',
      'stale expected version': 'ConflictError',
      'mirror to the legacy table dead-lettered (MirrorError)': 'MirrorError',
      'legacy trigger raising an exception (P0001, values unquoted)': 'RejectedError',
      'mirror to the legacy table refused by the trigger (MirrorError)': 'MirrorError',
      'retry of an unknown dead letter': 'DeadLetterNotFoundError',
      'update of a garbage id (integer keys)': 'RejectedError',
      'MariaDB driver error': 'RejectedError',
      'lost connection': 'OutcomeUnknownError',
      'mapping throwing': 'MappingError',
      'mapping throwing a message that quotes nothing (BigInt)': 'MappingError',
    });
    for (const error of errors.values()) expect(error).toBeInstanceOf(DualWriteError);
  });

  it('leaves no value in any error, its fields or its causes', () => {
    const found = Object.fromEntries(
      [...errors]
        .map(([call, error]): [string, Record<string, number>] => [call, hits([exposed(error)])])
        .filter(([, h]) => Object.keys(h).length > 0),
    );
    expect(found).toEqual({});
  });

  it('keeps what an operator needs: codes, constraints and columns', () => {
    const unique = errors.get('legacy unique key (DETAIL Key (ssn)=(…))') as DualWriteError;
    expect(unique.code).toBe('23505');
    expect(unique.cause).toMatchObject({ code: '23505', constraint: `${table}_ssn_key` });
    const mirror = errors.get('mirror to the legacy table dead-lettered (MirrorError)') as MirrorError;
    expect(mirror.result.mirror).toBe('dead-letter');
    expect(mirror.result.legacyId).toMatch(/^\d+$/);
    expect(mirror.result).not.toHaveProperty('row');
    expect(mirror.result).not.toHaveProperty('resource');
    expect((errors.get('MariaDB driver error') as DualWriteError).message).toContain(
      "Incorrect date value: '…'",
    );
    // A garbage id: named by its kind and length, never quoted nor kept.
    const garbage = errors.get('update of a garbage id (integer keys)') as DualWriteError;
    expect(garbage).toMatchObject({ status: 404, legacyId: undefined });
    expect(garbage.message).toContain('a string of 11 characters');
    expect(String(garbage)).not.toContain(MARKERS.garbageId);
    const raised = errors.get(
      'legacy trigger raising an exception (P0001, values unquoted)',
    ) as DualWriteError;
    expect(raised.code).toBe('P0001');
    expect(raised.message).toContain('raised by the database');
    expect(
      (errors.get('mapping throwing a message that quotes nothing (BigInt)') as Error).message,
    ).toContain('toFhir threw: SyntaxError');
  });

  it('leaves no value in dead-letter reasons, nor a copy of the record under hash-only', async () => {
    const letters = await store.listDeadLetters({ status: 'all' });
    expect(letters.length).toBeGreaterThan(0);
    expect(letters.map((letter) => letter.base)).toEqual(letters.map(() => undefined));
    expect(hits([JSON.stringify(letters), inspect(letters, { depth: null })])).toEqual({});
  });

  it('leaves no value in any journal column but the data in flight', async () => {
    const { rows: tables } = await pool.query<{ name: string }>(
      'SELECT table_name AS name FROM information_schema.tables WHERE table_schema = $1',
      [run],
    );
    expect(tables.map((t) => t.name)).toEqual(
      expect.arrayContaining(['outbox', 'dead_letters', 'links', 'events']),
    );
    const texts: string[] = [];
    for (const { name } of tables) {
      // The outbox's base is the write in flight; links' base is the documented full snapshot.
      const without = name === 'outbox' || name === 'links' ? " - 'base'" : '';
      const { rows } = await pool.query<{ t: string }>(
        `SELECT (to_jsonb(r)${without})::text AS t FROM "${run}"."${name}" r`,
      );
      texts.push(...rows.map((r) => r.t));
    }
    expect(hits(texts)).toEqual({});
  });

  it('shows the values, so the search can see them, where the adapter reveals them', async () => {
    const error: unknown = await postgresWriter(true)
      .create('Patient', row({ ssn: MARKERS.ssn }), north)
      .catch((err: unknown) => err);
    expect(hits([exposed(error)]).ssn).toBeGreaterThan(0);
  });
});

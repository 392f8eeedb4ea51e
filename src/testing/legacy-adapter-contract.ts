import assert from 'node:assert/strict';
import { InvalidInputError } from '../errors.ts';
import {
  LegacyNotFoundError,
  LegacyVersionConflictError,
  type LegacyAdapter,
  type LegacyChange,
  type LegacyRecord,
} from '../sides/legacy-adapter.ts';

/**
 * The library's legacy-adapter contract as a kit: the cases every {@link LegacyAdapter} must
 * pass, runnable from vitest, jest or `node:test` (give it their `describe` and `it`), or with no
 * framework at all ({@link checkLegacyAdapter} answers a report). Assertions use `node:assert`,
 * so a failure reads the same in every runner.
 */

/**
 * A row as the contract writes it: an optional `id`, a `name` and a `note` (text or null).
 *
 * @example
 * ```ts
 * const row: ContractRow = { id: 'legacy-7', name: 'Ada', note: null };
 * ```
 */
export type ContractRow = Record<string, unknown>;

/**
 * One adapter under test, fresh for each case: an empty table (or endpoint) for `resourceType`
 * whose rows have an `id` (assigned by the system when a row has none), `name` and `note`.
 *
 * @example
 * ```ts
 * const fixture: LegacyAdapterFixture = { adapter: new MemoryLegacyAdapter(), resourceType: 'Patient' };
 * ```
 */
export interface LegacyAdapterFixture {
  readonly adapter: LegacyAdapter<ContractRow>;
  readonly resourceType: string;
  /**
   * Gives the records' latest changes one timestamp, as a legacy writer stamping rows in one
   * transaction would; the feed cases then check that such writes are neither skipped nor
   * repeated. Leave it out when the feed does not order by time.
   */
  readonly shareTimestamp?: ((ids: readonly string[]) => Promise<void>) | undefined;
  /**
   * Two ids the table can hold and no row has, for the cases that create a row with its id
   * given and read one that is missing: `['7', '8']` for an integer key (OpenEMR's `pid`), which
   * cannot hold the default text ids.
   * @default ['legacy-7', 'dup']
   */
  readonly givenIds?: readonly [string, string] | undefined;
}

/**
 * The test functions of a runner: vitest's, jest's or `node:test`'s `describe` and `it`.
 *
 * @example
 * ```ts
 * import { describe, it } from 'node:test';
 * const runner: ContractRunner = { describe, it };
 * ```
 */
export interface ContractRunner {
  describe(name: string, body: () => void): unknown;
  it(name: string, body: () => Promise<void>): unknown;
}

/**
 * One case of the contract.
 *
 * @example
 * ```ts
 * for (const { group, name, run } of legacyAdapterContractCases()) console.log(group, name);
 * ```
 */
export interface ContractCase {
  /** The method it is about (`create`, `update`, `changesSince`, …). */
  readonly group: string;
  /** The behaviour, as a sentence. */
  readonly name: string;
  /** Runs the case on a fresh fixture; throws an `AssertionError` (or what the adapter threw) on failure. */
  readonly run: (fixture: LegacyAdapterFixture) => Promise<void>;
}

/**
 * What {@link checkLegacyAdapter} found.
 *
 * @example
 * ```ts
 * const report: ContractReport = await checkLegacyAdapter(setup);
 * if (report.failed.length > 0) console.error(formatContractReport(report));
 * ```
 */
export interface ContractReport {
  readonly passed: readonly string[];
  readonly failed: readonly { readonly name: string; readonly message: string }[];
  /** Optional methods the adapter does not have, whose cases were not run. */
  readonly skipped: readonly string[];
}

/**
 * Runs the contract in the caller's test framework: one `describe` per method, one `it` per
 * behaviour, each on a fresh fixture from `setup`.
 *
 * @param runner - The framework's `describe` and `it` (vitest, jest and `node:test` all fit).
 * @param name - The adapter's name, for the outer `describe`.
 * @param setup - Makes a fresh fixture (an empty table) for each case.
 * @example
 * ```ts
 * import { describe, it } from 'vitest'; // or '@jest/globals', or 'node:test'
 * import { MemoryLegacyAdapter, runLegacyAdapterContract } from 'medplum-dualwrite/testing';
 * runLegacyAdapterContract({ describe, it }, 'MemoryLegacyAdapter', async () => ({
 *   adapter: new MemoryLegacyAdapter(),
 *   resourceType: 'Patient',
 * }));
 * ```
 */
export function runLegacyAdapterContract(
  runner: ContractRunner,
  name: string,
  setup: () => Promise<LegacyAdapterFixture>,
): void {
  const cases = legacyAdapterContractCases();
  runner.describe(`${name} (LegacyAdapter contract)`, () => {
    for (const group of [...new Set(cases.map((item) => item.group))]) {
      runner.describe(group, () => {
        for (const item of cases.filter((each) => each.group === group)) {
          runner.it(item.name, async () => item.run(await setup()));
        }
      });
    }
  });
}

/**
 * Runs the contract without a test framework and reports every case.
 *
 * @param setup - Makes a fresh fixture for each case.
 * @returns The names of the cases passed, failed (with the failure's message) and skipped.
 * @example
 * ```ts
 * const report = await checkLegacyAdapter(async () => ({ adapter: myAdapter(), resourceType: 'Patient' }));
 * console.log(formatContractReport(report));
 * ```
 */
export async function checkLegacyAdapter(
  setup: () => Promise<LegacyAdapterFixture>,
): Promise<ContractReport> {
  const passed: string[] = [];
  const failed: { name: string; message: string }[] = [];
  const skipped: string[] = [];
  for (const item of legacyAdapterContractCases()) {
    const name = `${item.group}: ${item.name}`;
    const fixture = await setup();
    if (isOptionalMissing(item.group, fixture.adapter)) {
      skipped.push(name);
      continue;
    }
    try {
      await item.run(fixture);
      passed.push(name);
    } catch (err) {
      failed.push({ name, message: err instanceof Error ? err.message : String(err) });
    }
  }
  return { passed, failed, skipped };
}

/**
 * A report as text: one line per failed case with its reason, then the counts.
 *
 * @param report - What {@link checkLegacyAdapter} answered.
 * @returns Lines for a terminal or a CI log.
 * @example
 * ```ts
 * console.log(formatContractReport(await checkLegacyAdapter(setup)));
 * // ✗ update: refuses a stale expectedVersion …: expected a LegacyVersionConflictError, but the call succeeded
 * // 24 passed, 1 failed, 0 skipped
 * ```
 */
export function formatContractReport(report: ContractReport): string {
  const lines = report.failed.map(({ name, message }) => `✗ ${name}: ${message.split('\n')[0] ?? ''}`);
  lines.push(
    `${report.passed.length} passed, ${report.failed.length} failed, ${report.skipped.length} skipped`,
  );
  return lines.join('\n');
}

function isOptionalMissing(group: string, adapter: LegacyAdapter<ContractRow>): boolean {
  return (
    (group === 'scan' && adapter.scan === undefined) ||
    (group === 'readMany' && adapter.readMany === undefined)
  );
}

/** The ids the cases that give one use: the fixture's, or two text ids. */
function givenIds(fixture: LegacyAdapterFixture): readonly [string, string] {
  return fixture.givenIds ?? ['legacy-7', 'dup'];
}

/** A create with a given id, whose failure says how to run the case on a key that takes no text. */
async function withIdHint<T>(fixture: LegacyAdapterFixture, call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (err) {
    if (fixture.givenIds !== undefined) throw err;
    const problem = err instanceof Error ? `${err.name}: ${err.message}` : 'it failed';
    throw new assert.AssertionError({
      message: `create with the id ${givenIds(fixture).join(' or ')} given: ${problem} (an integer key? give the fixture givenIds, e.g. ['7', '8'])`,
    });
  }
}

/** Awaits a call that must fail with `type`, and returns the error. */
async function failure<T extends Error>(
  call: Promise<unknown>,
  type: abstract new (...args: never[]) => T,
  what: string,
): Promise<T> {
  let outcome: unknown;
  try {
    await call;
  } catch (err) {
    outcome = err;
  }
  if (outcome === undefined) assert.fail(`${what}: expected a ${type.name}, but the call succeeded`);
  if (!(outcome instanceof type)) {
    const got = outcome instanceof Error ? `${outcome.name}: ${outcome.message}` : typeof outcome;
    assert.fail(`${what}: expected a ${type.name}, got ${got}`);
  }
  return outcome;
}

function sameRecord(
  actual: LegacyRecord<ContractRow> | undefined,
  expected: LegacyRecord<ContractRow>,
  what: string,
): void {
  assert.deepEqual(actual, expected, `${what}: the record read differs from the one the write returned`);
}

async function drain(
  fixture: LegacyAdapterFixture,
  from: string | undefined,
  limit: number,
): Promise<{ changes: LegacyChange<ContractRow>[]; cursor: string | undefined; pages: number }> {
  const changes: LegacyChange<ContractRow>[] = [];
  let cursor = from;
  for (let pages = 0; ; pages += 1) {
    if (pages > 1000)
      assert.fail('changesSince: still answering changes after 1000 pages (does the cursor move?)');
    const page = await fixture.adapter.changesSince(fixture.resourceType, cursor, limit);
    assert.ok(
      page.changes.length <= limit,
      `changesSince: a page of ${page.changes.length} changes for limit ${limit}`,
    );
    if (page.changes.length === 0) {
      assert.equal(page.cursor, cursor, 'changesSince: an empty page must answer the cursor it was given');
      return { changes, cursor, pages };
    }
    changes.push(...page.changes);
    cursor = page.cursor;
  }
}

const sorted = (values: readonly string[]): string[] => [...values].sort();

/**
 * Every case of the contract, for a runner of your own.
 *
 * @returns The cases, grouped by method.
 * @example
 * ```ts
 * const names = legacyAdapterContractCases().map((item) => `${item.group}: ${item.name}`);
 * ```
 */
export function legacyAdapterContractCases(): readonly ContractCase[] {
  const cases: ContractCase[] = [];
  const add = (group: string, name: string, run: (fixture: LegacyAdapterFixture) => Promise<void>): void => {
    cases.push({ group, name, run });
  };

  add('create', 'assigns an id when the row has none', async ({ adapter, resourceType: type }) => {
    const created = await adapter.create(type, { name: 'Ada', note: null });
    assert.ok(typeof created.id === 'string' && created.id !== '', 'create: the record has no id');
    assert.equal(created.row.name, 'Ada', 'create: the stored row lost its name');
    assert.equal(typeof created.version, 'string', 'create: the record has no version');
  });
  add('create', 'keeps the id the row carries', async (fixture) => {
    const { adapter, resourceType: type } = fixture;
    const [id] = givenIds(fixture);
    const created = await withIdHint(fixture, adapter.create(type, { id, name: 'Ada', note: null }));
    assert.equal(created.id, id, 'create: the id given in the row was not kept');
    assert.equal(
      (await adapter.read(type, id))?.row.name,
      'Ada',
      'read: the created record is not found by its id',
    );
  });
  add('create', 'gives each record its own id', async ({ adapter, resourceType: type }) => {
    const a = await adapter.create(type, { name: 'Ada', note: null });
    const b = await adapter.create(type, { name: 'Grace', note: null });
    assert.notEqual(a.id, b.id, 'create: two records got the same id');
  });
  add(
    'create',
    'refuses an id that is taken with a version conflict, leaving the record alone',
    async (fixture) => {
      const { adapter, resourceType: type } = fixture;
      const [, dup] = givenIds(fixture);
      const first = await withIdHint(fixture, adapter.create(type, { id: dup, name: 'Ada', note: null }));
      const error = await failure(
        adapter.create(type, { id: dup, name: 'Grace', note: null }),
        LegacyVersionConflictError,
        'create of a taken id',
      );
      assert.equal(error.legacyId, dup, 'the conflict names another id');
      assert.equal(error.expectedVersion, undefined, 'a create conflict expects no version');
      assert.equal(error.actualVersion, first.version, 'the conflict does not report the stored version');
      assert.equal(
        (await adapter.read(type, dup))?.row.name,
        'Ada',
        'create of a taken id changed the record',
      );
    },
  );

  add(
    'read',
    'returns undefined for a record that does not exist',
    async ({ adapter, resourceType: type }) => {
      assert.equal(
        await adapter.read(type, 'missing'),
        undefined,
        'read of a missing record must answer undefined',
      );
    },
  );
  add('read', 'returns the record as create stored it', async ({ adapter, resourceType: type }) => {
    const created = await adapter.create(type, { name: 'Ada', note: 'x' });
    sameRecord(await adapter.read(type, created.id), created, 'read after create');
  });
  add('readMany', 'reads several at once as read reads each, keyed by the ids asked for', async (fixture) => {
    const { adapter, resourceType: type } = fixture;
    if (adapter.readMany === undefined) return;
    const ada = await adapter.create(type, { name: 'Ada', note: 'x' });
    const grace = await adapter.create(type, { name: 'Grace', note: 'y' });
    await adapter.update(type, grace.id, { name: 'Grace H.', note: 'y' });
    const missing = fixture.givenIds === undefined ? 'missing' : givenIds(fixture)[1];
    const ids = [ada.id, missing, grace.id, ada.id];
    const many = await adapter.readMany(type, ids);
    // An id left out is read with `read` by the library (LegacyAdapter.readMany, the README's
    // adapter section); an id answered must be one asked for, exactly as given, and agree with read.
    for (const id of many.keys())
      assert.ok(ids.includes(id), `readMany: answered an id that was not asked for (${JSON.stringify(id)})`);
    for (const id of many.keys())
      assert.deepEqual(many.get(id), await adapter.read(type, id), `readMany: id ${id} differs from read`);
    assert.equal((await adapter.readMany(type, [])).size, 0, 'readMany of no ids must answer an empty map');
  });

  add(
    'update',
    'replaces the row and moves the version on each write',
    async ({ adapter, resourceType: type }) => {
      const created = await adapter.create(type, { name: 'Ada', note: null });
      const first = await adapter.update(type, created.id, { name: 'Ada L.', note: 'married' });
      const second = await adapter.update(type, created.id, { name: 'Ada K.', note: 'title' });
      assert.equal(first.row.name, 'Ada L.', 'update: the returned row is not the one written');
      assert.equal(
        new Set([created.version, first.version, second.version]).size,
        3,
        'update: the version did not change on every write',
      );
      sameRecord(await adapter.read(type, created.id), second, 'read after update');
    },
  );
  add(
    'update',
    'applies when expectedVersion matches the stored version',
    async ({ adapter, resourceType: type }) => {
      const created = await adapter.create(type, { name: 'Ada', note: null });
      const updated = await adapter.update(
        type,
        created.id,
        { name: 'Ada L.', note: null },
        { expectedVersion: created.version },
      );
      assert.equal(updated.row.name, 'Ada L.', 'a guarded update with the current version must apply');
    },
  );
  add(
    'update',
    'refuses a stale expectedVersion with the actual version, changing nothing',
    async ({ adapter, resourceType: type }) => {
      const created = await adapter.create(type, { name: 'Ada', note: null });
      const current = await adapter.update(type, created.id, { name: 'Ada L.', note: null });
      const error = await failure(
        adapter.update(type, created.id, { name: 'Lost', note: null }, { expectedVersion: created.version }),
        LegacyVersionConflictError,
        'update with a stale expectedVersion',
      );
      assert.equal(error.expectedVersion, created.version, 'the conflict must report the version expected');
      assert.equal(error.actualVersion, current.version, 'the conflict must report the version found');
      sameRecord(await adapter.read(type, created.id), current, 'read after a refused update');
    },
  );
  add(
    'update',
    'refuses a version it never issued as a conflict',
    async ({ adapter, resourceType: type }) => {
      const created = await adapter.create(type, { name: 'Ada', note: null });
      await failure(
        adapter.update(type, created.id, { name: 'x', note: null }, { expectedVersion: 'not-a-version' }),
        LegacyVersionConflictError,
        'update with a version never issued',
      );
    },
  );
  add(
    'update',
    'throws LegacyNotFoundError for a missing record, guarded or not',
    async ({ adapter, resourceType: type }) => {
      await failure(
        adapter.update(type, 'missing', { name: 'x', note: null }),
        LegacyNotFoundError,
        'update of a missing record',
      );
      const guarded = await failure(
        adapter.update(type, 'missing', { name: 'x', note: null }, { expectedVersion: '1' }),
        LegacyNotFoundError,
        'guarded update of a missing record',
      );
      assert.equal(guarded.legacyId, 'missing', 'the error must name the id');
    },
  );

  add(
    'delete',
    'removes the record, and deleting again is a no-op',
    async ({ adapter, resourceType: type }) => {
      const created = await adapter.create(type, { name: 'Ada', note: null });
      await adapter.delete(type, created.id);
      assert.equal(await adapter.read(type, created.id), undefined, 'delete: the record can still be read');
      await adapter.delete(type, created.id);
      await adapter.delete(type, created.id, { expectedVersion: created.version });
    },
  );
  add(
    'delete',
    'refuses a stale expectedVersion, keeping the record',
    async ({ adapter, resourceType: type }) => {
      const created = await adapter.create(type, { name: 'Ada', note: null });
      const current = await adapter.update(type, created.id, { name: 'Ada L.', note: null });
      const error = await failure(
        adapter.delete(type, created.id, { expectedVersion: created.version }),
        LegacyVersionConflictError,
        'delete with a stale expectedVersion',
      );
      assert.equal(error.actualVersion, current.version, 'the conflict must report the version found');
      sameRecord(await adapter.read(type, created.id), current, 'read after a refused delete');
      await adapter.delete(type, created.id, { expectedVersion: current.version });
      assert.equal(
        await adapter.read(type, created.id),
        undefined,
        'a guarded delete with the current version must apply',
      );
    },
  );

  add(
    'changesSince',
    'pages through creates in order, then returns nothing with the same cursor',
    async (fixture) => {
      const { adapter, resourceType: type } = fixture;
      const ids: string[] = [];
      for (const name of ['a', 'b', 'c', 'd', 'e'])
        ids.push((await adapter.create(type, { name, note: null })).id);
      const { changes, cursor, pages } = await drain(fixture, undefined, 2);
      assert.equal(pages, 3, 'changesSince: 5 changes at limit 2 must take 3 pages');
      assert.deepEqual(
        sorted(changes.map((change) => change.id)),
        sorted(ids),
        'changesSince: every create once',
      );
      assert.ok(
        changes.every((change) => change.kind === 'upsert' && change.resourceType === type),
        'changesSince: creates are upserts of the type asked for',
      );
      const stamps = changes.map((change) => change.record?.updatedAt ?? '');
      assert.deepEqual(stamps, [...stamps].sort(), 'changesSince: changes must come in time order');
      assert.equal(typeof cursor, 'string', 'changesSince: a page with changes must answer a cursor');
    },
  );
  add(
    'changesSince',
    'returns nothing and no cursor for an empty store',
    async ({ adapter, resourceType: type }) => {
      assert.deepEqual(
        await adapter.changesSince(type, undefined, 10),
        { changes: [], cursor: undefined },
        'changesSince of an empty store',
      );
    },
  );
  add(
    'changesSince',
    'resumes after the cursor with only what changed since, at its latest state',
    async (fixture) => {
      const { adapter, resourceType: type } = fixture;
      const ids: string[] = [];
      for (const name of ['a', 'b', 'c']) ids.push((await adapter.create(type, { name, note: null })).id);
      const { cursor } = await drain(fixture, undefined, 10);
      const updated = await adapter.update(type, ids[1] ?? '', { name: 'b2', note: null });
      const later = await adapter.create(type, { name: 'd', note: null });
      const { changes } = await drain(fixture, cursor, 1);
      assert.deepEqual(
        sorted(changes.map((change) => `${change.id}@${change.record?.version ?? ''}`)),
        sorted([`${updated.id}@${updated.version ?? ''}`, `${later.id}@${later.version ?? ''}`]),
        'changesSince after a cursor: only the later writes, each at its latest version',
      );
    },
  );
  add(
    'changesSince',
    'finds a record written again, or a new one, stamped with the instant of the cursor',
    async (fixture) => {
      const { adapter, resourceType: type } = fixture;
      const a = await adapter.create(type, { name: 'a', note: null });
      const b = await adapter.create(type, { name: 'b', note: null });
      await fixture.shareTimestamp?.([a.id, b.id]);
      const { cursor } = await drain(fixture, undefined, 10);
      const again = await adapter.update(type, a.id, { name: 'a2', note: null });
      const c = await adapter.create(type, { name: 'c', note: null });
      await fixture.shareTimestamp?.([a.id, b.id, c.id]);
      const { changes } = await drain(fixture, cursor, 10);
      assert.deepEqual(
        sorted(changes.map((change) => `${change.id}@${change.record?.version ?? ''}`)),
        sorted([`${again.id}@${again.version ?? ''}`, `${c.id}@${c.version ?? ''}`]),
        'changesSince: writes stamped with the cursor’s own instant were skipped or repeated',
      );
    },
  );
  add('changesSince', 'neither repeats nor skips records written at the same instant', async (fixture) => {
    const { adapter, resourceType: type } = fixture;
    const ids: string[] = [];
    for (let i = 0; i < 7; i += 1) ids.push((await adapter.create(type, { name: `n${i}`, note: null })).id);
    await fixture.shareTimestamp?.(ids);
    for (const limit of [1, 2, 3]) {
      const { changes } = await drain(fixture, undefined, limit);
      assert.deepEqual(
        sorted(changes.map((change) => change.id)),
        sorted(ids),
        `changesSince at limit ${limit}: each record exactly once`,
      );
    }
    const firstPage = await adapter.changesSince(type, undefined, 3);
    const rest = await drain(fixture, firstPage.cursor, 2);
    assert.deepEqual(
      sorted([...firstPage.changes, ...rest.changes].map((change) => change.id)),
      sorted(ids),
      'changesSince resumed mid-instant: each record exactly once',
    );
  });
  add(
    'changesSince',
    'rejects a limit that is not a positive integer',
    async ({ adapter, resourceType: type }) => {
      for (const limit of [0, -1, 1.5, Number.NaN]) {
        const error = await failure(
          adapter.changesSince(type, undefined, limit),
          InvalidInputError,
          `changesSince with limit ${limit}`,
        );
        assert.equal(error.field, 'limit', 'the error must name the limit');
      }
    },
  );
  add('changesSince', 'rejects a cursor it did not issue', async ({ adapter, resourceType: type }) => {
    const error = await failure(
      adapter.changesSince(type, 'garbage!', 10),
      InvalidInputError,
      'changesSince with a foreign cursor',
    );
    assert.equal(error.field, 'cursor', 'the error must name the cursor');
  });

  add(
    'scan',
    'reads every record once, in pages, without changing any',
    async ({ adapter, resourceType: type }) => {
      const scan = adapter.scan?.bind(adapter);
      if (scan === undefined) return;
      // Twelve: integer ids the database assigns cross a digit count (9, 10), where a page
      // read in text order (1, 10, 11, 12, 2...) and a cursor compared as a number part ways.
      const count = 12;
      const created: LegacyRecord<ContractRow>[] = [];
      for (let i = 0; i < count; i += 1)
        created.push(await adapter.create(type, { name: `n${i}`, note: null }));
      for (const limit of [1, 3, 5, count, 50]) {
        const ids: string[] = [];
        let after: string | undefined;
        let pages = 0;
        do {
          const page = await scan(type, { after, limit });
          assert.ok(
            page.records.length <= limit,
            `scan: a page of ${page.records.length} records for limit ${limit}`,
          );
          ids.push(...page.records.map((record) => record.id));
          after = page.next;
          pages += 1;
          if (pages > 100) assert.fail('scan: still answering pages after 100 (does next move?)');
        } while (after !== undefined);
        assert.deepEqual(
          sorted(ids),
          sorted(created.map((record) => record.id)),
          `scan at limit ${limit}: every record once`,
        );
        assert.equal(
          pages,
          Math.max(1, Math.ceil(count / limit)),
          `scan at limit ${limit}: no empty page after the last`,
        );
      }
      for (const record of created)
        assert.equal(
          (await adapter.read(type, record.id))?.version,
          record.version,
          'scan changed a version',
        );
    },
  );
  add(
    'scan',
    'keeps its place while records are written behind it',
    async ({ adapter, resourceType: type }) => {
      const scan = adapter.scan?.bind(adapter);
      if (scan === undefined) return;
      for (let i = 0; i < 4; i += 1) await adapter.create(type, { name: `n${i}`, note: null });
      const first = await scan(type, { limit: 2 });
      const seen = new Set(first.records.map((record) => record.id));
      const behind = first.records[0];
      assert.ok(behind !== undefined, 'scan: the first page is empty');
      await adapter.update(type, behind.id, { ...behind.row, name: 'changed' });
      let after = first.next;
      while (after !== undefined) {
        const page = await scan(type, { after, limit: 2 });
        for (const record of page.records) {
          assert.ok(!seen.has(record.id), `scan: record ${record.id} came twice`);
          seen.add(record.id);
        }
        after = page.next;
      }
      assert.equal(seen.size, 4, 'scan: a record written during the scan was skipped');
    },
  );
  add('scan', 'answers an empty type with one empty, last page', async ({ adapter, resourceType: type }) => {
    if (adapter.scan === undefined) return;
    assert.deepEqual(
      await adapter.scan(type, { limit: 10 }),
      { records: [], next: undefined },
      'scan of an empty type',
    );
  });
  add('scan', 'rejects a limit that is not a positive integer', async ({ adapter, resourceType: type }) => {
    if (adapter.scan === undefined) return;
    for (const limit of [0, -1, 1.5]) {
      const error: InvalidInputError = await failure(
        adapter.scan(type, { limit }),
        InvalidInputError,
        `scan with limit ${limit}`,
      );
      assert.equal(error.field, 'limit', 'the error must name the limit');
    }
  });
  return cases;
}

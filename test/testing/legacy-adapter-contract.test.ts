import { AssertionError } from 'node:assert';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { PostgresTableAdapter } from '../../src/adapters/postgres-table-adapter.ts';
import { sqlClientFromPg } from '../../src/sql/pg-client.ts';
import type { LegacyRecord, LegacyWriteOptions } from '../../src/sides/legacy-adapter.ts';
import {
  checkLegacyAdapter,
  formatContractReport,
  legacyAdapterContractCases,
  type ContractRow,
  type LegacyAdapterFixture,
} from '../../src/testing/legacy-adapter-contract.ts';
import { MemoryLegacyAdapter } from '../../src/testing/memory-legacy-adapter.ts';

const run = promisify(execFile);
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Forgets the version guard on update: the classic lost-update bug. */
class UnguardedAdapter extends MemoryLegacyAdapter<ContractRow> {
  override update(
    type: string,
    id: string,
    row: ContractRow,
    _options?: LegacyWriteOptions,
  ): Promise<LegacyRecord<ContractRow>> {
    return super.update(type, id, row);
  }
}

/**
 * A batch read that answers only the records it found, leaving the missing ids out: allowed (the
 * README's adapter section and `LegacyAdapter.readMany`: an id left out is read with `read`).
 */
class FoundOnlyReadMany extends MemoryLegacyAdapter<ContractRow> {
  override async readMany(
    type: string,
    ids: readonly string[],
  ): Promise<ReadonlyMap<string, LegacyRecord<ContractRow> | undefined>> {
    const all = await super.readMany(type, ids);
    return new Map([...all].filter(([, record]) => record !== undefined));
  }
}

/** A batch read that keys its answer by the ids as the database spells them, not as asked. */
class RekeyedReadMany extends MemoryLegacyAdapter<ContractRow> {
  override async readMany(
    type: string,
    ids: readonly string[],
  ): Promise<ReadonlyMap<string, LegacyRecord<ContractRow> | undefined>> {
    const all = await super.readMany(type, ids);
    return new Map([...all].map(([id, record]) => [`${id} `, record]));
  }
}

describe('the legacy adapter contract kit', () => {
  it('takes a readMany that leaves ids out (they are read with read), and fails one that answers ids not asked for', async () => {
    const partial = await checkLegacyAdapter(() =>
      Promise.resolve({ adapter: new FoundOnlyReadMany(), resourceType: 'Patient' }),
    );
    expect(partial.failed).toEqual([]);
    const rekeyed = await checkLegacyAdapter(() =>
      Promise.resolve({ adapter: new RekeyedReadMany(), resourceType: 'Patient' }),
    );
    expect(rekeyed.failed.map((failure) => failure.name)).toEqual([
      'readMany: reads several at once as read reads each, keyed by the ids asked for',
    ]);
    expect(formatContractReport(rekeyed)).toContain('readMany: answered an id that was not asked for');
  });

  it('passes the reference in-memory adapter without a framework', async () => {
    const report = await checkLegacyAdapter(() =>
      Promise.resolve({ adapter: new MemoryLegacyAdapter<ContractRow>(), resourceType: 'Patient' }),
    );
    expect(report.failed).toEqual([]);
    expect(report.passed.length).toBeGreaterThan(20);
  });

  it('fails a broken adapter with a report that names each broken behaviour and why', async () => {
    const report = await checkLegacyAdapter(() =>
      Promise.resolve({ adapter: new UnguardedAdapter(), resourceType: 'Patient' }),
    );
    expect(report.failed.map((failure) => failure.name)).toEqual([
      'update: refuses a stale expectedVersion with the actual version, changing nothing',
      'update: refuses a version it never issued as a conflict',
    ]);
    const text = formatContractReport(report);
    expect(text).toContain(
      '✗ update: refuses a stale expectedVersion with the actual version, changing nothing: update with a stale expectedVersion: expected a LegacyVersionConflictError, but the call succeeded',
    );
    expect(text).toMatch(/\d+ passed, 2 failed, 0 skipped$/);
  });

  it('runs on an integer key (OpenEMR-like pid) given ids it can hold, and says why it fails without them', async () => {
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
    const schema = `kit_int_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
    await pool.query(`CREATE SCHEMA ${schema}`);
    let tables = 0;
    const setup = async (givenIds?: readonly [string, string]): Promise<LegacyAdapterFixture> => {
      const table = `patients_${(tables += 1)}`;
      await pool.query(`CREATE TABLE ${schema}.${table} (id serial PRIMARY KEY, name text, note text,
        version integer NOT NULL DEFAULT 1, updated_at timestamptz NOT NULL DEFAULT clock_timestamp())`);
      const adapter = new PostgresTableAdapter({
        sql: sqlClientFromPg(pool),
        tables: { Patient: { table, schema } },
      });
      return { adapter, resourceType: 'Patient', givenIds };
    };
    // The cases that give ids (the others pass whatever the key, and each case costs a table).
    const givingIds = [
      'keeps the id the row carries',
      'refuses an id that is taken with a version conflict, leaving the record alone',
      'reads several at once as read reads each, keyed by the ids asked for',
    ];
    const cases = legacyAdapterContractCases().filter(({ name }) => givingIds.includes(name));
    expect(cases).toHaveLength(3);
    try {
      for (const { run } of cases) await run(await setup(['7', '8']));
      // Without them the cases that create a row with its id give it 'legacy-7', which no
      // integer key holds: their failures say what to give.
      for (const { name, run } of cases.filter((each) => each.group === 'create')) {
        const error = await run(await setup()).catch((err: unknown) => err);
        expect(error, name).toBeInstanceOf(AssertionError);
        expect((error as Error).message).toContain("give the fixture givenIds, e.g. ['7', '8']");
      }
    } finally {
      await pool.query(`DROP SCHEMA ${schema} CASCADE`);
      await pool.end();
    }
  });

  it('runs under node:test with its describe and it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dualwrite-contract-'));
    const src = (path: string) => fileURLToPath(new URL(`../../src/${path}`, import.meta.url));
    try {
      const file = join(dir, 'contract.test.ts');
      writeFileSync(
        file,
        `import { describe, it } from 'node:test';
import { runLegacyAdapterContract } from ${JSON.stringify(src('testing/legacy-adapter-contract.ts'))};
import { MemoryLegacyAdapter } from ${JSON.stringify(src('testing/memory-legacy-adapter.ts'))};
runLegacyAdapterContract({ describe, it }, 'MemoryLegacyAdapter', async () => ({
  adapter: new MemoryLegacyAdapter(),
  resourceType: 'Patient',
}));
`,
      );
      const { stdout } = await run(process.execPath, ['--test', '--test-reporter=tap', file], {
        timeout: 60_000,
      });
      expect(stdout).toMatch(/# fail 0/);
      expect(Number(/# pass (\d+)/.exec(stdout)?.[1])).toBeGreaterThan(20);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

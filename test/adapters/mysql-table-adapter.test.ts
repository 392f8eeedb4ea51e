import { inspect } from 'node:util';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MysqlTableAdapter } from '../../src/adapters/mysql-table-adapter.ts';
import { ConfigurationError, InvalidInputError, RejectedError, UnavailableError } from '../../src/errors.ts';
import { databaseFailureKind } from '../../src/sql/database-failure.ts';
import { classifyMysqlError } from '../../src/sql/mysql-errors.ts';
import { describeLegacyAdapterContract, type LegacyAdapterFixture } from './legacy-adapter.contract.ts';

// MariaDB (or MySQL) on 127.0.0.1:3306; `.ci/run` starts it and creates the `test` database.
const MYSQL_URL = process.env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
// A database per run keeps parallel runs from seeing each other's tables.
const database = `dw_mysql_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;

let admin: mysql.Pool;
let pool: mysql.Pool;
let tables = 0;

beforeAll(async () => {
  admin = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 2 });
  await admin.query(`CREATE DATABASE \`${database}\``);
  const url = new URL(MYSQL_URL);
  url.pathname = `/${database}`;
  pool = mysql.createPool({ uri: url.toString(), connectionLimit: 6 });
});

afterAll(async () => {
  await pool.end();
  await admin.query(`DROP DATABASE IF EXISTS \`${database}\``);
  await admin.end();
});

async function patients(idDefinition: string): Promise<string> {
  const table = `patients_${(tables += 1)}`;
  await pool.query(`CREATE TABLE \`${table}\` (
      id ${idDefinition},
      name VARCHAR(100) NULL,
      note VARCHAR(100) NULL,
      version INT NOT NULL DEFAULT 1,
      updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
    ) ENGINE=InnoDB`);
  return table;
}

async function fixture(): Promise<LegacyAdapterFixture> {
  const table = await patients('VARCHAR(64) NOT NULL DEFAULT uuid() PRIMARY KEY');
  return {
    adapter: new MysqlTableAdapter({ pool, tables: { Patient: { table } } }),
    resourceType: 'Patient',
    shareTimestamp: async (ids) => {
      await pool.query(`UPDATE \`${table}\` SET updated_at = '2030-01-01 00:00:00' WHERE id IN (?)`, [ids]);
    },
  };
}

describeLegacyAdapterContract('MysqlTableAdapter on MariaDB', fixture);

describe('MysqlTableAdapter on MariaDB', () => {
  it('takes ids from AUTO_INCREMENT (the insert id), and cannot reserve one ahead', async () => {
    const table = await patients('INT NOT NULL AUTO_INCREMENT PRIMARY KEY');
    const legacy = new MysqlTableAdapter({ pool, tables: { Patient: { table } } });
    const first = await legacy.create('Patient', { name: 'Ada' });
    const second = await legacy.create('Patient', { name: 'Grace' });
    expect(Number(second.id)).toBe(Number(first.id) + 1);
    expect(await legacy.newId('Patient')).toBeUndefined();
    expect(await legacy.read('Patient', 'abc')).toBeUndefined();
    expect(await legacy.read('Patient', first.id)).toEqual(first);
  });

  it('reserves an id ahead from a uuid() default, and create keeps it', async () => {
    const table = await patients('VARCHAR(64) NOT NULL DEFAULT uuid() PRIMARY KEY');
    const legacy = new MysqlTableAdapter({ pool, tables: { Patient: { table } } });
    const id = await legacy.newId('Patient');
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    const created = await legacy.create('Patient', { id, name: 'Ada' });
    expect(created.id).toBe(id);
  });

  it('reports deletes through tombstones, the legacy application’s own included', async () => {
    const table = await patients('INT NOT NULL AUTO_INCREMENT PRIMARY KEY');
    const legacy = new MysqlTableAdapter({ pool, tables: { Patient: { table } }, tombstones: true });
    await legacy.installTombstones();
    await legacy.installTombstones(); // idempotent
    const ada = await legacy.create('Patient', { name: 'Ada' });
    const grace = await legacy.create('Patient', { name: 'Grace' });
    const start = await legacy.changesSince('Patient', undefined, 10);
    expect(start.changes.map((change) => change.kind)).toEqual(['upsert', 'upsert']);
    await legacy.delete('Patient', ada.id, { expectedVersion: ada.version });
    await pool.query(`DELETE FROM \`${table}\` WHERE id = ?`, [grace.id]);
    const after = await legacy.changesSince('Patient', start.cursor, 10);
    expect(after.changes.map((change) => [change.kind, change.id])).toEqual([
      ['delete', ada.id],
      ['delete', grace.id],
    ]);
    expect(after.changes.every((change) => change.record === undefined)).toBe(true);
    expect((await legacy.changesSince('Patient', after.cursor, 10)).changes).toEqual([]);
  });

  it('stamps a write that waited on a lock after the lock holder committed (SYSDATE, not NOW)', async () => {
    const table = await patients('INT NOT NULL AUTO_INCREMENT PRIMARY KEY');
    const legacy = new MysqlTableAdapter({ pool, tables: { Patient: { table } } });
    const ada = await legacy.create('Patient', { name: 'Ada' });
    const holder = await pool.getConnection();
    try {
      await holder.beginTransaction();
      await holder.query(`SELECT id FROM \`${table}\` WHERE id = ? FOR UPDATE`, [ada.id]);
      const waiting = legacy.update('Patient', ada.id, { name: 'Ada L.' });
      // The update has started (and NOW(6) would be fixed) before the holder lets go.
      await new Promise((resolve) => setTimeout(resolve, 300));
      const [[released]] = (await holder.query('SELECT UNIX_TIMESTAMP(SYSDATE(6)) AS at')) as unknown as [
        [{ at: string }],
      ];
      await holder.commit();
      const updated = await waiting;
      expect(Date.parse(updated.updatedAt ?? '')).toBeGreaterThanOrEqual(
        Math.floor(Number(released.at) * 1000),
      );
    } finally {
      holder.release();
    }
  });

  it('turns a lock wait timeout into a retryable UnavailableError', async () => {
    const table = await patients('INT NOT NULL AUTO_INCREMENT PRIMARY KEY');
    const url = new URL(MYSQL_URL);
    url.pathname = `/${database}`;
    const impatient = mysql.createPool({ uri: url.toString(), connectionLimit: 2 });
    impatient.on('connection', (connection) => {
      void connection.query('SET SESSION innodb_lock_wait_timeout = 1');
    });
    const legacy = new MysqlTableAdapter({ pool: impatient, tables: { Patient: { table } } });
    const ada = await legacy.create('Patient', { name: 'Ada' });
    const holder = await pool.getConnection();
    try {
      await holder.beginTransaction();
      await holder.query(`SELECT id FROM \`${table}\` WHERE id = ? FOR UPDATE`, [ada.id]);
      const error = await legacy.update('Patient', ada.id, { name: 'Ada L.' }).catch((err: unknown) => err);
      expect(error).toBeInstanceOf(UnavailableError);
      expect(error).toMatchObject({ retryable: true, side: 'legacy', legacyId: ada.id });
      expect((error as Error).message).toContain('1205');
      await holder.rollback();
    } finally {
      holder.release();
      await impatient.end();
    }
  });

  it('classifies a real deadlock as transient', async () => {
    const table = await patients('INT NOT NULL AUTO_INCREMENT PRIMARY KEY');
    await pool.query(`INSERT INTO \`${table}\` (id, name) VALUES (1, 'a'), (2, 'b')`);
    const [a, b] = [await pool.getConnection(), await pool.getConnection()];
    try {
      await a.beginTransaction();
      await b.beginTransaction();
      await a.query(`UPDATE \`${table}\` SET name = 'a1' WHERE id = 1`);
      await b.query(`UPDATE \`${table}\` SET name = 'b1' WHERE id = 2`);
      const crossed = await Promise.allSettled([
        a.query(`UPDATE \`${table}\` SET name = 'a2' WHERE id = 2`),
        b.query(`UPDATE \`${table}\` SET name = 'b2' WHERE id = 1`),
      ]);
      const failure = crossed.find((outcome) => outcome.status === 'rejected');
      if (failure?.status !== 'rejected')
        throw new Error('neither transaction was chosen as the deadlock victim');
      expect(classifyMysqlError(failure.reason)).toMatchObject({
        kind: 'transient',
        errno: 1213,
        code: 'ER_LOCK_DEADLOCK',
      });
    } finally {
      await a.rollback();
      await b.rollback();
      a.release();
      b.release();
    }
  });

  it('classifies lost connections and shutdowns as transient, data errors as rejected', () => {
    for (const errno of [1053, 1205, 1213, 2006, 2013])
      expect(classifyMysqlError({ errno }).kind).toBe('transient');
    expect(classifyMysqlError({ code: 'PROTOCOL_CONNECTION_LOST', fatal: true }).kind).toBe('transient');
    expect(classifyMysqlError({ errno: 1048, sqlState: '23000' }).kind).toBe('rejected');
    expect(
      classifyMysqlError({
        errno: 1062,
        sqlState: '23000',
        sqlMessage: "Duplicate entry 'x' for key 'PRIMARY'",
      }).kind,
    ).toBe('duplicate-key');
    expect(classifyMysqlError(new Error('boom')).kind).toBe('unknown');
  });

  it('is the database-failure classification for MySQL errors filed under SQLSTATE HY000', () => {
    // Lock wait timeout and lost connection carry the catch-all SQLSTATE; their numbers decide.
    expect(databaseFailureKind({ errno: 1205, sqlState: 'HY000', code: 'ER_LOCK_WAIT_TIMEOUT' })).toBe(
      'transient',
    );
    expect(databaseFailureKind({ errno: 2013, sqlState: 'HY000', code: 'CR_SERVER_LOST' })).toBe('transient');
    expect(databaseFailureKind({ errno: 1406, sqlState: '22001', code: 'ER_DATA_TOO_LONG' })).toBe(
      'permanent',
    );
  });

  it('refuses a value the table cannot hold with a RejectedError naming the column, never the value', async () => {
    const table = await patients('INT NOT NULL AUTO_INCREMENT PRIMARY KEY');
    const legacy = new MysqlTableAdapter({ pool, tables: { Patient: { table } } });
    const secret = `Lovelace-${'x'.repeat(120)}`;
    const error = await legacy.create('Patient', { name: secret }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(RejectedError);
    expect(error).toMatchObject({ fields: ['name'], retryable: false });
    expect(JSON.stringify(error)).not.toContain('Lovelace');
    expect((error as Error).message).not.toContain('Lovelace');
  });

  it('names the column of a value MariaDB refuses, which its messages name as `db`.`table`.`column` (a character the charset lacks, a bad date, text for a number)', async () => {
    const table = `patients_${(tables += 1)}`;
    await pool.query(`CREATE TABLE \`${table}\` (
        id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
        name VARCHAR(100) CHARACTER SET utf8mb3 NULL,
        born DATE NULL,
        visits INT NULL,
        version INT NOT NULL DEFAULT 1,
        updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
      ) ENGINE=InnoDB`);
    const legacy = new MysqlTableAdapter({ pool, tables: { Patient: { table } } });
    const refused: [Record<string, unknown>, string][] = [
      [{ name: 'Okapi\u{1F600}' }, 'name'],
      [{ born: '2020-13-45' }, 'born'],
      [{ visits: 'Okapi' }, 'visits'],
    ];
    for (const [row, column] of refused) {
      const error = await legacy.create('Patient', row).catch((err: unknown) => err);
      expect(error).toBeInstanceOf(RejectedError);
      expect(error).toMatchObject({ fields: [column], retryable: false });
      expect((error as Error).message).toContain(`column ${column}`);
      for (const shown of [JSON.stringify(error), inspect(error, { depth: null, showHidden: true })])
        expect(shown).not.toMatch(/Okapi|2020-13-45|\\xF0/);
    }
    const [rows] = await pool.query(`SELECT id FROM \`${table}\``);
    expect(rows).toEqual([]);
  });

  it('refuses a row a CHECK constraint fails as a constraint violation naming the constraint (MariaDB errno 4025, which mysql2 names after another error)', async () => {
    const table = await patients('INT NOT NULL AUTO_INCREMENT PRIMARY KEY');
    await pool.query(
      `ALTER TABLE \`${table}\` ADD CONSTRAINT \`${table}_note\` CHECK (note <> 'Okapi-1931')`,
    );
    const legacy = new MysqlTableAdapter({ pool, tables: { Patient: { table } } });
    const error = await legacy
      .create('Patient', { name: 'Ada', note: 'Okapi-1931' })
      .catch((err: unknown) => err);
    expect(error).toBeInstanceOf(RejectedError);
    expect(error).toMatchObject({ retryable: false, code: '23000' });
    const message = (error as Error).message;
    expect(message).toContain('ER_CONSTRAINT_FAILED');
    expect(message).toContain(`constraint ${table}_note`);
    expect(message).not.toContain('INNODB');
    expect(JSON.stringify(error)).not.toContain('Okapi');
    expect(
      classifyMysqlError({ errno: 4025, code: 'ER_INNODB_AUTOEXTEND_SIZE_OUT_OF_RANGE', sqlState: '23000' }),
    ).toEqual({
      kind: 'rejected',
      errno: 4025,
      code: 'ER_CONSTRAINT_FAILED',
      sqlState: '23000',
    });
    // MySQL's own CHECK failure comes under the catch-all SQLSTATE HY000.
    expect(
      classifyMysqlError({ errno: 3819, code: 'ER_CHECK_CONSTRAINT_VIOLATED', sqlState: 'HY000' }).kind,
    ).toBe('rejected');
  });

  it('refuses a given id an integer key would store as another (spaces, a sign, leading zeros, a fraction), naming the id column', async () => {
    const table = await patients('INT NOT NULL AUTO_INCREMENT PRIMARY KEY');
    const legacy = new MysqlTableAdapter({ pool, tables: { Patient: { table } } });
    await legacy.create('Patient', { id: 12, name: 'Ada' });
    // Stored as 7100, 12 or 5100, each would be linked and mirrored under the id as given.
    for (const id of [' 7100', '7100 ', '+7100', '0012', '6100.0', 5100.4, '1e3', 'abc']) {
      const error = await legacy.create('Patient', { id, name: 'Grace' }).catch((err: unknown) => err);
      expect(error, String(id)).toBeInstanceOf(InvalidInputError);
      expect(error).toMatchObject({ field: 'row.id' });
    }
    const [rows] = await pool.query(`SELECT id FROM \`${table}\``);
    expect(rows).toEqual([{ id: 12 }]);
    expect((await legacy.create('Patient', { id: '-3', name: 'Grace' })).id).toBe('-3');
    expect((await legacy.create('Patient', { id: 7100, name: 'Grace' })).id).toBe('7100');
  });

  it("refuses what a trigger's SIGNAL stops with a RejectedError that carries neither the statement nor the text", async () => {
    const table = await patients('INT NOT NULL AUTO_INCREMENT PRIMARY KEY');
    await pool.query(`CREATE TRIGGER \`${table}_block\` BEFORE INSERT ON \`${table}\` FOR EACH ROW BEGIN
      DECLARE message VARCHAR(200);
      IF NEW.note = 'BLOCK' THEN
        SET message = CONCAT('patient ', NEW.name, ' is on the blocked list');
        SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = message;
      END IF;
    END`);
    const legacy = new MysqlTableAdapter({ pool, tables: { Patient: { table } } });
    const error = await legacy
      .create('Patient', { name: 'Okapimeadow', note: 'BLOCK' })
      .catch((err: unknown) => err);
    expect(error).toBeInstanceOf(RejectedError);
    expect(error).toMatchObject({ code: '45000', retryable: false });
    for (const shown of [JSON.stringify(error), inspect(error, { depth: null, showHidden: true })])
      expect(shown).not.toContain('Okapimeadow');
  });

  it('refuses tombstones that are not true or name no SQL identifier, naming the option', () => {
    const tables = { Patient: { table: 'patients' } };
    const fieldOf = (tombstones: unknown): unknown => {
      try {
        new MysqlTableAdapter({ pool, tables, tombstones: tombstones as true });
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigurationError);
        return (err as ConfigurationError).field;
      }
      return undefined;
    };
    expect(fieldOf('yes')).toBe('tombstones');
    expect(fieldOf({ table: 'dead stones' })).toBe('tombstones.table');
    expect(fieldOf({ database: 'a.b' })).toBe('tombstones.database');
    expect(fieldOf({ table: 'dw_dead', database: 'clinic' })).toBeUndefined();
  });

  it('names a missing table or column as a configuration error', async () => {
    const legacy = new MysqlTableAdapter({ pool, tables: { Patient: { table: 'no_such_table' } } });
    await expect(legacy.read('Patient', '1')).rejects.toMatchObject({
      name: 'ConfigurationError',
      field: 'tables.Patient.table',
    });
    const table = await patients('INT NOT NULL AUTO_INCREMENT PRIMARY KEY');
    const wrong = new MysqlTableAdapter({ pool, tables: { Patient: { table, versionColumn: 'rev' } } });
    await expect(wrong.read('Patient', '1')).rejects.toMatchObject({ field: 'tables.Patient.versionColumn' });
  });
});

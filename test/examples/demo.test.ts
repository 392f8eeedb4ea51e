import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);

// MariaDB on 127.0.0.1:3306 (`.ci/run` starts it); the legacy clinic gets a database of its own.
const MYSQL_URL = process.env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
const mariadbDatabase = `dw_demo_${String(process.pid)}_${Math.random().toString(36).slice(2, 8)}`;
let admin: mysql.Pool;

beforeAll(async () => {
  admin = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 1 });
  await admin.query(`CREATE DATABASE \`${mariadbDatabase}\``);
});

afterAll(async () => {
  await admin.query(`DROP DATABASE IF EXISTS \`${mariadbDatabase}\``);
  await admin.end();
});

/** Runs `npm run demo` with the embedded Medplum, whatever this shell points at, and answers its output. */
async function runDemo(env: Record<string, string>): Promise<string> {
  const { stdout } = await run(process.execPath, ['examples/demo.ts'], {
    // The mirror-lag gate out of a loaded machine's reach: the units' story must not depend on
    // the machine's speed (at a load of 10 the lag's p95 was 5.3 s and south never went live).
    env: {
      ...process.env,
      DATABASE_URL: '',
      LEGACY_DATABASE_URL: '',
      MEDPLUM_BASE_URL: '',
      DEMO_MAX_MIRROR_LAG_MS: '300000',
      ...env,
    },
    // The limits only end a run that never finishes: the demo took 100–120 s at a load of 20.
    // A non-zero exit rejects.
    timeout: 600_000,
  });
  return stdout;
}

/** What every run of the demo ends with, whichever legacy database it ran on. */
function expectEveryRecordAgrees(stdout: string): void {
  // The auditor's table: every legacy row has exactly one Medplum copy, and they agree.
  // Patients, encounters and vitals alike, references included; every unit has charts.
  for (const unit of ['north', 'east', 'south']) {
    for (const type of ['Patient', 'Encounter', 'Observation']) {
      const line = new RegExp(String.raw`^${unit}\s+\S+\s+${type}\s+([1-9]\d*)\s+\1\s+0\s+0\s+\1/\1$`, 'm');
      expect(stdout).toMatch(line);
    }
    // Charts were written on both sides: through the service, the legacy screens and Medplum.
    expect(stdout).toMatch(
      new RegExp(
        String.raw`^${unit} charts: service [1-9]\d* encounters, [1-9]\d* vitals, [1-9]\d* corrections; legacy screens [1-9]\d* encounters, [1-9]\d* vitals, [1-9]\d* corrections; Medplum app \d+ vitals, [1-9]\d* corrections$`,
        'm',
      ),
    );
  }
  expect(stdout).toMatch(/^\S+ charts: .*Medplum app [1-9]\d* vitals/m);
  expect(stdout).toMatch(/Medplum outage: \d+ ms in round 2, [1-9]\d* requests refused/);
  expect(stdout).toMatch(/south: rolled back live → shadow \(Medplum outage/);
  expect(stdout).toMatch(/conflicts\s+[1-9]\d* on \d+ records: .*; [1-9]\d* resolved/);
  expect(stdout).toMatch(/^outbox: 0 pending, 0 dead letters$/m);
  // Read-backs and shadow reads found no difference (vitals recorded in the Medplum app included).
  expect(stdout).toMatch(/^comparisons: .*, 0 divergent$/m);
  expect(stdout).toMatch(/every record exists once on each side and the copies agree/);
  // It ends with `dualwrite status`: each unit's stage and an empty backlog.
  const status = stdout.slice(stdout.indexOf('$ dualwrite status'));
  expect(status).toMatch(/^unit\s+stage\s+pending\s+waiting\s+leased\s+dead\s+oldest\s+paused$/m);
  for (const unit of ['north', 'east', 'south']) {
    expect(status).toMatch(new RegExp(String.raw`^${unit}\s+\S+\s+0\s+0\s+0\s+0\s+-\s+-$`, 'm'));
  }
}

describe('npm run demo', () => {
  it('migrates three units through their stages under faults and an outage, and every record agrees', async () => {
    const stdout = await runDemo({});
    expect(stdout).toMatch(/^legacy: {2}PGlite/m);
    expectEveryRecordAgrees(stdout);
  }, 600_000);

  it('runs its legacy clinic on MariaDB (journal in PGlite), and drops what it created there', async () => {
    const url = new URL(MYSQL_URL);
    url.pathname = `/${mariadbDatabase}`;
    const stdout = await runDemo({ LEGACY_DATABASE_URL: url.toString() });
    expect(stdout).toMatch(/^legacy: {2}MariaDB[^\n]*\njournal: PGlite/m);
    expectEveryRecordAgrees(stdout);
    const [tables] = await admin.query(
      'SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?',
      [mariadbDatabase],
    );
    expect(tables).toEqual([]);
  }, 600_000);
});

/**
 * The `dualwrite` command as an operator runs it: the library built into a temporary directory
 * (the repository's `dist` is left alone), a project directory holding `dualwrite.config.ts`
 * that imports `medplum-dualwrite` (linked to that build, so the configuration and the command
 * share one copy of the library), and the built `dist/cli/main.js` run by Node as a child
 * process — on pipes, or in a pseudo-terminal through util-linux `script`.
 *
 * The test configuration works on real systems: a `patients` table and the journal in
 * PostgreSQL (`DATABASE_URL`, a schema per test file) and the in-process HTTP FHIR test server
 * (`MEDPLUM_BASE_URL`).
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { PostgresStore, sqlClientFromPg } from '../../src/index.ts';
import { startFhirTestServer, type FhirTestServer } from '../../src/testing/index.ts';
import { buildLibrary, repoModules } from '../package/library-build.ts';

/** The test project's `dualwrite.config.ts`: what a user writes, on this test's systems. */
export const TEST_CONFIG = `
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import {
  CutoverPlan,
  MappingError,
  PostgresStore,
  PostgresTableAdapter,
  createMedplumClient,
  defineConfig,
  sqlClientFromPg,
} from 'medplum-dualwrite';

export default defineConfig(async (env) => {
  const schema = env.variables.CLI_TEST_SCHEMA ?? 'cli_test';
  const pool = new pg.Pool({ connectionString: env.databaseUrl, max: 6 });
  const sql = sqlClientFromPg(pool);
  const store = await PostgresStore.open({ sql, schema: schema + '_journal' });
  const plan = new CutoverPlan<{ clinic: string }>({
    default: 'legacy-only',
    units: { north: 'dual-write', south: 'live' },
    unitOf: (ctx) => ctx.clinic,
  });
  // CLI_TEST_NO_ATTACH: the plan is left unattached (the command must attach it itself).
  if (env.variables.CLI_TEST_NO_ATTACH === undefined) await plan.attach(store);
  // CLI_TEST_HOLD: the second page of a scan waits for the test (a page in hand at Ctrl-C).
  const hold = env.variables.CLI_TEST_HOLD;
  let scans = 0;
  class HeldTableAdapter extends PostgresTableAdapter {
    async scan(type: string, options: { after?: string; limit: number }) {
      scans += 1;
      if (hold !== undefined && scans === 2) {
        writeFileSync(join(hold, 'scanning'), '');
        while (!existsSync(join(hold, 'release'))) await sleep(20);
      }
      return super.scan(type, options);
    }
  }
  const legacy = new HeldTableAdapter({ sql, tables: { Patient: { table: 'patients', schema } } });
  const medplum = createMedplumClient({ baseUrl: env.medplum?.baseUrl ?? 'http://127.0.0.1:1/' });
  return {
    store,
    plan,
    legacy,
    medplum,
    mappings: [
      {
        resourceType: 'Patient',
        identifierSystem: 'https://cli.example.org/' + schema + '/patient-id',
        legacyId: (row: Record<string, unknown>) => (row.id === undefined ? undefined : String(row.id)),
        withLegacyId: (row: Record<string, unknown>, id: string) => ({ ...row, id: Number(id) }),
        toFhir: (row: Record<string, unknown>, existing?: Record<string, unknown>) => {
          if (typeof row.last_name !== 'string') throw new MappingError('last_name', 'is required');
          return {
            ...existing,
            resourceType: 'Patient',
            name: [{ given: [String(row.first_name)], family: row.last_name }],
            managingOrganization: { display: String(row.clinic) },
          };
        },
        toLegacy: (patient: any, existing?: Record<string, unknown>) => ({
          ...existing,
          clinic: patient.managingOrganization?.display,
          first_name: patient.name?.[0]?.given?.[0] ?? '',
          last_name: patient.name?.[0]?.family ?? '',
        }),
      },
    ],
    feeds: { unitOf: ({ row }: { row?: Record<string, unknown> }) => (typeof row?.clinic === 'string' ? row.clinic : undefined) },
    retry: { retries: 2, minTimeoutMs: 10, maxTimeoutMs: 50 },
    // CLI_TEST_TYPO: a misspelt writer option (every command must refuse it).
    ...(env.variables.CLI_TEST_TYPO === undefined ? {} : { mirrror: 'async' }),
    close: async () => {
      plan.detach();
      await pool.end();
    },
  };
});
`;

/** What a finished `dualwrite` process left. */
export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** A running `dualwrite` process the test steers (Ctrl-C). */
export interface CliProcess {
  readonly pid: number;
  /** Everything it has printed on stderr so far. */
  stderr(): string;
  /** Whether it has exited. */
  finished(): boolean;
  /** Sends Ctrl-C (SIGINT). */
  interrupt(): void;
  readonly done: Promise<CliRun>;
}

/** The built command and its project directory. */
export interface CliBuild {
  /** The directory holding `dualwrite.config.ts`; the command runs there. */
  readonly project: string;
  /** The built `dist/cli/main.js`. */
  readonly main: string;
  /** Runs `dualwrite …args` on pipes (stdin is not a terminal) and waits for it. */
  run(args: readonly string[], env?: Readonly<Record<string, string>>): Promise<CliRun>;
  /** Starts `dualwrite …args` on pipes without waiting. */
  start(args: readonly string[], env?: Readonly<Record<string, string>>): CliProcess;
  /** Runs `dualwrite …args` in a pseudo-terminal; returns what the terminal showed. */
  runInTerminal(
    args: readonly string[],
    env?: Readonly<Record<string, string>>,
    input?: string,
  ): Promise<CliRun>;
  /** Removes the build and the project. */
  remove(): void;
}

/**
 * Builds the library into a temporary directory and lays out a project using it.
 *
 * @param baseEnv - Environment of every run (DATABASE_URL, MEDPLUM_BASE_URL, CLI_TEST_SCHEMA).
 * @returns The build.
 */
export async function buildCli(baseEnv: Readonly<Record<string, string>>): Promise<CliBuild> {
  const work = mkdtempSync(join(tmpdir(), 'dualwrite-cli-'));
  const build = await buildLibrary(join(work, 'build'), { declaration: false });
  const project = join(work, 'project');
  // The build and the project find their dependencies in the repository's node_modules (one
  // level up from both), and the project finds the library in its own node_modules.
  symlinkSync(repoModules, join(work, 'node_modules'), 'dir');
  mkdirSync(join(project, 'node_modules'), { recursive: true });
  symlinkSync(build, join(project, 'node_modules', 'medplum-dualwrite'), 'dir');
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify({ name: 'ops', private: true, type: 'module' }),
  );
  writeFileSync(join(project, 'dualwrite.config.ts'), TEST_CONFIG);
  const main = join(build, 'dist', 'cli', 'main.js');
  const envOf = (env: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv => ({
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    ...baseEnv,
    ...env,
  });

  const start = (args: readonly string[], env?: Readonly<Record<string, string>>): CliProcess => {
    const child = spawn(process.execPath, [main, ...args], {
      cwd: project,
      env: envOf(env),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let finished = false;
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdin.end();
    const done = new Promise<CliRun>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code) => {
        finished = true;
        resolve({ code, stdout, stderr });
      });
    });
    return {
      pid: child.pid ?? -1,
      stderr: () => stderr,
      finished: () => finished,
      interrupt: () => child.kill('SIGINT'),
      done,
    };
  };

  return {
    project,
    main,
    run: (args, env) => start(args, env).done,
    start,
    runInTerminal: (args, env, input) =>
      new Promise<CliRun>((resolve, reject) => {
        const quoted = [process.execPath, main, ...args].map((arg) => `'${arg.replace(/'/g, `'\\''`)}'`);
        // `script -q -e -c CMD /dev/null`: CMD in a new pseudo-terminal, its exit status kept.
        const child = spawn('script', ['-qec', quoted.join(' '), '/dev/null'], {
          cwd: project,
          env: { ...envOf(env), TERM: 'xterm', COLUMNS: '120', LINES: '40' },
          stdio: ['pipe', 'pipe', 'pipe'],
        });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
        child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        if (input !== undefined) child.stdin.write(input);
        child.on('error', reject);
        child.on('close', (code) => resolve({ code, stdout, stderr }));
      }),
    remove: () => rmSync(work, { recursive: true, force: true }),
  };
}

/** A patient row of the test configuration's legacy table. */
export interface PatientSeed {
  readonly clinic: string;
  readonly first_name: string;
  readonly last_name: string;
}

/**
 * What a CLI test file works on: a schema of its own in PostgreSQL (`DATABASE_URL`) holding the
 * configuration's `patients` table (its journal goes in `<schema>_journal`), the HTTP FHIR test
 * server, and the built command configured for both.
 */
export interface CliWorld {
  /** The schema of the legacy table (`CLI_TEST_SCHEMA`). */
  readonly schema: string;
  readonly pool: pg.Pool;
  readonly server: FhirTestServer;
  readonly cli: CliBuild;
  /** The journal the command works on, opened (and migrated) by the test. */
  openJournal(): Promise<PostgresStore>;
  /** Removes the build, stops the server and drops both schemas. */
  close(): Promise<void>;
}

/**
 * Creates the schema and its `patients` table with `patients` in it, starts the FHIR test
 * server and builds the command.
 *
 * @param prefix - The schema's prefix (a random suffix follows).
 * @param patients - The legacy table's rows, inserted in order (ids 1, 2, …).
 * @returns The world; close it after the file's tests.
 */
export async function openCliWorld(prefix: string, patients: readonly PatientSeed[] = []): Promise<CliWorld> {
  const schema = `${prefix}_${randomUUID().slice(0, 8)}`;
  const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 2 });
  await pool.query(`create schema ${schema}`);
  await pool.query(`create table ${schema}.patients (
    id serial primary key, clinic text not null, first_name text not null, last_name text not null,
    version integer not null default 1, updated_at timestamptz not null default clock_timestamp())`);
  for (const { clinic, first_name, last_name } of patients)
    await pool.query(`insert into ${schema}.patients (clinic, first_name, last_name) values ($1, $2, $3)`, [
      clinic,
      first_name,
      last_name,
    ]);
  const server = await startFhirTestServer();
  const cli = await buildCli({
    DATABASE_URL: process.env.DATABASE_URL ?? '',
    MEDPLUM_BASE_URL: server.baseUrl,
    CLI_TEST_SCHEMA: schema,
  });
  return {
    schema,
    pool,
    server,
    cli,
    openJournal: () => PostgresStore.open({ sql: sqlClientFromPg(pool), schema: `${schema}_journal` }),
    close: async () => {
      cli.remove();
      await server.close();
      await pool.query(`drop schema if exists ${schema} cascade`);
      await pool.query(`drop schema if exists ${schema}_journal cascade`);
      await pool.end();
    },
  };
}

/**
 * Parses the one JSON document a `--json` run printed on stdout.
 *
 * @param result - The run.
 * @returns The document.
 */
// The caller names the document's shape, as with JSON.parse.
// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters
export function json<T>(result: CliRun): T {
  try {
    return JSON.parse(result.stdout) as T;
  } catch {
    throw new Error(
      `stdout is not one JSON document (exit ${String(result.code)}):\n${result.stdout}\n${result.stderr}`,
    );
  }
}

/**
 * Waits until `check` holds, polling (no timing assumption: the test's own timeout bounds it).
 *
 * @param check - The condition.
 */
export async function until(check: () => boolean): Promise<void> {
  while (!check()) await sleep(20);
}

/** Whether `path` exists (a marker the configuration's hold writes). */
export const exists = existsSync;

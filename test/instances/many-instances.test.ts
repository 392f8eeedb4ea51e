/**
 * Three processes sharing one PostgreSQL journal, as a deployment runs them: two application
 * instances writing through their writers (one of them also ready to run the feeds) and one
 * worker running the drainer and the feeds. Direct edits land in the legacy table and in
 * Medplum, a unit moves stage, and the worker — the holder of the feed leases — is killed with
 * SIGKILL. Every change crosses once, the feeds resume on the application instance, and the
 * legacy feed is never polled by two processes at once.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import type { Patient } from '@medplum/fhirtypes';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CLINIC_TABLE_SQL, clinicPatientMapping } from '../../examples/clinic-mapping.ts';
import {
  CutoverPlan,
  DualWriter,
  PostgresStore,
  PostgresTableAdapter,
  createMedplumClient,
  sqlClientFromPg,
  type PostgresTableRow,
} from '../../src/index.ts';
import { startFhirTestServer, type FhirTestServer } from '../../src/testing/index.ts';
import { copiesByLegacyId, historyOf } from '../journal/workers/medplum-copies.ts';
import type { InstanceConfig } from './instance-process.ts';

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const INSTANCE = join(import.meta.dirname, 'instance-process.ts');

interface Poll {
  readonly instance: string;
  readonly feed: string;
  readonly at: number;
  readonly done: number;
}

/** A spawned instance and what it reported. */
class Instance {
  readonly id: string;
  readonly polls: Poll[] = [];
  readonly wrote: string[] = [];
  readonly ready: Promise<void>;
  readonly exited: Promise<number | null>;
  readonly #child: ChildProcessByStdio<Writable, Readable, Readable>;
  #stderr = '';

  constructor(config: InstanceConfig) {
    this.id = config.id;
    this.#child = spawn(process.execPath, [INSTANCE, JSON.stringify(config)], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.#child.stderr.on('data', (chunk: Buffer) => (this.#stderr += chunk.toString()));
    let markReady: () => void = () => undefined;
    this.ready = new Promise((resolve) => (markReady = resolve));
    createInterface({ input: this.#child.stdout }).on('line', (text) => {
      const line = JSON.parse(text) as {
        ready?: boolean;
        poll?: Omit<Poll, 'instance'>;
        wrote?: { legacyId: string };
        failed?: string;
      };
      if (line.ready === true) markReady();
      if (line.poll !== undefined) this.polls.push({ instance: this.id, ...line.poll });
      if (line.wrote !== undefined) this.wrote.push(line.wrote.legacyId);
      if (line.failed !== undefined) this.#stderr += `write failed: ${line.failed}\n`;
    });
    this.exited = new Promise((resolve) => this.#child.on('close', (code) => resolve(code)));
  }

  write(op: 'create' | 'update', row: PostgresTableRow, id?: string): void {
    this.#child.stdin.write(`${JSON.stringify({ write: { op, row, id } })}\n`);
  }

  kill(signal: NodeJS.Signals): void {
    this.#child.kill(signal);
  }

  get stderr(): string {
    return this.#stderr;
  }
}

describe('three instances over one PostgreSQL journal, with the feed holder killed', () => {
  const suffix = `${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const schema = `dw_instances_${suffix}`;
  const table = `dw_instances_patients_${suffix}`;
  const system = `https://instances.example.org/${suffix}/patient-id`;
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 6 });
  let server: FhirTestServer;
  let store: PostgresStore;
  let instances: Instance[] = [];
  let worker: Instance;
  let appA: Instance;
  let appB: Instance;
  let copies = new Map<string, Patient[]>();
  const histories = new Map<string, (string | undefined)[]>();
  let legacyRows = new Map<string, string>();
  let legacyVersions = new Map<string, number>();
  const ids = Array.from({ length: 20 }, (_, i) => String(i + 1));

  beforeAll(async () => {
    server = await startFhirTestServer({ seed: 7 });
    await pool.query(CLINIC_TABLE_SQL(table));
    const sql = sqlClientFromPg(pool);
    store = await PostgresStore.open({ sql, schema });
    const config = (id: string, roles: InstanceConfig['roles']): InstanceConfig => ({
      id,
      databaseUrl: DATABASE_URL,
      schema,
      table,
      baseUrl: server.baseUrl,
      identifierSystem: system,
      roles,
    });
    // The worker starts first and takes the feed leases.
    worker = new Instance(config('worker', { drainer: true, feeds: true }));
    await worker.ready;
    await vi.waitFor(() => expect(worker.polls.length).toBeGreaterThan(0), { timeout: 120_000 });
    appA = new Instance(config('app-a', { drainer: false, feeds: true }));
    appB = new Instance(config('app-b', { drainer: false, feeds: false }));
    instances = [worker, appA, appB];
    await Promise.all([appA.ready, appB.ready]);

    // Writes through both application instances.
    for (const id of ids) {
      const app = Number(id) <= 10 ? appA : appB;
      app.write('create', { id: Number(id), clinic: 'north', first_name: 'F', last_name: `Created${id}` });
    }
    await vi.waitFor(() => expect(appA.wrote.length + appB.wrote.length).toBe(20), { timeout: 120_000 });
    const plan = new CutoverPlan<{ clinic: string }>({ default: 'dual-write', unitOf: (ctx) => ctx.clinic });
    await plan.attach(store, { refreshMs: 60_000 });
    await plan.set('north', 'shadow', { by: 'test', force: true });
    plan.detach();
    // Direct legacy edits while the worker polls.
    for (const id of ids.slice(0, 5))
      await pool.query(
        `UPDATE ${table} SET last_name = $2, version = version + 1, updated_at = clock_timestamp() WHERE id = $1`,
        [Number(id), `Legacy${id}`],
      );
    // The Medplum edits below need the copies the worker creates.
    const medplum = createMedplumClient({ baseUrl: server.baseUrl });
    await vi.waitFor(
      async () => {
        const created = await copiesByLegacyId(medplum, system);
        for (const id of ids.slice(10, 13)) expect(created.get(id)).toHaveLength(1);
      },
      { timeout: 120_000, interval: 200 },
    );
    const seen = worker.polls.length;
    await vi.waitFor(
      () => expect(worker.polls.length, `app-a polled ${appA.polls.length} times`).toBeGreaterThan(seen + 2),
      { timeout: 120_000 },
    );
    worker.kill('SIGKILL');
    await worker.exited;
    // After the kill: direct edits on both sides, picked up by the feeds on app-a.
    for (const id of ids.slice(5, 10))
      await pool.query(
        `UPDATE ${table} SET last_name = $2, version = version + 1, updated_at = clock_timestamp() WHERE id = $1`,
        [Number(id), `Legacy${id}`],
      );
    for (const id of ids.slice(10, 13)) {
      const [copy] = (await copiesByLegacyId(medplum, system)).get(id) ?? [];
      await medplum.updateResource<Patient>({ ...copy!, name: [{ given: ['F'], family: `Medplum${id}` }] });
    }
    await vi.waitFor(() => expect(appA.polls.length).toBeGreaterThan(3), { timeout: 120_000 });

    // The worker is gone: a drainer here applies what the feeds journal until all is across.
    const drainer = new DualWriter<{ clinic: string }, PostgresTableRow>({
      legacy: new PostgresTableAdapter({ sql, tables: { Patient: { table } } }),
      medplum: createMedplumClient({ baseUrl: server.baseUrl }),
      mappings: [clinicPatientMapping(system)],
      plan: new CutoverPlan<{ clinic: string }>({ default: 'shadow', unitOf: (ctx) => ctx.clinic }),
      store,
      // Requests may take long on a loaded machine: a long lease (its request time limit is a
      // third of it) and a short backoff, so the drain does not wait minutes between attempts.
      drainer: { leaseMs: 30_000, backoff: { minMs: 50, maxMs: 1_000 } },
    });
    const expected = (id: string): string =>
      Number(id) <= 10 ? `Legacy${id}` : Number(id) <= 13 ? `Medplum${id}` : `Created${id}`;
    await vi.waitFor(
      async () => {
        await drainer.drain({ timeoutMs: 5_000 });
        const { rows } = await pool.query<{ id: number; last_name: string; version: number }>(
          `SELECT id, last_name, version FROM ${table}`,
        );
        legacyRows = new Map(rows.map((row) => [String(row.id), row.last_name]));
        legacyVersions = new Map(rows.map((row) => [String(row.id), row.version]));
        copies = await copiesByLegacyId(medplum, system);
        for (const id of ids) {
          expect(legacyRows.get(id)).toBe(expected(id));
          expect(copies.get(id)?.map((copy) => copy.name?.[0]?.family)).toEqual([expected(id)]);
        }
      },
      { timeout: 120_000, interval: 500 },
    );
    for (const [legacyId, [copy]] of copies)
      histories.set(
        legacyId,
        (await historyOf(medplum, copy?.id ?? '')).map((version) => version.name?.[0]?.family),
      );
  }, 420_000);

  afterAll(async () => {
    for (const instance of instances) instance.kill('SIGTERM');
    await Promise.allSettled(instances.map((instance) => instance.exited));
    await pool.query(`drop schema if exists ${schema} cascade`);
    await pool.query(`drop table if exists ${table}`);
    await pool.end();
    await server.close();
  });

  it('brings every change across once: one copy per record, no state written twice', () => {
    expect(copies.size).toBe(20);
    expect([...copies.values()].every((list) => list.length === 1)).toBe(true);
    // The legacy version counts every write to a row: its creation, then the one direct edit
    // (1–10) or the one mirror of the Medplum edit (11–13). A change mirrored twice, a replay
    // that wrote, or an echo sent back would each add a version.
    expect(ids.map((id) => [id, legacyVersions.get(id)])).toEqual(
      ids.map((id) => [id, Number(id) <= 13 ? 2 : 1]),
    );
    // Medplum's history holds each state once, in the order it was made: 11–13 were created,
    // then edited in Medplum itself; 14–20 created only. For 1–10, created and then edited in
    // legacy, the edit's version may be the only one: when the create's mirror ran after the
    // edit had been made (a slow worker, the kill), it carried the newest state, and the edit's
    // entry coalesced with it (promise 4: a newer state supersedes older pending ones). So 1–10
    // hold [Created, Legacy] or [Legacy], never a state twice.
    expect(ids.map((id) => [id, histories.get(id)])).toEqual(
      ids.map((id) => {
        const made = Number(id) <= 10 ? 'Legacy' : Number(id) <= 13 ? 'Medplum' : undefined;
        const history = histories.get(id) ?? [];
        if (made === undefined) return [id, [`Created${id}`]];
        if (made === 'Legacy' && history.length === 1) return [id, [`Legacy${id}`]];
        return [id, [`Created${id}`, `${made}${id}`]];
      }),
    );
  });

  it('resumes the feeds on another process after the holder is killed', () => {
    expect(worker.polls.length).toBeGreaterThan(0);
    expect(appA.polls.length).toBeGreaterThan(0);
    expect(appB.polls).toEqual([]);
    const lastByWorker = Math.max(...worker.polls.map((poll) => poll.at));
    expect(Math.min(...appA.polls.map((poll) => poll.at))).toBeGreaterThan(lastByWorker);
  });

  it('never has two processes poll the legacy feed at once', () => {
    const polls = instances
      .flatMap((instance) => instance.polls)
      .filter((poll) => poll.feed === 'legacy:Patient')
      .sort((a, b) => a.at - b.at);
    const overlapping = polls.filter(
      (poll, i) => i > 0 && poll.instance !== polls[i - 1]!.instance && poll.at < polls[i - 1]!.done,
    );
    expect(overlapping).toEqual([]);
    // One hand-over: worker, then app-a.
    const owners = polls
      .map((poll) => poll.instance)
      .filter((owner, i, all) => i === 0 || all[i - 1] !== owner);
    expect(owners).toEqual(['worker', 'app-a']);
    console.log(
      JSON.stringify({ legacyFeedPolls: Object.fromEntries(instances.map((i) => [i.id, i.polls.length])) }),
    );
  });
});

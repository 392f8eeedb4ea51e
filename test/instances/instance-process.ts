/**
 * One service instance of the many-instances test, run as `node instance-process.ts '<json>'`:
 * a DualWriter over the shared PostgreSQL journal, the legacy table and the FHIR test server,
 * started in the roles it is given (`drainer`, `feeds`), with the plan attached to the store.
 * An application instance also writes: it takes `write` commands on stdin, one JSON per line.
 *
 * Stdout carries one JSON object per line: `ready`, a `poll` for every legacy feed read
 * (`changesSince`) it makes, `wrote` for each write, and `stopped`.
 */
import { createInterface } from 'node:readline';
import pg from 'pg';
import { clinicPatientMapping } from '../../examples/clinic-mapping.ts';
import {
  CutoverPlan,
  DualWriter,
  PostgresStore,
  PostgresTableAdapter,
  createMedplumClient,
  sqlClientFromPg,
  type PostgresTableRow,
} from '../../src/index.ts';

/** What the parent tells an instance. */
export interface InstanceConfig {
  readonly id: string;
  readonly databaseUrl: string;
  readonly schema: string;
  readonly table: string;
  readonly baseUrl: string;
  readonly identifierSystem: string;
  readonly roles: { readonly drainer: boolean; readonly feeds: boolean };
}

/** A write the parent asks an application instance to make. */
export interface WriteCommand {
  readonly write: { readonly op: 'create' | 'update'; readonly row: PostgresTableRow; readonly id?: string };
}

function say(line: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

const config = JSON.parse(process.argv[2] ?? '') as InstanceConfig;
const pool = new pg.Pool({ connectionString: config.databaseUrl, max: 6 });
const sql = sqlClientFromPg(pool);
const store = await PostgresStore.open({ sql, schema: config.schema });
const adapter = new PostgresTableAdapter({ sql, tables: { Patient: { table: config.table } } });
const changesSince = adapter.changesSince.bind(adapter);
// Every read of the legacy feed is reported, so the parent can count polls per instance.
adapter.changesSince = async (resourceType, cursor, limit) => {
  const at = Date.now();
  const page = await changesSince(resourceType, cursor, limit);
  say({ poll: { feed: `legacy:${resourceType}`, at, done: Date.now(), changes: page.changes.length } });
  return page;
};
const plan = new CutoverPlan<{ clinic: string }>({ default: 'dual-write', unitOf: (ctx) => ctx.clinic });
await plan.attach(store, { refreshMs: 100 });
const writer = new DualWriter<{ clinic: string }, PostgresTableRow>({
  legacy: adapter,
  medplum: createMedplumClient({ baseUrl: config.baseUrl }),
  mappings: [clinicPatientMapping(config.identifierSystem)],
  plan,
  store,
  mirror: 'async',
  drainer: {
    workerId: config.id,
    // A request's limit is a third of the lease: 2 s, so a loaded machine's slow answers are
    // not abandoned (at a 2 s lease most requests timed out at load 20); the killed worker's
    // leases are free again 6 s after the kill.
    leaseMs: 6_000,
    pollIntervalMs: 20,
    maxAttempts: 60,
    backoff: { minMs: 20, maxMs: 500 },
  },
  feeds: {
    unitOf: (record) => (typeof record.row?.clinic === 'string' ? record.row.clinic : 'north'),
    pollIntervalMs: 50,
    // Renewed every second while the holder's pass runs: it keeps every feed it holds however
    // loaded the machine (a feed renewed only around its own read was taken over by app-a from
    // the live worker at load 18, during the Medplum feed's read); another instance takes over
    // within 3 s of the kill.
    leaseMs: 3_000,
    existenceCheckIntervalMs: 60_000,
  },
});

process.once('SIGTERM', () => {
  void (async () => {
    await writer.stop();
    plan.detach();
    say({ stopped: true });
    await store.close();
    await pool.end();
    process.exit(0);
  })();
});
createInterface({ input: process.stdin }).on('line', (text) => {
  const { write } = JSON.parse(text) as WriteCommand;
  void (async () => {
    const ctx = { clinic: typeof write.row.clinic === 'string' ? write.row.clinic : 'north' };
    const result =
      write.op === 'create'
        ? await writer.create('Patient', write.row, ctx)
        : await writer.update('Patient', write.id ?? '', write.row, ctx);
    say({ wrote: { legacyId: result.legacyId, op: write.op } });
  })().catch((err: unknown) => say({ failed: String(err) }));
});
writer.start(config.roles);
say({ ready: true });

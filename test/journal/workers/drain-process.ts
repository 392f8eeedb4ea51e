/**
 * A drain process of the two-workers test, run as `node drain-process.ts '<json config>'`: a
 * DualWriter over the shared PostgreSQL journal whose drainer runs (`writer.start()`) until
 * SIGTERM, then stops gracefully. It writes nothing itself.
 *
 * Stdout carries one JSON object per line: `ready`, a `lease` report for every lease it
 * finished (see {@link LeaseReport}), and `stopped`.
 */
import pg from 'pg';
import { clinicPatientMapping } from '../../../examples/clinic-mapping.ts';
import {
  CutoverPlan,
  DualWriter,
  PostgresStore,
  PostgresTableAdapter,
  createMedplumClient,
  sqlClientFromPg,
  type PostgresTableRow,
} from '../../../src/index.ts';
import { loggingLeases, type LeaseReport } from './lease-log.ts';

/** What the parent tells a drain process. */
export interface DrainProcessConfig {
  readonly workerId: string;
  readonly databaseUrl: string;
  readonly schema: string;
  readonly table: string;
  readonly baseUrl: string;
  readonly identifierSystem: string;
  /** The drainer's shape: how many entries it runs at once, claims at once, and holds for how long. */
  readonly drainer: { readonly concurrency: number; readonly batchSize: number; readonly leaseMs: number };
}

function say(line: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

const tally = new Map<string, number>();
const config = JSON.parse(process.argv[2] ?? '') as DrainProcessConfig;
// Named, so the test can terminate this process's backends while it drains.
const pool = new pg.Pool({ connectionString: config.databaseUrl, max: 6, application_name: config.schema });
const sql = sqlClientFromPg(pool);
const store = await PostgresStore.open({ sql, schema: config.schema });
const writer = new DualWriter<{ clinic: string }, PostgresTableRow>({
  legacy: new PostgresTableAdapter({ sql, tables: { Patient: { table: config.table } } }),
  medplum: createMedplumClient({ baseUrl: config.baseUrl }),
  mappings: [clinicPatientMapping(config.identifierSystem)],
  plan: new CutoverPlan<{ clinic: string }>({ default: 'dual-write', unitOf: (ctx) => ctx.clinic }),
  store: loggingLeases(store, config.workerId, (lease: LeaseReport) => say({ lease })),
  mirror: 'async',
  onEvent: (event) => {
    // A tally of what the drainer saw (retry reasons without values), printed when it stops.
    const key = event.type === 'retry' ? `retry ${event.side} ${event.error}` : event.type;
    tally.set(key, (tally.get(key) ?? 0) + 1);
  },
  drainer: {
    ...config.drainer,
    workerId: config.workerId,
    pollIntervalMs: 20,
    maxAttempts: 60,
    backoff: { minMs: 20, maxMs: 500 },
  },
});

process.once('SIGTERM', () => {
  void (async () => {
    await writer.stop();
    say({ stopped: true });
    process.stderr.write(`${config.workerId} events: ${JSON.stringify([...tally])}\n`);
    await store.close();
    await pool.end();
    // Idle keep-alive sockets to the FHIR server would hold the process a few seconds more.
    process.exit(0);
  })();
});
writer.start();
say({ ready: true });
setInterval(
  () => process.stderr.write(`${config.workerId} events: ${JSON.stringify([...tally])}\n`),
  10_000,
).unref();

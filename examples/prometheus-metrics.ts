/**
 * `node examples/prometheus-metrics.ts`: a writer's metrics on a Prometheus endpoint, through
 * the OpenTelemetry SDK (`@opentelemetry/sdk-metrics`) and its Prometheus exporter
 * (`@opentelemetry/exporter-prometheus`). The library itself depends on `@opentelemetry/api`
 * only; the application chooses the SDK and the exporter.
 *
 * Two instances share a journal, as a deployment would: an application instance that only
 * writes (`start({ drainer: false, feeds: false })`: its mirrors wait in the outbox) and a
 * worker that drains them. Clinic staff register patients in three clinics; the endpoint then
 * shows the backlog per clinic, and after the worker's drain, the mirrors, their lag, the
 * retries Medplum's overload caused. Scrape `http://127.0.0.1:<port>/metrics` (the port is
 * printed; `METRICS_PORT` chooses it).
 *
 * Embedded by default (PGlite and the library's HTTP FHIR test server); `DATABASE_URL` points
 * it at a PostgreSQL server.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import {
  CutoverPlan,
  DualWriter,
  PostgresStore,
  PostgresTableAdapter,
  createMedplumClient,
  type PostgresTableRow,
  type SqlClient,
} from '../src/index.ts';
import { CLINIC_TABLE_SQL, clinicPatientMapping } from './clinic-mapping.ts';

interface Ctx {
  readonly clinic: string;
}

/** Where the example runs. */
export interface MetricsExampleOptions {
  /** The clinic database, which also holds the journal. */
  readonly sql: SqlClient;
  /** The legacy table (created) and the journal's schema. */
  readonly table: string;
  readonly schema: string;
  /** The FHIR server. */
  readonly medplumBaseUrl: string;
  /** The port of the metrics endpoint (0: any free one). */
  readonly port: number;
}

/** The running example. */
export interface MetricsExample {
  /** The Prometheus endpoint. */
  readonly url: string;
  /** The application instance: writes only, its mirrors queue in the outbox. */
  readonly app: DualWriter<Ctx, PostgresTableRow>;
  /** The worker: drains what the application instance queued. */
  readonly worker: DualWriter<Ctx, PostgresTableRow>;
  close(): Promise<void>;
}

/**
 * Starts the metrics endpoint and the two instances, the application instance reporting through
 * the SDK.
 *
 * @param options - The database, table, schema, FHIR server and port.
 * @returns The endpoint's URL and the instances.
 */
export async function startMetricsExample(options: MetricsExampleOptions): Promise<MetricsExample> {
  // The exporter is a MetricReader: each scrape collects. Served by our own server, so the
  // port can be chosen (or left to the system) and known.
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const meterProvider = new MeterProvider({ readers: [exporter] });
  const server: Server = createServer((request, response) => {
    if (request.url === '/metrics') exporter.getMetricsRequestHandler(request, response);
    else response.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(options.port, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  await options.sql.query(CLINIC_TABLE_SQL(options.table));
  const writerOf = async (): Promise<DualWriter<Ctx, PostgresTableRow>> =>
    new DualWriter<Ctx, PostgresTableRow>({
      legacy: new PostgresTableAdapter({ sql: options.sql, tables: { Patient: { table: options.table } } }),
      medplum: createMedplumClient({ baseUrl: options.medplumBaseUrl }),
      mappings: [clinicPatientMapping('https://clinic.example.org/patient-id')],
      plan: new CutoverPlan<Ctx>({ default: 'dual-write', unitOf: (ctx) => ctx.clinic }),
      store: await PostgresStore.open({ sql: options.sql, schema: options.schema }),
      mirror: 'async',
      // The journal gauges read the outbox at most this often, whatever the scrape interval.
      telemetry: { meterProvider, journalReadIntervalMs: 1_000 },
    });
  const app = await writerOf();
  const worker = await writerOf();
  app.start({ drainer: false, feeds: false });
  return {
    url: `http://127.0.0.1:${String(port)}/metrics`,
    app,
    worker,
    close: async () => {
      await app.stop();
      await worker.stop();
      await meterProvider.shutdown();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Registers `count` patients at each clinic through the application instance. */
export async function registerPatients(
  app: DualWriter<Ctx, PostgresTableRow>,
  counts: Readonly<Record<string, number>>,
): Promise<void> {
  for (const [clinic, count] of Object.entries(counts)) {
    for (let i = 0; i < count; i += 1) {
      await app.create(
        'Patient',
        { clinic, first_name: `Patient ${String(i)}`, last_name: clinic },
        { clinic },
      );
    }
  }
}

async function main(): Promise<void> {
  const { openPostgres } = await import('./migration/legacy-postgres.ts');
  const { startFhirTestServer } = await import('../src/testing/index.ts');
  const db = await openPostgres(process.env.DATABASE_URL, 4);
  const fhir = await startFhirTestServer();
  const run = Math.random().toString(36).slice(2, 8);
  const example = await startMetricsExample({
    sql: db.sql,
    table: `metrics_example_${run}_patients`,
    schema: `metrics_example_${run}`,
    medplumBaseUrl: fhir.baseUrl,
    port: Number(process.env.METRICS_PORT ?? 9464),
  });
  console.log(`metrics on ${example.url} (${db.where})`);
  await registerPatients(example.app, { north: 5, east: 3, south: 2 });
  console.log('10 patients registered; their mirrors wait in the outbox: scrape now to see the backlog');
  fhir.faults.failNext(2, 503);
  await new Promise((resolve) => setTimeout(resolve, 5_000));
  await example.worker.drain();
  console.log('the worker drained the outbox (after two 503s): scrape again. Ctrl-C stops.');
  process.once('SIGINT', () => {
    void example
      .close()
      .then(() => fhir.close())
      .then(() => db.close());
  });
}

if (import.meta.main) await main();

/**
 * A writer process of the crash test, run as `node writer-process.ts '<json config>'`.
 *
 * - `write` mode: builds a DualWriter (mirror `async`, drainer running) over the run's journal
 *   and legacy table, then runs the plan's batches from `fromBatch` on, appending each finished
 *   batch's index to the progress file. The parent kills it with SIGKILL at random moments.
 * - `drain` mode: drains the outbox until nothing but dead letters is left (or time is up).
 *
 * Stdout carries one JSON object per line: `ready`; `start` and `batch` around each batch;
 * `replayed` for each write of a batch re-issued after a kill; the writer's `retry`, `drained`
 * and `dead-letter` events; and `done` with the outbox counts.
 */
import { appendFileSync } from 'node:fs';
import { setImmediate } from 'node:timers/promises';
import {
  CutoverPlan,
  DualWriter,
  PostgresTableAdapter,
  createMedplumClient,
  type DualWriteEvent,
  type PostgresTableRow,
} from '../../../src/index.ts';
import { openBackend, type CrashBackend } from './crash-backend.ts';
import { crashMapping, crashPlan, rowOf, type CrashPlanOptions, type PlannedWrite } from './crash-plan.ts';

/** What the parent tells a writer process. */
export interface WriterProcessConfig {
  readonly mode: 'write' | 'drain';
  readonly backend: CrashBackend;
  readonly baseUrl: string;
  readonly identifierSystem: string;
  readonly plan: CrashPlanOptions;
  /** For `write`: the first batch to run (the one a killed process was in is run again). */
  readonly fromBatch: number;
  readonly progressFile: string;
  /** For `drain`: how long to keep draining before giving up. */
  readonly drainTimeoutMs: number;
}

interface Ctx {
  readonly clinic: string;
}

function say(line: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

function eventLine(event: DualWriteEvent): Record<string, unknown> | undefined {
  switch (event.type) {
    case 'retry':
      return { event: 'retry', status: event.status ?? null, error: event.error };
    case 'dead-letter':
      return {
        event: 'dead-letter',
        legacyId: event.legacyId,
        status: event.status ?? null,
        error: event.error,
      };
    case 'drained':
      return { event: 'drained', outcome: event.outcome };
    default:
      return undefined;
  }
}

const config = JSON.parse(process.argv[2] ?? '') as WriterProcessConfig;
const backend = await openBackend(config.backend);
const legacy = new PostgresTableAdapter({ sql: backend.sql, tables: { Patient: { table: backend.table } } });
const writer = new DualWriter<Ctx, PostgresTableRow>({
  legacy,
  medplum: createMedplumClient({ baseUrl: config.baseUrl }),
  mappings: [crashMapping(config.identifierSystem)],
  plan: new CutoverPlan<Ctx>({ default: 'dual-write', unitOf: (ctx) => ctx.clinic }),
  store: backend.store,
  mirror: 'async',
  // A killed process's intents and leases block their records until they expire: keep both
  // short so the next process, and the final drain, get on with them.
  intentHoldMs: 3_000,
  retry: { retries: 3, minTimeoutMs: 10, maxTimeoutMs: 100 },
  drainer: {
    concurrency: 4,
    batchSize: 16,
    pollIntervalMs: 50,
    leaseMs: 5_000,
    // Transient faults must never exhaust an entry's attempts here: only the injected 400s
    // may end in the dead-letter queue.
    maxAttempts: 60,
    backoff: { minMs: 50, maxMs: 1_000 },
  },
  onEvent: (event) => {
    const line = eventLine(event);
    if (line !== undefined) say(line);
  },
});

async function write(op: PlannedWrite, replay: boolean): Promise<void> {
  const row = rowOf(op.id, op.version);
  const ctx = { clinic: String(row.clinic) };
  const result =
    op.kind === 'create'
      ? await writer.create('Patient', row, ctx)
      : await writer.update('Patient', String(op.id), row, ctx);
  if (replay) say({ replayed: op.kind, id: op.id, legacy: result.legacy.action });
}

if (config.mode === 'write') {
  const plan = crashPlan(config.plan);
  writer.start();
  say({ ready: true, fromBatch: config.fromBatch });
  for (let b = config.fromBatch; b < plan.batches.length; b++) {
    const batch = plan.batches[b] ?? [];
    say({ start: b });
    await Promise.all(batch.map((op) => write(op, b === config.fromBatch && b > 0)));
    appendFileSync(config.progressFile, `${b}\n`);
    say({ batch: b, writes: batch.length });
    // PGlite runs each query synchronously and settles it in a microtask, so a loop of writes
    // would never let the event loop turn: no timer would fire and no HTTP response would be
    // read (the drainer would stall) until the loop ends. Writes arriving as separate requests
    // yield between them; so does this loop.
    await setImmediate();
  }
  await writer.stop();
  say({ done: true, outbox: await writer.outbox() });
} else {
  say({ ready: true, drain: true });
  const deadline = Date.now() + config.drainTimeoutMs;
  let remaining = await writer.outbox();
  while (remaining.pending + remaining.leased > 0 && Date.now() < deadline) {
    remaining = (await writer.drain({ timeoutMs: Math.max(1, deadline - Date.now()) })).remaining;
  }
  say({ done: true, outbox: remaining });
}
await backend.close();

import type { BenchDatabase } from './bench-database.ts';
import { compared, type BenchRow, type Measurement } from './bench-row.ts';
import { directTrial, drainTrial, sumTrials, type DrainTrial, type ServerSource } from './drain-trial.ts';
import { FhirServerProcess } from './fhir-server-process.ts';
import { describeKinds } from './kind-tally.ts';

/** Sizes of the drain comparison. */
export interface DrainOptions {
  /** Pending creates per trial. */
  readonly entries: number;
  /** Drainer concurrency, and the direct writes' concurrency. */
  readonly concurrency: number;
  /** Timed trials of each side (run in ABBA order). */
  readonly trials: number;
  /** Entries of the untimed warm-up trial of each kind. */
  readonly warmupEntries: number;
  /** Latency the server adds to each request in the `drain-throughput-remote` trials. */
  readonly remoteLatencyMs: number;
}

/**
 * `writer.drain()` applying N pending creates (legacy authority, mirrored to the in-process
 * HTTP FHIR test server, drainer concurrency C) against the same resources written directly
 * with `medplumClient.createResource` at concurrency C. Every trial gets a fresh server, so
 * both sides write into a repository of the same size; the rows were written and journaled
 * beforehand (untimed) by `writer.create` in async mode.
 *
 * Two more direct trials price the requests a mirror of an unlinked record can send (a
 * conditional create; a search then a plain create): the ceiling they put on the drain,
 * whatever the journal costs.
 *
 * @param db - The run's database.
 * @param options - Sizes.
 * @returns `drain-throughput`, a per-entry profile of requests, round trips, time and CPU, and
 *   the statements and requests behind them.
 */
export async function measureDrain(db: BenchDatabase, options: DrainOptions): Promise<Measurement> {
  const { concurrency: c } = options;
  let nextId = 1;
  const ids = (n: number): number[] => Array.from({ length: n }, () => nextId++);

  // Warm-up: JIT, the FHIR router's definitions, pool connections, PostgreSQL's caches.
  await directTrial(ids(options.warmupEntries), c, 'plain');
  await drainTrial(db, ids(options.warmupEntries), c);
  await directTrial(ids(options.warmupEntries), c, 'conditional');
  await directTrial(ids(options.warmupEntries), c, 'search-then-create');

  const ours: DrainTrial[] = [];
  const direct: DrainTrial[] = [];
  for (let t = 0; t < options.trials; t++) {
    const order = t % 2 === 0 ? (['direct', 'ours'] as const) : (['ours', 'direct'] as const);
    for (const side of order) {
      if (side === 'direct') direct.push(await directTrial(ids(options.entries), c, 'plain'));
      else ours.push(await drainTrial(db, ids(options.entries), c));
    }
  }
  // The same comparison with a Medplum across a network: every request waits the latency.
  const remote = { ours: [] as DrainTrial[], direct: [] as DrainTrial[] };
  for (let t = 0; t < 2; t++) {
    const latency = options.remoteLatencyMs;
    if (t % 2 === 0) remote.direct.push(await directTrial(ids(options.entries), c, 'plain', latency));
    remote.ours.push(await drainTrial(db, ids(options.entries), c, latency));
    if (t % 2 === 1) remote.direct.push(await directTrial(ids(options.entries), c, 'plain', latency));
  }
  // The same comparison with the server in a process of its own, as Medplum always is.
  const apart = { ours: [] as DrainTrial[], direct: [] as DrainTrial[] };
  const child = await FhirServerProcess.start();
  try {
    const servers: ServerSource = (latency) => child.server(latency);
    await directTrial(ids(options.warmupEntries), c, 'plain', 0, servers);
    await drainTrial(db, ids(options.warmupEntries), c, 0, servers);
    for (let t = 0; t < options.trials; t++) {
      if (t % 2 === 0) apart.direct.push(await directTrial(ids(options.entries), c, 'plain', 0, servers));
      apart.ours.push(await drainTrial(db, ids(options.entries), c, 0, servers));
      if (t % 2 === 1) apart.direct.push(await directTrial(ids(options.entries), c, 'plain', 0, servers));
    }
  } finally {
    await child.stop();
  }
  const conditional = await directTrial(ids(options.entries), c, 'conditional');
  const searchThenCreate = await directTrial(ids(options.entries), c, 'search-then-create');
  const bundled = [];
  for (let t = 0; t < options.trials; t++)
    bundled.push(await directTrial(ids(options.entries), c, 'bundled'));

  const o = sumTrials(ours);
  const d = sumTrials(direct);
  const perEntry = (v: number, trial: DrainTrial = o): number => v / trial.entries;
  // Worker time: each of the C workers is busy (or waiting) for the whole drain.
  const workerMs = perEntry(o.busyMs * c);
  const directWorkerMs = perEntry(d.ms * c, d);
  const httpMs = perEntry(o.httpMs);
  const journalMs = perEntry(o.journal.ms + o.transactions.ms);
  const legacyMs = perEntry(o.legacy.ms);
  const rows: BenchRow[] = [
    compared('drain-throughput', 'entries/s', rate(o), rate(d), {
      target: { op: '>=', ratio: 0.9 },
      note: `writer.drain(), C=${c}, ${options.entries} entries × ${options.trials}, vs createResource at C=${c}`,
    }),
    compared(
      'drain-throughput-remote',
      'entries/s',
      rate(sumTrials(remote.ours)),
      rate(sumTrials(remote.direct)),
      {
        note: `the same with ${options.remoteLatencyMs} ms added to every request (a Medplum across a network), × 2`,
      },
    ),
    compared(
      'drain-throughput-server-apart',
      'entries/s',
      rate(sumTrials(apart.ours)),
      rate(sumTrials(apart.direct)),
      {
        note: `the same with the FHIR server in a process of its own, × ${String(options.trials)}`,
      },
    ),
    compared('drain-http-requests-per-entry', 'req', perEntry(o.httpRequests), perEntry(d.httpRequests, d)),
    compared('drain-http-ms-per-request', 'ms', o.httpMs / o.httpRequests, d.httpMs / d.httpRequests, {
      note: 'mean wait for a response',
    }),
    compared(
      'drain-sql-round-trips-per-entry',
      'per entry',
      perEntry(o.journal.roundTrips + o.legacy.roundTrips + o.transactions.roundTrips),
      0,
      {
        note: `journal ${perEntry(o.journal.roundTrips).toFixed(2)} + BEGIN/COMMIT ${perEntry(o.transactions.roundTrips).toFixed(2)} + legacy ${perEntry(o.legacy.roundTrips).toFixed(2)}`,
      },
    ),
    compared('drain-profile-worker-ms', 'ms/entry', workerMs, directWorkerMs, {
      note: 'wall time × C / entries; the waits below overlap (results are recorded while the next mirrors run)',
    }),
    { name: 'drain-profile-http-ms', value: httpMs, unit: 'ms/entry', note: 'waiting on Medplum' },
    {
      name: 'drain-profile-journal-ms',
      value: journalMs,
      unit: 'ms/entry',
      note: 'journal SQL (claim, getLink, complete) and BEGIN/COMMIT',
    },
    {
      name: 'drain-profile-legacy-ms',
      value: legacyMs,
      unit: 'ms/entry',
      note: 'legacy SQL: read the authority row',
    },
    {
      name: 'drain-tail-ms',
      value: (o.ms - o.busyMs) / ours.length,
      unit: 'ms',
      note: 'last entry applied → drain() returned',
    },
    compared('drain-cpu-node-ms-per-entry', 'ms', perEntry(o.cpu.processMs), perEntry(d.cpu.processMs, d), {
      note: 'CPU of this process (drainer, pg client, and the in-process FHIR server)',
    }),
    {
      name: 'drain-cpu-postgres-ms-per-entry',
      value: perEntry(o.cpu.postgresMs),
      unit: 'ms',
      note: "CPU of this pool's PostgreSQL backends",
    },
    compared('direct-conditional-create-throughput', 'creates/s', rate(conditional), rate(d), {
      note: `createResourceIfNoneExist at C=${c} vs createResource`,
    }),
    compared('direct-search-then-create-throughput', 'creates/s', rate(searchThenCreate), rate(d), {
      note: `search by identifier, then createResource, at C=${c}`,
    }),
    compared('drain-vs-direct-bundles', 'entries/s', rate(o), rate(sumTrials(bundled)), {
      note: `the drain against direct creates in batch Bundles of ${c} (as many writes in flight), × ${String(options.trials)}`,
    }),
  ];
  const cores = (t: DrainTrial, ms: number): string => (ms / t.cpu.wallMs).toFixed(2);
  const details = [
    `drain, ours: HTTP requests per entry (mean ms each): ${describeKinds(o.http, o.entries)}`,
    `drain, direct: ${describeKinds(d.http, d.entries)}; conditional: ${describeKinds(conditional.http, conditional.entries)}; ` +
      `search then create: ${describeKinds(searchThenCreate.http, searchThenCreate.entries)}`,
    `drain, ours: SQL statements per entry (mean ms each): ${describeKinds(o.sql, o.entries)}`,
    `drain, cores busy (of ${o.cpu.cores}): ours node ${cores(o, o.cpu.processMs)}, postgres ${cores(o, o.cpu.postgresMs)}, ` +
      `other ${cores(o, o.cpu.machineMs - o.cpu.processMs - o.cpu.postgresMs)}; ` +
      `direct node ${cores(d, d.cpu.processMs)}, other ${cores(d, d.cpu.machineMs - d.cpu.processMs)}`,
    `drain, event-loop delay (mean): ours ${o.cpu.loopDelayMeanMs.toFixed(1)} ms, direct ${d.cpu.loopDelayMeanMs.toFixed(1)} ms`,
  ];
  return { rows, details };
}

function rate(trial: DrainTrial): number {
  return trial.entries / (trial.ms / 1000);
}

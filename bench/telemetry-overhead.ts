import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { BatchSpanProcessor, InMemorySpanExporter, TracerProvider } from '@opentelemetry/sdk-trace';
import type { TelemetryOptions } from '../src/telemetry/telemetry-options.ts';
import type { BenchDatabase } from './bench-database.ts';
import { compared, type Measurement } from './bench-row.ts';
import { drainTrial, inProcess, sumTrials, type DrainTrial } from './drain-trial.ts';

/** Sizes of the telemetry comparison. */
export interface TelemetryOverheadOptions {
  /** Pending creates per trial. */
  readonly entries: number;
  /** Drainer concurrency. */
  readonly concurrency: number;
  /** Timed trials of each side (run in ABBA order). */
  readonly trials: number;
  /** Entries of the untimed warm-up trial of each side. */
  readonly warmupEntries: number;
  /** How often the metrics are collected while a trial runs (a scrape). */
  readonly collectEveryMs: number;
}

/** A reader collected on a timer, as a Prometheus scrape would collect it. */
class ScrapedReader extends MetricReader {
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

/** What a trial installs: nothing, the SDK's metrics, or its metrics and traces. */
type Installed = 'none' | 'metrics' | 'traces';

/**
 * Runs `run` with the OpenTelemetry SDK installed as an application installs it: a
 * MeterProvider collected every `collectEveryMs` (a scrape) and, for `traces`, a TracerProvider
 * batching every span and an AsyncLocalStorage context manager.
 */
async function withSdk<T>(
  installed: Exclude<Installed, 'none'>,
  collectEveryMs: number,
  run: (telemetry: TelemetryOptions) => Promise<T>,
): Promise<T> {
  const reader = new ScrapedReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  // Spans are batched to memory and dropped at each scrape: the export's own cost (a network
  // exporter's) is the exporter's, not the library's.
  const exporter = new InMemorySpanExporter();
  const tracerProvider =
    installed === 'traces'
      ? new TracerProvider({ spanProcessors: [new BatchSpanProcessor({ exporter })] })
      : undefined;
  if (tracerProvider !== undefined)
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  const scrape = setInterval(() => {
    void reader.collect();
    exporter.reset();
  }, collectEveryMs);
  try {
    // The journal gauges read the journal at most every journalReadIntervalMs (10 s by default),
    // however often the metrics are collected: the writer's default is what is measured.
    return await run({ meterProvider, tracerProvider });
  } finally {
    clearInterval(scrape);
    await meterProvider.shutdown();
    await tracerProvider?.shutdown();
    context.disable();
  }
}

/**
 * `writer.drain()` throughput with the OpenTelemetry SDK installed against the same drain
 * without an SDK (the API's no-ops, what an application that installs none gets), in the same
 * run, the three kinds of trial rotated: `telemetry-overhead` with the SDK's metrics (a
 * MeterProvider collected every `collectEveryMs`; the journal gauges read the journal at most
 * every 10 s, the writer's default `journalReadIntervalMs`),
 * `telemetry-overhead-traces` with its traces too (every span batched, a context manager).
 *
 * @param db - The run's database.
 * @param options - Sizes.
 * @returns The two rows: entries/s with the SDK, and the ratio to without.
 */
export async function measureTelemetryOverhead(
  db: BenchDatabase,
  options: TelemetryOverheadOptions,
): Promise<Measurement> {
  const { concurrency: c } = options;
  let nextId = 1_000_000;
  const ids = (n: number): number[] => Array.from({ length: n }, () => nextId++);
  const trial = (installed: Installed, n: number): Promise<DrainTrial> =>
    installed === 'none'
      ? drainTrial(db, ids(n), c)
      : withSdk(installed, options.collectEveryMs, (telemetry) =>
          drainTrial(db, ids(n), c, 0, inProcess, telemetry),
        );
  const kinds: readonly Installed[] = ['none', 'metrics', 'traces'];
  for (const installed of kinds) await trial(installed, options.warmupEntries);
  const trials = new Map<Installed, DrainTrial[]>(kinds.map((kind) => [kind, []]));
  for (let t = 0; t < options.trials; t++) {
    // Rotated, so that no kind always runs first or last in a round.
    for (let k = 0; k < kinds.length; k++) {
      const installed = kinds[(t + k) % kinds.length]!;
      trials.get(installed)!.push(await trial(installed, options.entries));
    }
  }
  const rate = (installed: Installed): number => {
    const sum = sumTrials(trials.get(installed)!);
    return sum.entries / (sum.ms / 1000);
  };
  const sizes = `C=${String(c)}, ${String(options.entries)} entries × ${String(options.trials)}`;
  return {
    rows: [
      compared('telemetry-overhead', 'entries/s', rate('metrics'), rate('none'), {
        note: `writer.drain() with the OpenTelemetry SDK's metrics (collected every ${String(options.collectEveryMs)} ms) vs without an SDK, ${sizes}`,
      }),
      compared('telemetry-overhead-traces', 'entries/s', rate('traces'), rate('none'), {
        note: `the same with the SDK's traces too (every span batched, AsyncLocalStorage context), ${sizes}`,
      }),
    ],
    details: [],
  };
}

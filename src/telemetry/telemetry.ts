import type { Meter, Tracer } from '@opentelemetry/api';
import type { EventSink } from '../events/event-sink.ts';
import type { SyncStore } from '../journal/sync-store.ts';
import { EventMetrics } from './event-metrics.ts';
import { JournalGauges } from './journal-gauges.ts';
import { openTelemetryApi } from './otel-api.ts';
import type { TelemetryOptions } from './telemetry-options.ts';
import { WriteTracing } from './write-tracing.ts';

/** The instrumentation scope: what the metrics and spans say they come from. */
export const INSTRUMENTATION_SCOPE = 'medplum-dualwrite';

/**
 * A writer's OpenTelemetry instruments: the event-derived counters and histograms (a sink on the
 * writer's events) and the journal gauges (registered while the writer runs). `undefined` from
 * {@link telemetryOf} when telemetry is off or `@opentelemetry/api` is not installed.
 *
 * @example
 * ```ts
 * const telemetry = telemetryOf(options.telemetry, store);
 * const sinks = [...userSinks, ...(telemetry === undefined ? [] : [telemetry.sink])];
 * ```
 */
export interface Telemetry {
  /** Records each event in the counters and histograms. */
  readonly sink: EventSink;
  /** The outbox, job and feed gauges. */
  readonly gauges: JournalGauges;
  /** The write and mirror spans. */
  readonly tracing: WriteTracing;
}

/**
 * The telemetry a writer's options ask for.
 *
 * @param options - The writer's `telemetry` option, checked.
 * @param store - The journal the gauges read.
 * @returns The instruments, or `undefined` when off or without the API.
 * @example
 * ```ts
 * const telemetry = telemetryOf({ meterProvider }, store);
 * ```
 */
export function telemetryOf(options: TelemetryOptions | false, store: SyncStore): Telemetry | undefined {
  const api = openTelemetryApi();
  if (options === false || api === undefined) return undefined;
  const meter = (options.meterProvider?.getMeter(INSTRUMENTATION_SCOPE) ??
    api.metrics.getMeter(INSTRUMENTATION_SCOPE)) as Meter;
  const tracer = (options.tracerProvider?.getTracer(INSTRUMENTATION_SCOPE) ??
    api.trace.getTracer(INSTRUMENTATION_SCOPE)) as Tracer;
  const metrics = new EventMetrics(meter);
  return {
    tracing: new WriteTracing(api, tracer),
    sink: metrics.sink,
    gauges: new JournalGauges(meter, store, options.journalReadIntervalMs ?? 10_000, metrics.feedsReadAt),
  };
}

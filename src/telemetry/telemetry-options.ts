import { ConfigurationError } from '../errors.ts';
import { checkOptions, nonNegativeMs, type Rule } from '../option-checks.ts';

/**
 * Where a writer gets its meter: an OpenTelemetry `MeterProvider` (the SDK's, or any object
 * with its `getMeter`). Typed structurally so the library does not depend on the SDK.
 *
 * @example
 * ```ts
 * import { MeterProvider } from '@opentelemetry/sdk-metrics';
 * const meterProvider: MeterProviderLike = new MeterProvider({ readers: [exporter] });
 * ```
 */
export interface MeterProviderLike {
  getMeter(name: string, version?: string): unknown;
}

/**
 * Where a writer gets its tracer: an OpenTelemetry `TracerProvider` (the SDK's, or any object
 * with its `getTracer`).
 *
 * @example
 * ```ts
 * import { BasicTracerProvider } from '@opentelemetry/sdk-trace';
 * const tracerProvider: TracerProviderLike = new BasicTracerProvider({ spanProcessors: [processor] });
 * ```
 */
export interface TracerProviderLike {
  getTracer(name: string, version?: string): unknown;
}

/**
 * Metrics and traces through OpenTelemetry (`@opentelemetry/api`, an optional peer
 * dependency). Without the API installed, or without an SDK registered, nothing is recorded
 * and nothing costs more than a no-op call. Attributes carry units, resource types, stages,
 * sides, outcomes, status codes and error classes, never ids or values.
 *
 * @example
 * ```ts
 * new DualWriter({ ...options, telemetry: { meterProvider, tracerProvider, journalReadIntervalMs: 30_000 } });
 * ```
 */
export interface TelemetryOptions {
  /**
   * The meter provider to record metrics with.
   * @default the global one (`metrics.getMeterProvider()`): what an SDK registers, else a no-op
   */
  readonly meterProvider?: MeterProviderLike | undefined;
  /**
   * The tracer provider to record spans with.
   * @default the global one (`trace.getTracerProvider()`): what an SDK registers, else a no-op
   */
  readonly tracerProvider?: TracerProviderLike | undefined;
  /**
   * The shortest time between two reads of the journal for the gauges (outbox depth and age,
   * job progress): collections in between report the last figures read; 0 reads at every collection.
   * @default 10000
   */
  readonly journalReadIntervalMs?: number | undefined;
}

const provider = (method: string): Rule<Record<string, unknown>> => ({
  test: (value): value is Record<string, unknown> =>
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Record<string, unknown>)[method] === 'function',
  problem: `must be an object with a ${method}(name, version) method`,
});

/**
 * Checks the writer's `telemetry` option: `false`, or {@link TelemetryOptions}.
 *
 * @param value - What the caller passed.
 * @returns The options, or `false` when telemetry is off.
 * @throws {@link ConfigurationError} naming `telemetry` or the option at fault.
 * @example
 * ```ts
 * const telemetry = telemetryOptionsOf(options.telemetry);
 * ```
 */
export function telemetryOptionsOf(value: unknown): TelemetryOptions | false {
  if (value === false) return false;
  if (value === true) throw new ConfigurationError('telemetry', value, 'must be false or an object');
  return checkOptions(
    value,
    'telemetry',
    'configuration',
    {
      meterProvider: provider('getMeter'),
      tracerProvider: provider('getTracer'),
      journalReadIntervalMs: nonNegativeMs,
    },
    'telemetry.',
  );
}

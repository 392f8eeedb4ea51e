import type { Attributes } from '@opentelemetry/api';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';

/** One data point as a test reads it: a sum or gauge's value, a histogram's count and sum. */
export interface Point {
  readonly name: string;
  readonly attributes: Attributes;
  readonly value: number;
  readonly count?: number;
}

/** A reader that collects when asked, as a Prometheus scrape would. */
class OnDemandReader extends MetricReader {
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * The SDK's MeterProvider with a reader collected on demand.
 *
 * @example
 * ```ts
 * const metrics = new MetricCollector();
 * new DualWriter({ ...options, telemetry: { meterProvider: metrics.provider } });
 * const points = await metrics.collect();
 * ```
 */
export class MetricCollector {
  readonly #reader = new OnDemandReader();
  readonly provider = new MeterProvider({ readers: [this.#reader] });

  /** Every data point now. */
  async collect(): Promise<Point[]> {
    const { resourceMetrics, errors } = await this.#reader.collect();
    if (errors.length > 0) throw new Error(`collection failed: ${String(errors[0])}`);
    const points: Point[] = [];
    for (const scope of resourceMetrics.scopeMetrics) {
      for (const metric of scope.metrics) {
        for (const point of metric.dataPoints) {
          const value = point.value as number | { count: number; sum?: number };
          points.push(
            typeof value === 'number'
              ? { name: metric.descriptor.name, attributes: point.attributes, value }
              : {
                  name: metric.descriptor.name,
                  attributes: point.attributes,
                  value: value.sum ?? 0,
                  count: value.count,
                },
          );
        }
      }
    }
    return points;
  }

  /** The sum of the values (or histogram counts) of `name`'s points matching `attributes`. */
  async total(name: string, attributes: Attributes = {}): Promise<number> {
    return sumOf(await this.collect(), name, attributes);
  }

  async shutdown(): Promise<void> {
    await this.provider.shutdown();
  }
}

/** The sum of the values (or histogram counts) of `name`'s points matching `attributes`. */
export function sumOf(points: readonly Point[], name: string, attributes: Attributes = {}): number {
  return points
    .filter((p) => p.name === name)
    .filter((p) => Object.entries(attributes).every(([key, value]) => p.attributes[key] === value))
    .reduce((total, p) => total + (p.count ?? p.value), 0);
}

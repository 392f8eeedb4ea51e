import { createRequire } from 'node:module';
import type * as OtelApi from '@opentelemetry/api';

/** The parts of `@opentelemetry/api` the library uses. */
export type OpenTelemetryApi = Pick<
  typeof OtelApi,
  'metrics' | 'trace' | 'context' | 'SpanKind' | 'SpanStatusCode'
>;

let loaded: OpenTelemetryApi | null | undefined;

/**
 * `@opentelemetry/api` when the application has it installed, else `undefined` (the library then
 * records nothing). An optional peer dependency: loaded on first use, never at import, so the
 * package imports without it. Whichever copy is found, the providers an SDK registers are shared
 * through the API's global registry.
 *
 * @returns The API, or `undefined`.
 * @example
 * ```ts
 * const api = openTelemetryApi();
 * const meter = api?.metrics.getMeter('medplum-dualwrite');
 * ```
 */
export function openTelemetryApi(): OpenTelemetryApi | undefined {
  if (loaded === undefined) {
    try {
      loaded = createRequire(import.meta.url)('@opentelemetry/api') as OpenTelemetryApi;
    } catch {
      loaded = null;
    }
  }
  return loaded ?? undefined;
}

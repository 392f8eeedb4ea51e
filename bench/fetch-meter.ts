import { performance } from 'node:perf_hooks';
import type { FetchLike } from '@medplum/core';
import { addKind, type KindTally } from './kind-tally.ts';

/**
 * A `fetch` that counts requests and sums their time (request sent to response headers and
 * body handed back), to tell how much of a mirror's time is spent waiting on Medplum.
 *
 * @example
 * ```ts
 * const http = new FetchMeter();
 * const medplum = createMedplumClient({ baseUrl, fetch: http.fetch });
 * ```
 */
export class FetchMeter {
  requests = 0;
  ms = 0;
  /** Requests and their time by method and status, e.g. `POST 201` (`POST if-none-exist 201` when conditional). */
  readonly byKind: KindTally = new Map();
  readonly fetch: FetchLike;

  /** @param inner - The fetch to meter. */
  constructor(inner: FetchLike = globalThis.fetch.bind(globalThis)) {
    this.fetch = async (url: string, options?: { method?: string; headers?: unknown }): Promise<unknown> => {
      this.requests += 1;
      const started = performance.now();
      const conditional = hasHeader(options?.headers, 'if-none-exist') ? ' if-none-exist' : '';
      let status = 'no response';
      try {
        const response: unknown = await inner(url, options);
        if (response instanceof Response) status = String(response.status);
        return response;
      } finally {
        const elapsed = performance.now() - started;
        this.ms += elapsed;
        addKind(this.byKind, `${options?.method ?? 'GET'}${conditional} ${status}`, 1, elapsed);
      }
    };
  }

  /** Starts counting from zero. */
  reset(): void {
    this.requests = 0;
    this.ms = 0;
    this.byKind.clear();
  }
}

function hasHeader(headers: unknown, name: string): boolean {
  if (headers instanceof Headers) return headers.has(name);
  if (typeof headers !== 'object' || headers === null) return false;
  return Object.keys(headers).some((key) => key.toLowerCase() === name);
}

import { AsyncLocalStorage } from 'node:async_hooks';
import { MedplumClient, type FetchLike, type MedplumClientOptions } from '@medplum/core';

/**
 * What the last HTTP exchange of one library call looked like. `MedplumClient` turns every
 * error into an `OperationOutcomeError` without the HTTP status (an HTML 502 from a proxy
 * reads as a 400), so the library records the real status and headers itself.
 */
export interface HttpExchange {
  /** The HTTP status of the last response, or `undefined` when no response arrived. */
  status: number | undefined;
  /** The headers of the last response. */
  headers: Headers | undefined;
  /** Whether the last request failed without a response (connection refused, reset, timeout). */
  networkError: boolean;
}

const exchanges = new AsyncLocalStorage<HttpExchange>();
const capturing = new WeakSet<FetchLike>();

/**
 * Wraps a `fetch` so the library can see the real HTTP status and headers of each request it
 * makes through `MedplumClient`. Pass the result as the client's `fetch` option, or use
 * {@link createMedplumClient} which does it for you. Requests made outside the library pass
 * through untouched.
 *
 * @param fetchFn - The fetch to wrap.
 * @default globalThis.fetch
 * @returns A fetch with the same behaviour that records status and headers.
 * @example
 * ```ts
 * const medplum = new MedplumClient({
 *   baseUrl: 'https://api.example.org/',
 *   fetch: captureHttpStatus(globalThis.fetch.bind(globalThis)),
 *   maxRetries: 0,
 * });
 * ```
 */
export function captureHttpStatus(fetchFn: FetchLike = globalThis.fetch.bind(globalThis)): FetchLike {
  const wrapped: FetchLike = async (url: string, options?: unknown): Promise<unknown> => {
    const exchange = exchanges.getStore();
    if (exchange === undefined) return fetchFn(url, options);
    exchange.status = undefined;
    exchange.headers = undefined;
    exchange.networkError = false;
    let response: unknown;
    try {
      response = await fetchFn(url, options);
    } catch (err) {
      exchange.networkError = true;
      throw err;
    }
    if (response instanceof Response) {
      exchange.status = response.status;
      exchange.headers = response.headers;
    }
    return response;
  };
  capturing.add(wrapped);
  return wrapped;
}

/**
 * Builds a `MedplumClient` configured the way the library needs it: its own retries off
 * (`maxRetries: 0`; the library owns retries, and the client would otherwise retry POSTs on
 * its own) and HTTP statuses captured. All other options pass through.
 *
 * @param options - Ordinary `MedplumClient` options.
 * @returns A real `MedplumClient`; log in with it as usual.
 * @example
 * ```ts
 * const medplum = createMedplumClient({ baseUrl: 'https://api.example.org/' });
 * await medplum.startClientLogin(clientId, clientSecret);
 * ```
 */
export function createMedplumClient(options: MedplumClientOptions = {}): MedplumClient {
  const fetchFn = options.fetch ?? globalThis.fetch.bind(globalThis);
  return new MedplumClient({
    ...options,
    maxRetries: 0,
    fetch: capturing.has(fetchFn) ? fetchFn : captureHttpStatus(fetchFn),
  });
}

/**
 * Runs `fn` with a fresh exchange record that the wrapped fetch fills in.
 *
 * @param fn - The request(s) to make.
 * @returns The exchange record and the result or error of `fn`.
 */
export async function withHttpExchange<T>(
  fn: () => Promise<T>,
): Promise<{ exchange: HttpExchange } & ({ ok: true; value: T } | { ok: false; error: unknown })> {
  const exchange: HttpExchange = { status: undefined, headers: undefined, networkError: false };
  try {
    const value = await exchanges.run(exchange, fn);
    return { exchange, ok: true, value };
  } catch (error) {
    return { exchange, ok: false, error };
  }
}

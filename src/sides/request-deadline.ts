import { DualWriteError, RequestTimeoutError, type ErrorDetails } from '../errors.ts';
import { currentRequestScope } from './request-scope.ts';

/**
 * How long a request to either side may go unanswered when no `requestTimeoutMs` is given
 * (and the drainer's lease leaves room for it: see {@link requestTimeoutOf}).
 */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

/**
 * The signal one request carries: aborted when its time limit runs out, or when the work it
 * belongs to must stop writing (the scope's signal: a mirror's lease lapsed).
 *
 * @param timeoutMs - The request's time limit.
 * @returns The signal to pass with the request.
 * @example
 * ```ts
 * const signal = requestSignal(10_000);
 * await client.readResource('Patient', id, { signal });
 * ```
 */
export function requestSignal(timeoutMs: number): AbortSignal {
  const timeout = AbortSignal.timeout(Math.ceil(timeoutMs));
  const scope = currentRequestScope();
  return scope === undefined ? timeout : AbortSignal.any([scope.signal, timeout]);
}

/**
 * The typed error of a request whose signal aborted: the scope's own (a lost lease), else a
 * {@link RequestTimeoutError}; `undefined` when the signal did not abort (the request failed
 * on its own).
 *
 * @param signal - The request's signal, from {@link requestSignal}.
 * @param timeoutMs - Its time limit.
 * @param write - Whether the request was a write (its outcome is then unknown).
 * @param details - The record and side concerned.
 * @returns The error to throw, if the signal aborted.
 * @example
 * ```ts
 * throw abortedRequestError(signal, 10_000, false, details) ?? classify(err);
 * ```
 */
export function abortedRequestError(
  signal: AbortSignal,
  timeoutMs: number,
  write: boolean,
  details: ErrorDetails,
): DualWriteError | undefined {
  if (!signal.aborted) return undefined;
  const reason: unknown = signal.reason;
  if (reason instanceof DualWriteError) return reason;
  return new RequestTimeoutError(timeoutMs, write, details);
}

/**
 * Waits for a call that may not honour its signal: rejects with the typed error as soon as the
 * signal aborts, whatever the call does after (its late answer is ignored).
 *
 * @param call - The call, already started with `signal`.
 * @param signal - Its signal, from {@link requestSignal}.
 * @param timeoutMs - Its time limit.
 * @param write - Whether the call is a write.
 * @param details - The record and side concerned.
 * @returns What the call returned, if it answered in time.
 * @example
 * ```ts
 * const record = await untilAborted(adapter.read(type, id, { signal }), signal, 10_000, false, details);
 * ```
 */
export function untilAborted<T>(
  call: Promise<T>,
  signal: AbortSignal,
  timeoutMs: number,
  write: boolean,
  details: ErrorDetails,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void =>
      reject(
        abortedRequestError(signal, timeoutMs, write, details) ??
          new RequestTimeoutError(timeoutMs, write, details),
      );
    signal.addEventListener('abort', onAbort, { once: true });
    call.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

import { DualWriteError, OutcomeUnknownError, type ErrorDetails } from '../errors.ts';
import { classifyLegacyError } from './legacy-failure.ts';

/*
 * Whether a failed write may have landed. A write request that was never sent, or that the
 * side refused, wrote nothing; one whose answer was lost may have written everything. The
 * library says which (`UnavailableError` versus `OutcomeUnknownError`), so a caller knows
 * whether "failed" means "not written".
 */

/** Codes that mean the request never reached the side, or was rolled back there. */
const NOT_SENT = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  // SQLSTATE: cannot connect (08001, 08004), cannot connect now (57P03), too many connections
  // (53300); a serialisation failure or deadlock (40001, 40P01) rolled the transaction back.
  '08001',
  '08004',
  '57P03',
  '53300',
  '40001',
  '40P01',
]);

/** Codes that mean the connection was lost while the request was in flight. */
const LOST = new Set([
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  // SQLSTATE: the backend was terminated (57P01, 57P02), the connection failed or its
  // transaction's resolution is unknown (08000, 08003, 08006, 08007).
  '57P01',
  '57P02',
  '08000',
  '08003',
  '08006',
  '08007',
]);

/** How drivers word a connection lost mid-request when they give no code (`pg` among them). */
const LOST_MESSAGE =
  /connection terminated|terminating connection|server closed the connection|socket hang up|other side closed/i;

/**
 * Whether a write that failed with `error` may have landed: its request may have reached the
 * side and been processed although no answer said so.
 *
 * - A refusal (an error that is not `retryable`: a 4xx, a conflict, a mapping error) wrote
 *   nothing.
 * - A connection lost in flight (ECONNRESET, a backend terminated: 57P01, 08006…) may have.
 * - A request never sent (ECONNREFUSED, DNS) or rolled back (40001, 40P01) wrote nothing; so did
 *   a transient error a legacy adapter marked `retryable: true` (the contract: only for failures
 *   that wrote nothing).
 * - An HTTP answer: 408, 429 and 503 wrote nothing; 500, 502 and 504 (a gateway that lost the
 *   server's answer) and an unreadable success may have.
 * - No answer at all, for no known reason (a timeout): may have.
 *
 * @param error - What the write threw, typed or raw.
 * @param raw - What the request threw before it was typed, when `error` is the typed error.
 * @returns `true` when the write may have landed.
 * @example
 * ```ts
 * mayHaveLanded(new UnavailableError('answered 503', { status: 503 })); // false
 * ```
 */
export function mayHaveLanded(error: unknown, raw?: unknown): boolean {
  if (error instanceof OutcomeUnknownError) return true;
  // The raw error too: typing keeps a value-free copy of it as `cause`, without its flags.
  const typed = traceOf(error);
  const given = raw === undefined ? typed : traceOf(raw);
  const codes = [...typed.codes, ...given.codes];
  const messages = [...typed.messages, ...given.messages];
  const promisedNotWritten = typed.promisedNotWritten || given.promisedNotWritten;
  if (codes.some((code) => LOST.has(code)) || messages.some((message) => LOST_MESSAGE.test(message)))
    return true;
  if (error instanceof DualWriteError && !error.retryable) return false;
  if (codes.some((code) => NOT_SENT.has(code)) || promisedNotWritten) return false;
  const status = error instanceof DualWriteError ? error.status : undefined;
  if (status === undefined) return true;
  return status < 300 || status === 500 || status === 502 || status === 504;
}

/**
 * Whether an error says the connection was lost while a request was in flight (ECONNRESET, a
 * backend terminated: 57P01, 08006, `Connection terminated`…): whatever the request was, a
 * transaction's COMMIT included, it may have been carried out.
 *
 * @param error - What was thrown, typed or raw.
 * @returns `true` when the connection was lost in flight.
 * @example
 * ```ts
 * lostInFlight(Object.assign(new Error('terminating connection'), { code: '57P01' })); // true
 * ```
 */
export function lostInFlight(error: unknown): boolean {
  const { codes, messages } = traceOf(error);
  return codes.some((code) => LOST.has(code)) || messages.some((message) => LOST_MESSAGE.test(message));
}

/**
 * The error a failed write request should throw: an {@link OutcomeUnknownError} when it may
 * have landed ({@link mayHaveLanded}), else the typed error as it was.
 *
 * @param error - The typed error.
 * @param raw - What the request threw, before it was typed (its codes and flags decide too).
 * @returns The error to throw.
 * @example
 * ```ts
 * throw unknownIfLanded(classifyLegacyError(err, details), err);
 * ```
 */
export function unknownIfLanded(error: DualWriteError, raw?: unknown): DualWriteError {
  if (error instanceof OutcomeUnknownError || !mayHaveLanded(error, raw)) return error;
  const where = error.side === 'medplum' ? 'Medplum' : 'the legacy system';
  return new OutcomeUnknownError(
    `the write to ${where} may have landed; its answer was lost: ${error.message}`,
    {
      side: error.side,
      resourceType: error.resourceType,
      legacyId: error.legacyId,
      medplumId: error.medplumId,
      status: error.status,
      attempts: error.attempts,
      cause: error,
    },
  );
}

/**
 * Runs one write call to the legacy adapter (a create, an update, a delete): what it throws is
 * typed as {@link callLegacy} types it, except a failure that may have landed, which is an
 * {@link OutcomeUnknownError}.
 *
 * @param fn - The call.
 * @param details - The record concerned.
 * @returns What the call returned.
 * @throws The typed error.
 * @example
 * ```ts
 * const record = await writeLegacy(() => legacy.create('Patient', row), { resourceType: 'Patient', legacyId: 'p-1' });
 * ```
 */
export async function writeLegacy<T>(fn: () => Promise<T>, details: ErrorDetails): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw unknownIfLanded(classifyLegacyError(err, details), err);
  }
}

/** The codes and messages along an error's `cause` chain, and whether an adapter vouched it wrote nothing. */
function traceOf(error: unknown): { codes: string[]; messages: string[]; promisedNotWritten: boolean } {
  const codes: string[] = [];
  const messages: string[] = [];
  let promisedNotWritten = false;
  let current: unknown = error;
  for (let depth = 0; depth < 8 && typeof current === 'object' && current !== null; depth += 1) {
    const { code, message, retryable } = current as {
      code?: unknown;
      message?: unknown;
      retryable?: unknown;
    };
    if (typeof code === 'string') codes.push(code);
    if (typeof message === 'string') messages.push(message);
    // A raw error an adapter marked transient; the library's own errors carry `retryable` too,
    // and say nothing about whether a write landed.
    if (retryable === true && !(current instanceof DualWriteError)) promisedNotWritten = true;
    current = (current as { cause?: unknown }).cause;
  }
  return { codes, messages, promisedNotWritten };
}

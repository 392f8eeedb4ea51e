import { getStatus, isOperationOutcome, OperationOutcomeError } from '@medplum/core';
import type { OperationOutcome } from '@medplum/fhirtypes';
import {
  ConflictError,
  DualWriteError,
  RejectedError,
  UnavailableError,
  type ErrorDetails,
} from '../errors.ts';
import { valueFreeError, withoutValues } from '../error-values.ts';
import type { HttpExchange } from './http-capture.ts';
import { rateLimitDelayMs } from './rate-limit.ts';

/**
 * The PostgreSQL serialisation-failure code a real Medplum server returns (as a 409) when
 * concurrent conditional writes collide. Measured on Medplum 5.0.10: 4% of conditional creates
 * at concurrency 2, 31% at 8. It is transient and must be retried, never read as a conflict.
 */
const SERIALIZATION_FAILURE = '40001';

/**
 * Turns whatever a `MedplumClient` call threw into the library's typed error, using the real
 * HTTP status captured by the fetch wrapper when there is one.
 *
 * | status | error |
 * |---|---|
 * | no response, 408, 429, 5xx, 409 with details code 40001 | {@link UnavailableError} (retried) |
 * | 409 otherwise, 412 | {@link ConflictError} |
 * | other 4xx (404 and 410 included) | {@link RejectedError} |
 *
 * @param error - What the client threw.
 * @param exchange - The captured HTTP exchange.
 * @param details - The record concerned.
 * @returns A typed error.
 */
export function classifyMedplumError(
  error: unknown,
  exchange: HttpExchange,
  details: ErrorDetails,
): DualWriteError {
  if (error instanceof DualWriteError) return error;
  const outcome = outcomeOf(error);
  const status = exchange.status ?? (outcome === undefined ? undefined : getStatus(outcome));
  // An OperationOutcome's diagnostics may quote what was sent (a real server's validation
  // messages can): the message gets them without quoted values, and the cause is a value-free
  // copy. A network error carries no values and keeps its chain (its codes tell whether a
  // write may have landed).
  const base = { ...details, status, cause: outcome === undefined ? error : valueFreeError(error) };
  const what = `Medplum ${details.resourceType ?? ''} request`.replace('  ', ' ');
  if (exchange.networkError || status === undefined) {
    return new UnavailableError(
      `${what} failed without a response: ${withoutValues(messageOf(error))}`,
      base,
    );
  }
  if (
    status === 408 ||
    status === 429 ||
    status >= 500 ||
    (status === 409 && detailsCode(outcome) === SERIALIZATION_FAILURE)
  ) {
    return new UnavailableError(
      `${what} answered ${status}: ${diagnostics(outcome, error)}`,
      base,
      rateLimitDelayMs(exchange.headers),
    );
  }
  if (status === 409 || status === 412) {
    return new ConflictError(
      `${what} answered ${status}: ${diagnostics(outcome, error)}`,
      undefined,
      undefined,
      base,
    );
  }
  return new RejectedError(
    `${what} answered ${status}: ${diagnostics(outcome, error)}`,
    fieldsOf(outcome),
    base,
  );
}

function outcomeOf(error: unknown): OperationOutcome | undefined {
  if (error instanceof OperationOutcomeError) return error.outcome;
  if (
    typeof error === 'object' &&
    error !== null &&
    'outcome' in error &&
    isOperationOutcome(error.outcome)
  ) {
    return error.outcome;
  }
  return undefined;
}

function detailsCode(outcome: OperationOutcome | undefined): string | undefined {
  return outcome?.issue[0]?.details?.coding?.[0]?.code;
}

function fieldsOf(outcome: OperationOutcome | undefined): string[] {
  return (outcome?.issue ?? []).flatMap((issue) => issue.expression ?? []);
}

function diagnostics(outcome: OperationOutcome | undefined, error: unknown): string {
  const issue = outcome?.issue[0];
  return withoutValues(issue?.diagnostics ?? issue?.details?.text ?? messageOf(error));
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

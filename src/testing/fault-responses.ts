import { STATUS_CODES } from 'node:http';
import {
  badRequest,
  conflict,
  deepClone,
  forbidden,
  gone,
  notFound,
  preconditionFailed,
  tooManyRequests,
  unauthorized,
} from '@medplum/core';
import type { OperationOutcome } from '@medplum/fhirtypes';

/**
 * A response the test server sends in place of (or after) its own.
 * @example
 * ```ts
 * const response: FaultResponse = { status: 503, headers: { 'Content-Type': 'text/plain' }, body: 'down' };
 * ```
 */
export interface FaultResponse {
  /** The HTTP status. */
  readonly status: number;
  /** Response headers; `Content-Length` is added when sending. */
  readonly headers: Readonly<Record<string, string>>;
  /** The response body. */
  readonly body: string;
}

const FHIR_JSON = 'application/fhir+json; charset=utf-8';

// A Medplum server maps Postgres error 40001 to `conflict(err.message, err.code)`
// (normalizeDatabaseError), so the message sits in details.text, not in diagnostics.
const SERIALIZATION_FAILURE_MESSAGE = 'could not serialize access due to concurrent update';

// What nginx, and so many load balancers in front of Medplum, sends when the upstream is down.
const BAD_GATEWAY_HTML =
  '<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n' +
  '<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n';

// The outcomes Medplum itself sends for these statuses, so getStatus() on the client agrees.
const KNOWN_OUTCOMES: Readonly<Record<number, OperationOutcome>> = {
  400: badRequest('Bad Request'),
  401: unauthorized,
  403: forbidden,
  404: notFound,
  410: gone,
  412: preconditionFailed,
  429: tooManyRequests,
};

/**
 * An error status with the OperationOutcome Medplum sends for it. A 429 carries the
 * `RateLimit` header of Medplum's FHIR quota, `"fhirInteractions";r=0;t=<seconds>`, which
 * `MedplumClient.rateLimitStatus()` parses; Medplum sends no `Retry-After`.
 * @param status - An HTTP error status.
 * @param rateLimitResetSeconds - For a 429, seconds until the limit resets.
 * @returns The response to send.
 * @example
 * ```ts
 * statusResponse(429, 2).headers.RateLimit; // '"fhirInteractions";r=0;t=2'
 * ```
 */
export function statusResponse(status: number, rateLimitResetSeconds: number): FaultResponse {
  if (status !== 429) {
    return outcomeResponse(status, outcomeFor(status));
  }
  // Medplum reports the limiter's state in diagnostics; clients act on the header.
  const state = { remainingPoints: 0, msBeforeNext: rateLimitResetSeconds * 1000, limit: 50_000 };
  const outcome: OperationOutcome = {
    ...deepClone(tooManyRequests),
    issue: [
      {
        severity: 'error',
        code: 'throttled',
        details: { text: 'Too Many Requests' },
        diagnostics: JSON.stringify(state),
      },
    ],
  };
  return outcomeResponse(429, outcome, { RateLimit: `"fhirInteractions";r=0;t=${rateLimitResetSeconds}` });
}

/**
 * The transient 409 a Medplum server returns when concurrent conditional writes collide.
 * @returns A 409 whose outcome has `issue[0].code` `conflict` and details code `40001`.
 * @example
 * ```ts
 * JSON.parse(serializationFailureResponse().body).issue[0].details.coding[0].code; // '40001'
 * ```
 */
export function serializationFailureResponse(): FaultResponse {
  return outcomeResponse(409, conflict(SERIALIZATION_FAILURE_MESSAGE, '40001'));
}

/**
 * The HTML 502 page a reverse proxy sends when it cannot reach the server.
 * @returns A 502 with a `text/html` body.
 * @example
 * ```ts
 * badGatewayResponse().headers['Content-Type']; // 'text/html'
 * ```
 */
export function badGatewayResponse(): FaultResponse {
  return { status: 502, headers: { 'Content-Type': 'text/html' }, body: BAD_GATEWAY_HTML };
}

function outcomeResponse(
  status: number,
  outcome: OperationOutcome,
  headers: Record<string, string> = {},
): FaultResponse {
  return { status, headers: { 'Content-Type': FHIR_JSON, ...headers }, body: JSON.stringify(outcome) };
}

function outcomeFor(status: number): OperationOutcome {
  const known = KNOWN_OUTCOMES[status];
  if (known) {
    return deepClone(known);
  }
  const text = STATUS_CODES[status] ?? 'Error';
  if (status === 409) {
    return conflict(text);
  }
  const transient = status === 503 || status === 504;
  const code = status >= 500 ? (transient ? 'transient' : 'exception') : 'processing';
  return { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code, details: { text } }] };
}

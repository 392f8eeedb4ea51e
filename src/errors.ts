import { idShape } from './error-values.ts';
import type { WriteResult } from './write-result.ts';

/**
 * Every error the library throws. Each class has a literal `name`, a `cause` when it wraps
 * another error, the data an operator needs, and a `retryable` flag so a caller can tell from
 * the type alone whether trying again may help.
 */

/**
 * The system a write or error concerns.
 *
 * @example
 * ```ts
 * const authority: Side = plan.routeOf('north', 'Patient').authority;
 * ```
 */
export type Side = 'legacy' | 'medplum';

/**
 * What a {@link DualWriteError} knows about the record and request it concerns.
 *
 * @example
 * ```ts
 * const details: ErrorDetails = { side: 'medplum', resourceType: 'Patient', legacyId: 'p-1', status: 503, attempts: 4 };
 * ```
 */
export interface ErrorDetails {
  /** The side the failing operation addressed. */
  readonly side?: Side | undefined;
  /** The FHIR resource type involved. */
  readonly resourceType?: string | undefined;
  /** The legacy id of the record, when known. */
  readonly legacyId?: string | undefined;
  /** The Medplum resource id, when known. */
  readonly medplumId?: string | undefined;
  /** The HTTP status of the last response, when the side answered over HTTP. */
  readonly status?: number | undefined;
  /** How many attempts were made before giving up (1 when not retried). */
  readonly attempts?: number | undefined;
  /** A value-free code of the underlying failure: a database error's SQLSTATE or socket code. */
  readonly code?: string | undefined;
  /**
   * The underlying error, without values: a driver's or server's error is kept as a copy
   * holding its name, a message with quoted values taken out, and its codes (see the README,
   * "What errors may contain").
   */
  readonly cause?: unknown;
}

/**
 * The base class of every error this library throws.
 *
 * @example
 * ```ts
 * try {
 *   await writer.create('Patient', row, ctx);
 * } catch (err) {
 *   if (err instanceof DualWriteError && err.retryable) {
 *     // safe to call again later
 *   }
 * }
 * ```
 */
export abstract class DualWriteError extends Error {
  abstract override readonly name: string;
  /** Whether the same call may succeed if tried again later. */
  abstract readonly retryable: boolean;
  /** The side the failing operation addressed. */
  readonly side: Side | undefined;
  /** The FHIR resource type involved. */
  readonly resourceType: string | undefined;
  /** The legacy id of the record, when known. */
  readonly legacyId: string | undefined;
  /** The Medplum resource id, when known. */
  readonly medplumId: string | undefined;
  /** The HTTP status of the last response, when there was one. */
  readonly status: number | undefined;
  /** Attempts made before giving up. */
  readonly attempts: number;
  /** A database error's SQLSTATE (`57P01`) or socket code (`ECONNRESET`), when that was the cause. */
  readonly code: string | undefined;

  /**
   * @param message - What went wrong, without PHI.
   * @param details - The record and request concerned.
   */
  constructor(message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.side = details.side;
    this.resourceType = details.resourceType;
    this.legacyId = details.legacyId;
    this.medplumId = details.medplumId;
    this.status = details.status;
    this.attempts = details.attempts ?? 1;
    this.code = details.code;
  }
}

/**
 * An option passed to a constructor is invalid. Thrown at construction, or at first use when
 * checking needs the other system (a legacy table that does not exist); never mid-write after
 * anything was changed.
 *
 * @example
 * ```ts
 * new ConfigurationError('retry.retries', -1, 'must be a non-negative integer');
 * // ConfigurationError: retry.retries: must be a non-negative integer (got -1)
 * ```
 */
export class ConfigurationError extends DualWriteError {
  override readonly name = 'ConfigurationError' as const;
  readonly retryable = false as const;
  /** The option's path, e.g. `retry.retries`. */
  readonly field: string;
  /**
   * @param field - The option's path.
   * @param value - The value given (shown in the message only for primitives).
   * @param problem - What is wrong with it.
   * @param secret - Show only the value's kind (`got a string`): for keys and secrets, and
   *   for options whose name itself was wrong.
   */
  constructor(field: string, value: unknown, problem: string, secret = false) {
    super(`${field}: ${problem} (got ${secret ? describeKind(value) : describeValue(value)})`);
    this.field = field;
  }
}

/**
 * A call's arguments are invalid: an unknown resource type, a missing id, a resource whose
 * type does not match. Nothing was written on either side.
 *
 * @example
 * ```ts
 * try {
 *   await writer.create('Patinet', row, ctx);
 * } catch (err) {
 *   if (err instanceof InvalidInputError) console.error(err.field); // 'type'
 * }
 * ```
 */
export class InvalidInputError extends DualWriteError {
  override readonly name = 'InvalidInputError' as const;
  readonly retryable = false as const;
  /** The argument or field at fault, e.g. `type` or `resource.identifier`. */
  readonly field: string;
  /**
   * @param field - The argument or field at fault.
   * @param problem - What is wrong with it, without PHI.
   * @param details - The record concerned.
   */
  constructor(field: string, problem: string, details: ErrorDetails = {}) {
    super(`${field}: ${problem}`, details);
    this.field = field;
  }
}

/**
 * A mapping threw or produced something unusable (wrong resource type, no legacy id).
 * Permanent: the same input will fail the same way.
 *
 * @example
 * ```ts
 * toFhir: (row) => {
 *   if (!row.last_name) throw new MappingError('last_name', 'is required');
 *   return { resourceType: 'Patient', name: [{ family: row.last_name }] };
 * },
 * ```
 */
export class MappingError extends DualWriteError {
  override readonly name = 'MappingError' as const;
  readonly retryable = false as const;
  /** The field the mapping could not handle, when it said. */
  readonly field: string | undefined;
  /**
   * @param field - The field at fault, or `undefined` when unknown.
   * @param problem - What is wrong, without PHI.
   * @param details - The record concerned.
   */
  constructor(field: string | undefined, problem: string, details: ErrorDetails = {}) {
    super(field === undefined ? problem : `${field}: ${problem}`, details);
    this.field = field;
  }
}

/**
 * A side rejected a write for good (an HTTP 4xx other than 408, 409, 412 and 429, or a legacy
 * error marked `retryable: false`). `issues` carries the server's diagnostics and FHIRPath
 * expressions naming the fields at fault.
 *
 * @example
 * ```ts
 * if (err instanceof RejectedError) console.error(err.status, err.fields);
 * ```
 */
export class RejectedError extends DualWriteError {
  override readonly name = 'RejectedError' as const;
  readonly retryable = false as const;
  /** The fields the server named (OperationOutcome `issue.expression`), possibly empty. */
  readonly fields: readonly string[];
  /**
   * @param message - The server's diagnostics, without PHI where the server kept it out.
   * @param fields - Field expressions named by the server.
   * @param details - The record and request concerned.
   */
  constructor(message: string, fields: readonly string[], details: ErrorDetails = {}) {
    super(message, details);
    this.fields = fields;
  }
}

/**
 * A side stayed unreachable or overloaded (network errors, 408, 429, 5xx, transient 409s)
 * through every retry. Retrying later may succeed.
 *
 * @example
 * ```ts
 * if (err instanceof UnavailableError) console.warn(`gave up after ${err.attempts} attempts`);
 * ```
 */
export class UnavailableError extends DualWriteError {
  override readonly name = 'UnavailableError' as const;
  readonly retryable = true as const;
  /** How long the side asked clients to wait (a rate limit's reset), when it said. */
  readonly retryAfterMs: number | undefined;
  /**
   * @param message - What failed, without PHI.
   * @param details - The record and request concerned.
   * @param retryAfterMs - How long the side asked clients to wait, when it said.
   */
  constructor(message: string, details: ErrorDetails = {}, retryAfterMs?: number) {
    super(message, details);
    this.retryAfterMs = retryAfterMs;
  }
}

/**
 * The journal's database refused a statement for good: not a lost connection or an overloaded
 * server (those are an {@link UnavailableError}), but an error the same statement would meet
 * again (a missing table, a refused permission, a constraint the library did not expect).
 * `code` is the SQLSTATE.
 *
 * @example
 * ```ts
 * if (err instanceof JournalError) console.error(`the journal refused a statement (${err.code})`);
 * ```
 */
export class JournalError extends DualWriteError {
  override readonly name = 'JournalError' as const;
  readonly retryable = false as const;
  /**
   * @param message - What failed, without values.
   * @param details - The code and the value-free cause.
   */
  constructor(message: string, details: ErrorDetails = {}) {
    super(message, details);
  }
}

/**
 * A write whose outcome the library cannot know: a request reached the side, and its answer
 * was lost (a connection dropped after the request was sent, a database connection terminated
 * after COMMIT was sent, a gateway's 502 or 504), and the retries that followed could not find
 * out. The write may have landed or not; unlike {@link UnavailableError}, which means nothing
 * was written. When it landed, its mirror is owed and will be applied.
 *
 * `retryable` says whether calling again is safe: every write the library can recognise when
 * it is sent again (a Medplum write found by its legacy identifier, a legacy write by its id)
 * is; a create whose legacy id the legacy system assigns in the write is not (look the record
 * up first: a second call could create a second row).
 *
 * @example
 * ```ts
 * try {
 *   await writer.create('Patient', row, ctx);
 * } catch (err) {
 *   if (err instanceof OutcomeUnknownError && err.retryable) await writer.create('Patient', row, ctx);
 * }
 * ```
 */
export class OutcomeUnknownError extends DualWriteError {
  override readonly name = 'OutcomeUnknownError' as const;
  /** Whether the same call may be made again safely (it is idempotent). */
  readonly retryable: boolean;
  /**
   * @param message - What was lost, without PHI.
   * @param details - The record and request concerned; `cause` is the last failure.
   * @param retryable - Whether calling again is safe.
   */
  constructor(message: string, details: ErrorDetails = {}, retryable = true) {
    super(message, details);
    this.retryable = retryable;
  }
}

/**
 * A request to one side got no answer within `requestTimeoutMs` and was abandoned (a server that
 * stops answering keeps the socket open: without a timeout a call would wait for the operating
 * system). Retryable: the side may answer next time. For a write, whether it landed is unknown
 * (`outcomeUnknown`): the request may have reached the side before it was abandoned; every write
 * the library makes is idempotent, so trying the same call again is safe.
 *
 * @example
 * ```ts
 * if (err instanceof RequestTimeoutError) console.warn(`${err.side} did not answer within ${err.timeoutMs} ms`);
 * ```
 */
export class RequestTimeoutError extends DualWriteError {
  override readonly name = 'RequestTimeoutError' as const;
  readonly retryable = true as const;
  /** The time limit that ran out, in milliseconds. */
  readonly timeoutMs: number;
  /** Whether the request was a write, which may have landed before it was abandoned. */
  readonly outcomeUnknown: boolean;
  /**
   * @param timeoutMs - The time limit that ran out.
   * @param write - Whether the request was a write.
   * @param details - The record and request concerned (`side` says which system).
   */
  constructor(timeoutMs: number, write: boolean, details: ErrorDetails = {}) {
    const where = details.side === 'legacy' ? 'the legacy system' : 'Medplum';
    const what = `${details.resourceType ?? ''} ${write ? 'write' : 'request'}`.trim();
    super(`${where} did not answer a ${what} within ${timeoutMs} ms`, details);
    this.timeoutMs = timeoutMs;
    this.outcomeUnknown = write;
  }
}

/**
 * The target changed since the record was last synced (a stale `If-Match` answered 412, a
 * non-transient 409, or a legacy version that moved): both systems changed the record.
 *
 * @example
 * ```ts
 * if (err instanceof ConflictError) console.warn(err.expectedVersion, err.actualVersion);
 * ```
 */
export class ConflictError extends DualWriteError {
  override readonly name = 'ConflictError' as const;
  readonly retryable = false as const;
  /** The version the write expected the target to be at. */
  readonly expectedVersion: string | undefined;
  /** The version found, when known. */
  readonly actualVersion: string | undefined;
  /**
   * @param message - What collided.
   * @param expectedVersion - The version expected.
   * @param actualVersion - The version found.
   * @param details - The record and request concerned.
   */
  constructor(
    message: string,
    expectedVersion: string | undefined,
    actualVersion: string | undefined,
    details: ErrorDetails = {},
  ) {
    super(message, details);
    this.expectedVersion = expectedVersion;
    this.actualVersion = actualVersion;
  }
}

/**
 * What a {@link MirrorError} says was written: a {@link WriteResult} without the record's
 * content (`row` and `resource`), which an error must not carry.
 *
 * @example
 * ```ts
 * const { outboxId, legacyId, medplumId }: MirrorFailure = err.result;
 * ```
 */
export type MirrorFailure = Omit<WriteResult, 'row' | 'resource'>;

/**
 * The authority write succeeded but its mirror failed for good (a conflict, a 4xx, a mapping
 * error): the entry is in the dead-letter queue, where an operator can read the reason, retry
 * or discard it. `cause` is the mirror's typed error; `result` says what was written (ids,
 * versions, actions; not the content: read the record again for it); `target` the side the
 * mirror wrote to, `fields` the paths at fault when the cause named them. The authority's copy
 * stands.
 *
 * @example
 * ```ts
 * try {
 *   await writer.update('Patient', 'p-1', row, ctx);
 * } catch (err) {
 *   if (err instanceof MirrorError) console.warn(err.target, err.fields, err.result.outboxId, (err.cause as Error).name);
 * }
 * ```
 */
export class MirrorError extends DualWriteError {
  override readonly name = 'MirrorError' as const;
  /** Whether mirroring again later may succeed (taken from the cause). */
  readonly retryable: boolean;
  /** What the call did before the mirror failed, without the record's content. */
  readonly result: MirrorFailure;
  /** The side the mirror was writing to: the one that is not `result.authority`. */
  readonly target: Side;
  /**
   * The fields at fault, as the cause named them: the field expressions of a
   * {@link RejectedError} (`Patient.birthDate`), the field of a {@link MappingError} or an
   * {@link InvalidInputError}; empty when the cause named none. Paths only, never values.
   */
  readonly fields: readonly string[];
  /**
   * @param result - What the call did before the mirror failed (its `row` and `resource` are
   *   left out).
   * @param cause - The mirror's typed error.
   */
  constructor(result: WriteResult | MirrorFailure, cause: DualWriteError) {
    const target: Side = result.authority === 'legacy' ? 'medplum' : 'legacy';
    super(
      `${result.resourceType}: written to ${result.authority}; mirror failed and was dead-lettered: ${cause.message}`,
      {
        side: cause.side ?? target,
        resourceType: result.resourceType,
        legacyId: result.legacyId,
        medplumId: result.medplumId,
        status: cause.status,
        attempts: cause.attempts,
        code: cause.code,
        cause,
      },
    );
    this.retryable = cause.retryable;
    this.target = target;
    this.fields = fieldsOf(cause);
    const { row: _row, resource: _resource, ...failure } = result as WriteResult;
    this.result = failure;
  }
}

/** An id as the journal issues them (a bigserial's digits), or `undefined` for anything else. */
function journalId(id: unknown): string | undefined {
  return typeof id === 'string' && /^\d{1,19}$/.test(id) ? id : undefined;
}

/**
 * The field paths an error names: a rejection's expressions, a mapping's or an input's field.
 * Internal (not exported from the package): the dead-letter reason keeps them too.
 *
 * @param error - A typed error.
 * @returns Its field paths, possibly none.
 * @example
 * ```ts
 * fieldsOf(new RejectedError('Medplum answered 400', ['Patient.birthDate'])); // ['Patient.birthDate']
 * ```
 */
export function fieldsOf(error: DualWriteError): readonly string[] {
  if (error instanceof RejectedError) return [...error.fields];
  const field = (error as { readonly field?: unknown }).field;
  return typeof field === 'string' ? [field] : [];
}

/**
 * An operator call named a dead letter that does not exist (`retryDeadLetter`,
 * `discardDeadLetter`, `resolveDeadLetter`). A letter that exists but was closed already is not
 * this error: those calls answer `false`.
 *
 * @example
 * ```ts
 * try {
 *   await writer.retryDeadLetter('999999');
 * } catch (err) {
 *   if (err instanceof DeadLetterNotFoundError) console.error(`no dead letter ${err.id}`);
 * }
 * ```
 */
export class DeadLetterNotFoundError extends DualWriteError {
  override readonly name = 'DeadLetterNotFoundError' as const;
  readonly retryable = false as const;
  /** The argument at fault. */
  readonly field = 'id' as const;
  /**
   * The id asked for, when it has the shape of a journal id (digits); `undefined` for anything
   * else, which is the caller's value only and is neither quoted nor kept.
   */
  readonly id: string | undefined;
  /**
   * @param id - The dead letter's id asked for.
   */
  constructor(id: string) {
    const kept = journalId(id);
    super(`dead letter ${kept ?? `id (${idShape(id)})`} does not exist`, { status: 404 });
    this.id = kept;
  }
}

/**
 * No backfill or reconciliation job has the id an operator call named (`job`, `pauseJob`,
 * `resumeJob`, `cancelJob`).
 *
 * @example
 * ```ts
 * try {
 *   await operator.pauseJob('999');
 * } catch (err) {
 *   if (err instanceof JobNotFoundError) console.error(`no job ${err.id}`);
 * }
 * ```
 */
export class JobNotFoundError extends DualWriteError {
  override readonly name = 'JobNotFoundError' as const;
  readonly retryable = false as const;
  /** The argument at fault. */
  readonly field = 'id' as const;
  /**
   * The id asked for, when it has the shape of a journal id (digits); `undefined` for anything
   * else, which is the caller's value only and is neither quoted nor kept.
   */
  readonly id: string | undefined;
  /**
   * @param id - The job's id asked for.
   */
  constructor(id: string) {
    const kept = journalId(id);
    super(`job ${kept ?? `id (${idShape(id)})`} does not exist`, { status: 404 });
    this.id = kept;
  }
}

/**
 * An optional peer dependency that a part of the library needs is not installed. The message
 * names the packages and the command that installs them.
 *
 * @example
 * ```ts
 * try {
 *   await import('medplum-dualwrite/testing');
 * } catch (err) {
 *   if (err instanceof MissingPeerDependencyError) console.error(err.packages); // ['@medplum/fhir-router', …]
 * }
 * ```
 */
export class MissingPeerDependencyError extends DualWriteError {
  override readonly name = 'MissingPeerDependencyError' as const;
  /** Installing the packages, not retrying, is the fix. */
  readonly retryable = false as const;
  /** The packages to install, as `npm install` takes them. */
  readonly packages: readonly string[];
  /**
   * @param part - The part of the library that needs them (`medplum-dualwrite/testing`).
   * @param packages - The packages to install, with their version ranges.
   * @param cause - The loader's error.
   */
  constructor(part: string, packages: readonly string[], cause?: unknown) {
    super(
      `${part} needs the optional peer dependencies ${packages.join(', ')}: install them with \`npm install --save-dev ${packages.join(' ')}\``,
      { cause },
    );
    this.packages = packages;
  }
}

/** Describes a value for an error message without echoing long or structured data. */
function describeKind(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

function describeValue(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (typeof value === 'string')
    return value.length > 40 ? `a string of ${value.length} chars` : JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  if (typeof value === 'function') return 'a function';
  return Array.isArray(value) ? 'an array' : 'an object';
}

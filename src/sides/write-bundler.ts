import { OperationOutcomeError, isOperationOutcome, type MedplumClient, type WithId } from '@medplum/core';
import type { Bundle, BundleEntry, OperationOutcome, Resource, ResourceType } from '@medplum/fhirtypes';
import { UnavailableError } from '../errors.ts';
import { withHttpExchange, type HttpExchange } from './http-capture.ts';
import { classifyMedplumError } from './medplum-failure.ts';
import { interactionCost, type PacerLane, type QuotaPacer } from '../pacing/quota-pacer.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS } from './request-deadline.ts';

/** One write to go in a batch `Bundle`: the entry's `request` and `resource`. */
export interface BundledWrite {
  readonly method: 'POST' | 'PUT' | 'DELETE';
  /** The resource type written. */
  readonly resourceType: string;
  /** Relative to the FHIR base: `Patient` for a create, `Patient/<id>` otherwise. */
  readonly url: string;
  readonly resource?: Resource | undefined;
  /** Quoted, as an `If-Match` header carries it: `W/"3"`. */
  readonly ifMatch?: string | undefined;
  /** A search query without `?`, as `If-None-Exist` carries it. */
  readonly ifNoneExist?: string | undefined;
}

/**
 * What became of one write:
 * - `ok`: its status and the resource as stored;
 * - `error` and `exchange`: its own failure (as a request of its own, or as its entry of a
 *   batch), for the caller to classify as it would any request's;
 * - `unavailable`: the batch carrying it failed as a whole, transiently or without a readable
 *   answer. The write may have landed; the caller retries it (mirrors are idempotent).
 */
export type BundledOutcome =
  | {
      readonly ok: true;
      readonly status: number | undefined;
      readonly resource: WithId<Resource> | undefined;
    }
  | { readonly ok: false; readonly error: unknown; readonly exchange: HttpExchange }
  | { readonly ok: false; readonly unavailable: UnavailableError };

interface Waiting {
  readonly write: BundledWrite;
  /** Sends the write as a request of its own. */
  readonly alone: () => Promise<BundledOutcome>;
  readonly resolve: (outcome: BundledOutcome) => void;
}

/**
 * Batch statuses that say the server takes no batches at this address (rather than anything
 * about the writes): bundling is then turned off and each write goes alone.
 */
const BATCHES_UNSUPPORTED = new Set([404, 405, 501]);

/**
 * Coalesces the writes asked for in one turn of the event loop into one FHIR `batch` Bundle:
 * one request instead of one each. A drainer running many mirrors at once reaches their writes
 * together, and each write in a bundle costs the server its own processing but not a request.
 *
 * Each write keeps its own outcome (the entry's status, resource or OperationOutcome), so a
 * caller sees what a request of its own would have answered; a batch's `RateLimit` headers
 * reach its entries' rate-limit failures. A write alone in its turn goes alone. When the batch
 * fails as a whole:
 * - transiently (no answer, 408, 429, 5xx, a serialisation failure), or with a success status
 *   whose body cannot be read: every write is unavailable, to be retried;
 * - with 404, 405 or 501 (a server or proxy without batches at the FHIR base): each write goes
 *   alone, and so does every write after it;
 * - with another status (a refusal of the batch itself): each write goes alone.
 */
export class WriteBundler {
  readonly #client: MedplumClient;
  readonly #maxEntries: number;
  readonly #requests: number;
  readonly #pacer: QuotaPacer | undefined;
  readonly #lane: PacerLane;
  readonly #timeoutMs: number;
  #waiting: Waiting[] = [];
  #scheduled = false;
  #unsupported = false;
  /** Batches (and writes sent alone) in flight. */
  #inFlight = 0;

  /**
   * @param client - The client to post batches with.
   * @param maxEntries - Most writes per bundle (at least 2).
   * @param flow - Most batches in flight at once (writes asked for meanwhile wait and go
   *   together in the next), the pacer each batch waits on, and how long a batch may go
   *   unanswered before it is abandoned (its writes are then unavailable, to be retried).
   */
  constructor(
    client: MedplumClient,
    maxEntries: number,
    flow: {
      readonly requests?: number | undefined;
      readonly pacer?: QuotaPacer | undefined;
      readonly lane?: PacerLane | undefined;
      readonly timeoutMs?: number | undefined;
    } = {},
  ) {
    this.#client = client;
    this.#maxEntries = maxEntries;
    this.#requests = flow.requests ?? Number.POSITIVE_INFINITY;
    this.#pacer = flow.pacer;
    this.#lane = flow.lane ?? 'background';
    this.#timeoutMs = flow.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  }

  /**
   * Queues a write for the next bundle: the one this turn of the event loop fills, or, when as
   * many batches as allowed are in flight, the one sent when a batch returns.
   *
   * @param write - The write.
   * @param alone - Sends it as a request of its own: when it is alone in its bundle, or when the
   *   server refuses the batch.
   * @returns Its outcome; never rejects.
   */
  send(write: BundledWrite, alone: () => Promise<BundledOutcome>): Promise<BundledOutcome> {
    if (this.#unsupported) return settled(alone);
    return new Promise<BundledOutcome>((resolve) => {
      this.#waiting.push({ write, alone, resolve });
      if (this.#waiting.length >= this.#maxEntries) this.#flush();
      else this.#flushSoon();
    });
  }

  /** Flushes at the end of this turn, once the writes asked for in it are all queued. */
  #flushSoon(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#flush();
    });
  }

  /** Sends what waits, a bundle per free request slot. */
  #flush(): void {
    while (this.#waiting.length > 0 && this.#inFlight < this.#requests) {
      const batch = this.#waiting.splice(0, this.#maxEntries);
      this.#inFlight += 1;
      void this.#send(batch).finally(() => {
        this.#inFlight -= 1;
        if (this.#waiting.length > 0) this.#flushSoon();
      });
    }
  }

  async #send(batch: Waiting[]): Promise<void> {
    if (batch.length === 1) {
      await Promise.all(sendAlone(batch));
      return;
    }
    let entries = batch;
    const pacer = this.#pacer;
    if (pacer !== undefined) {
      // As many writes as the rate limit's budget pays for now; the rest go in the next bundle
      // rather than be answered 429 (a batch answers 200 with a 429 per entry over the quota).
      const affordable = pacer.affordable(interactionCost('batch', 1), this.#lane);
      if (affordable >= 1 && affordable < batch.length) {
        entries = batch.slice(0, affordable);
        this.#waiting.unshift(...batch.slice(affordable));
      }
      if (entries.length === 1) {
        await Promise.all(sendAlone(entries));
        return;
      }
    }
    try {
      await this.#post(entries);
    } catch (error: unknown) {
      // Whatever went wrong, no write is left waiting.
      for (const waiting of entries) waiting.resolve({ ok: false, unavailable: batchFailed(entries, error) });
    }
  }

  async #post(batch: readonly Waiting[]): Promise<void> {
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'batch',
      entry: batch.map(({ write }) => ({
        ...(write.resource === undefined ? {} : { resource: write.resource }),
        request: {
          method: write.method,
          url: write.url,
          ...(write.ifMatch === undefined ? {} : { ifMatch: write.ifMatch }),
          ...(write.ifNoneExist === undefined ? {} : { ifNoneExist: write.ifNoneExist }),
        },
      })),
    };
    const cost = interactionCost('batch', batch.length);
    await this.#pacer?.acquire(cost, this.#lane);
    const result = await withHttpExchange(() =>
      this.#client.executeBatch(bundle, {
        maxRetries: 0,
        cache: 'no-cache',
        headers: { Prefer: 'return=representation' },
        // The time limit only: the batch carries writes of many leases, each fenced before it
        // was queued, and one lease lapsing must not cut the others' writes off.
        signal: AbortSignal.timeout(Math.ceil(this.#timeoutMs)),
      }),
    );
    this.#pacer?.observe(result.exchange.headers, cost);
    const status = result.exchange.status;
    if (!result.ok) {
      const failure = classifyMedplumError(result.error, result.exchange, { side: 'medplum' });
      if ((status !== undefined && status < 300) || failure instanceof UnavailableError) {
        // Transient, or an answer that could not be read: the writes may have landed.
        const unavailable = batchFailed(batch, failure);
        for (const waiting of batch) waiting.resolve({ ok: false, unavailable });
        return;
      }
      if (status !== undefined && BATCHES_UNSUPPORTED.has(status)) this.#unsupported = true;
      await Promise.all(sendAlone(batch));
      return;
    }
    const answer: unknown = result.value;
    const entries = isBundle(answer) ? (answer.entry ?? []) : undefined;
    if (entries === undefined) {
      const unavailable = batchFailed(
        batch,
        new Error(`the batch was answered ${status ?? '?'} without a Bundle`),
      );
      for (const waiting of batch) waiting.resolve({ ok: false, unavailable });
      return;
    }
    batch.forEach((waiting, n) => {
      waiting.resolve(entryOutcome(waiting.write, entries[n], entries.length, batch.length, result.exchange));
    });
    this.#invalidateCache(batch);
  }

  /** What the client's own `createResource`/`updateResource`/`deleteResource` would drop from its cache. */
  #invalidateCache(batch: readonly Waiting[]): void {
    for (const type of new Set(batch.map(({ write }) => write.resourceType)))
      this.#client.invalidateSearches(type as ResourceType);
    for (const { write } of batch)
      if (write.method !== 'POST') this.#client.invalidateUrl(this.#client.fhirUrl(write.url));
  }
}

/** Sends each write of a batch as a request of its own. */
function sendAlone(batch: readonly Waiting[]): Promise<void>[] {
  return batch.map((waiting) => settled(waiting.alone).then(waiting.resolve));
}

/** Runs `alone`; a rejection (which it should never give) becomes an unavailable outcome. */
async function settled(alone: () => Promise<BundledOutcome>): Promise<BundledOutcome> {
  try {
    return await alone();
  } catch (error) {
    return { ok: false, unavailable: batchFailed([], error) };
  }
}

function batchFailed(batch: readonly Waiting[], error: unknown): UnavailableError {
  const status = error instanceof UnavailableError ? error.status : undefined;
  const message = error instanceof Error ? error.message : String(error);
  const what = batch.length === 0 ? 'the request' : `the batch of ${batch.length} writes carrying this one`;
  return new UnavailableError(
    `${what} failed: ${message}`,
    { side: 'medplum', status, cause: error },
    error instanceof UnavailableError ? error.retryAfterMs : undefined,
  );
}

function entryOutcome(
  write: BundledWrite,
  entry: BundleEntry | undefined,
  answered: number,
  asked: number,
  exchange: HttpExchange,
): BundledOutcome {
  const status = statusOf(entry?.response?.status);
  if (entry === undefined || status === undefined) {
    const problem =
      answered === asked
        ? 'an entry of the batch answer has no status'
        : `the batch answer has ${answered} entries for ${asked} writes`;
    return { ok: false, unavailable: batchFailed([], new Error(problem)) };
  }
  if (status < 300) {
    const resource = entry.resource as WithId<Resource> | undefined;
    if (resource !== undefined && resource.resourceType !== write.resourceType) {
      const problem = `entry answered a ${resource.resourceType} for a write of a ${write.resourceType}`;
      return { ok: false, unavailable: batchFailed([], new Error(problem)) };
    }
    return { ok: true, status, resource };
  }
  const given: unknown = entry.response?.outcome;
  const outcome: OperationOutcome =
    isOperationOutcome(given) && Array.isArray(given.issue)
      ? given
      : {
          resourceType: 'OperationOutcome',
          issue: [{ severity: 'error', code: 'processing', diagnostics: `batch entry answered ${status}` }],
        };
  // The batch's headers stand for its entries' (a rate limit's reset, above all).
  return {
    ok: false,
    error: new OperationOutcomeError(outcome),
    exchange: { status, headers: exchange.headers, networkError: false },
  };
}

function isBundle(value: unknown): value is Bundle {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as { resourceType?: unknown }).resourceType === 'Bundle'
  );
}

/** `201 Created` or `201` → 201. */
function statusOf(text: string | undefined): number | undefined {
  const match = /^\s*(\d{3})\b/.exec(text ?? '');
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

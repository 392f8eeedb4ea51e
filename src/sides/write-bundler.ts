import { OperationOutcomeError, type MedplumClient, type WithId } from '@medplum/core';
import type { Bundle, BundleEntry, OperationOutcome, Resource } from '@medplum/fhirtypes';
import { withHttpExchange, type HttpExchange } from './http-capture.ts';

/** One write to go in a batch `Bundle`: the entry's `request` and `resource`. */
export interface BundledWrite {
  readonly method: 'POST' | 'PUT' | 'DELETE';
  /** Relative to the FHIR base: `Patient` for a create, `Patient/<id>` otherwise. */
  readonly url: string;
  readonly resource?: Resource | undefined;
  /** Quoted, as an `If-Match` header carries it: `W/"3"`. */
  readonly ifMatch?: string | undefined;
  /** A search query without `?`, as `If-None-Exist` carries it. */
  readonly ifNoneExist?: string | undefined;
}

/**
 * What became of one write: its own status and resource, or the error the client threw and
 * the exchange it came from, for the caller to classify as it would a request of its own.
 */
export type BundledOutcome =
  | {
      readonly ok: true;
      readonly status: number | undefined;
      readonly resource: WithId<Resource> | undefined;
    }
  | { readonly ok: false; readonly error: unknown; readonly exchange: HttpExchange };

interface Waiting {
  readonly write: BundledWrite;
  /** Sends the write as a request of its own. */
  readonly alone: () => Promise<BundledOutcome>;
  readonly resolve: (outcome: BundledOutcome) => void;
}

/**
 * Coalesces the writes asked for in one turn of the event loop into one FHIR `batch` Bundle:
 * one request instead of one each. A drainer running many mirrors at once reaches their writes
 * together, and each write in a bundle costs the server its own processing but not a request.
 *
 * Each write keeps its own outcome (the entry's status, resource or OperationOutcome), so a
 * caller sees what a request of its own would have answered. A write alone in its turn goes
 * alone. When the batch request itself fails, a transient failure (no answer, 408, 429, 5xx)
 * is every write's; any other (a server or proxy refusing batches) sends each write alone.
 */
export class WriteBundler {
  readonly #client: MedplumClient;
  readonly #maxEntries: number;
  #waiting: Waiting[] = [];
  #scheduled = false;

  /**
   * @param client - The client to post batches with.
   * @param maxEntries - Most writes per bundle (at least 2).
   */
  constructor(client: MedplumClient, maxEntries: number) {
    this.#client = client;
    this.#maxEntries = maxEntries;
  }

  /**
   * Queues a write for the current turn's bundle.
   *
   * @param write - The write.
   * @param alone - Sends it as a request of its own: when it is alone in its turn, or when the
   *   server refuses the batch. Must not reject.
   * @returns Its outcome; never rejects.
   */
  send(write: BundledWrite, alone: () => Promise<BundledOutcome>): Promise<BundledOutcome> {
    return new Promise<BundledOutcome>((resolve) => {
      this.#waiting.push({ write, alone, resolve });
      if (this.#waiting.length >= this.#maxEntries) this.#flush();
      else if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => {
          this.#scheduled = false;
          this.#flush();
        });
      }
    });
  }

  #flush(): void {
    const batch = this.#waiting;
    this.#waiting = [];
    if (batch.length === 0) return;
    const only = batch[0];
    if (batch.length === 1 && only !== undefined) {
      void only.alone().then(only.resolve);
      return;
    }
    void this.#post(batch);
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
    const result = await withHttpExchange(() =>
      this.#client.executeBatch(bundle, { maxRetries: 0, cache: 'no-cache' }),
    );
    if (!result.ok) {
      const status = result.exchange.status;
      const transient =
        result.exchange.networkError ||
        status === undefined ||
        status === 408 ||
        status === 429 ||
        status >= 500;
      if (transient) {
        for (const waiting of batch)
          waiting.resolve({ ok: false, error: result.error, exchange: result.exchange });
      } else {
        for (const waiting of batch) void waiting.alone().then(waiting.resolve);
      }
      return;
    }
    const entries = result.value.entry ?? [];
    batch.forEach((waiting, n) => {
      waiting.resolve(outcomeOf(entries[n], entries.length, batch.length, result.exchange));
    });
  }
}

function outcomeOf(
  entry: BundleEntry | undefined,
  answered: number,
  asked: number,
  exchange: HttpExchange,
): BundledOutcome {
  const status = statusOf(entry?.response?.status);
  if (entry === undefined || status === undefined) {
    // The write may have landed: a transient failure, so that the mirror looks again.
    const error = new Error(
      `the batch answered ${answered} entries for ${asked} writes, or an entry without a status`,
    );
    return { ok: false, error, exchange: { ...exchange, status: 502 } };
  }
  if (status < 300) {
    return { ok: true, status, resource: entry.resource as WithId<Resource> | undefined };
  }
  const outcome: OperationOutcome = entry.response?.outcome ?? {
    resourceType: 'OperationOutcome',
    issue: [{ severity: 'error', code: 'processing', diagnostics: `batch entry answered ${status}` }],
  };
  return {
    ok: false,
    error: new OperationOutcomeError(outcome),
    exchange: { status, headers: undefined, networkError: false },
  };
}

/** `201 Created` or `201` → 201. */
function statusOf(text: string | undefined): number | undefined {
  const match = /^\s*(\d{3})\b/.exec(text ?? '');
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

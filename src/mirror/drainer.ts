import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import {
  anObject,
  checkOptions,
  nonEmptyString,
  positiveInteger,
  positiveMs,
  type Rule,
} from '../option-checks.ts';
import type { Lease, OutboxCounts } from '../journal/outbox.ts';
import type { SyncStore } from '../journal/sync-store.ts';
import { backoffOf, type Backoff, type BackoffOptions } from './backoff.ts';
import type { LeaseResult } from './lease-runner.ts';

/**
 * Options of the outbox drainer (the background worker that applies pending mirrors).
 *
 * @example
 * ```ts
 * const drainer: DrainerOptions = { concurrency: 8, leaseMs: 60_000, maxAttempts: 50, bundle: 8 };
 * ```
 */
export interface DrainerOptions {
  /**
   * This worker's name in leases; unique per process.
   * @default `${hostname}:${pid}:${random}`
   */
  readonly workerId?: string | undefined;
  /**
   * Mirrors this worker runs at once: records in flight, not requests. Their writes to Medplum
   * go together in bundles of up to `bundle`, at most `requests` at a time; results are
   * recorded in the background, so up to as many leases again may be finishing in the store.
   * @default 64
   */
  readonly concurrency?: number | undefined;
  /**
   * Most entries claimed per query. The drainer claims ahead, so that the next batch is ready
   * when workers free up: up to three times `concurrency` leases (at most `concurrency` + 2 ×
   * `batchSize`), running or waiting, at a time.
   * @default 16
   */
  readonly batchSize?: number | undefined;
  /**
   * How long the drainer sleeps when nothing is due.
   * @default 200
   */
  readonly pollIntervalMs?: number | undefined;
  /**
   * How long a claimed entry stays this worker's; a worker that dies loses its entries after
   * this long. Longer than the slowest mirror, or two workers may apply one entry (harmless,
   * since mirrors are idempotent, but wasted).
   * @default 30000
   */
  readonly leaseMs?: number | undefined;
  /**
   * Failed attempts after which an entry failing transiently (Medplum down) is dead-lettered.
   * With the default backoff, 30 attempts span about two hours.
   * @default 30
   */
  readonly maxAttempts?: number | undefined;
  /** Backoff between attempts of one entry, persisted with it. */
  readonly backoff?: BackoffOptions | undefined;
  /**
   * Most writes to Medplum sent together in one FHIR `batch` Bundle, each keeping its own
   * outcome (status, conflict, rejection). Writes asked for while `requests` batches are in
   * flight wait and go together in the next; a write alone goes alone. 1 sends each write as a
   * request of its own. A server that answers the batch with 404, 405 or 501 turns bundling
   * off for the process.
   * @default 20
   */
  readonly bundle?: number | undefined;
  /**
   * Most batch requests to Medplum in flight at once. A server processes a batch's entries one
   * after another, so a few batches at once keep it busy; more only queue there.
   * @default 4
   */
  readonly requests?: number | undefined;
}

/** {@link DrainerOptions} with defaults applied. */
export interface DrainerPolicy {
  readonly workerId: string;
  readonly concurrency: number;
  readonly batchSize: number;
  readonly pollIntervalMs: number;
  readonly leaseMs: number;
  readonly maxAttempts: number;
  readonly backoff: Backoff;
  readonly bundle: number;
  readonly requests: number;
  /**
   * The outbox lane this drainer claims from (a backfill's on a client of its own); absent:
   * entries of no lane and of lanes nobody holds (see `SyncStore.claim`).
   */
  readonly lane?: string | undefined;
}

/**
 * Validates drainer options and applies defaults.
 *
 * @param options - The user's options.
 * @returns The policy.
 * @throws {@link ConfigurationError} naming the field.
 */
export function drainerPolicyOf(options: DrainerOptions = {}): DrainerPolicy {
  const given = checkOptions(
    options,
    'drainer',
    'configuration',
    DRAINER_SHAPE,
    'drainer.',
  ) as DrainerOptions;
  return {
    workerId: given.workerId ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`,
    concurrency: given.concurrency ?? DEFAULT_CONCURRENCY,
    batchSize: given.batchSize ?? 16,
    pollIntervalMs: given.pollIntervalMs ?? 200,
    leaseMs: given.leaseMs ?? 30_000,
    maxAttempts: given.maxAttempts ?? 30,
    backoff: backoffOf(given.backoff),
    bundle: given.bundle ?? DEFAULT_BUNDLE,
    requests: given.requests ?? DEFAULT_REQUESTS,
  };
}

// Chosen against a real Medplum 5.0.10 on this machine kind (2 cores shared with the server and
// PostgreSQL), 1,000 pending creates, as a ratio to a hand-written client posting batch Bundles
// of 20 creates, 4 at a time, in the same run (the machine was loaded, so absolute rates varied
// 50–120/s between trials): the old defaults (4 mirrors, bundles of at most 4 writes) 0.29;
// 32 mirrors 0.70; 64 mirrors, bundles of 20, 4 batches in flight 0.65–1.11 over seven trials
// (mean 0.84); 96 and 128 mirrors no better (0.72–1.16), with deeper queues of leases waiting.
// Medplum processes a batch's entries one after another, so 4 batches in flight keep it busy:
// 2 gave 0.61, 8 gave 0.54 in the same run.
const DEFAULT_CONCURRENCY = 64;
const DEFAULT_BUNDLE = 20;
const DEFAULT_REQUESTS = 4;

/** Every option of {@link DrainerOptions} and its rule; the compiler keeps the two in step. */
const DRAINER_SHAPE = {
  workerId: nonEmptyString,
  concurrency: positiveInteger,
  batchSize: positiveInteger,
  pollIntervalMs: positiveMs,
  leaseMs: positiveMs,
  maxAttempts: positiveInteger,
  // Checked by backoffOf, key by key.
  backoff: anObject,
  bundle: positiveInteger,
  requests: positiveInteger,
} satisfies Record<keyof DrainerOptions, Rule>;

/**
 * What a drain did.
 *
 * @example
 * ```ts
 * const report = await writer.drain();
 * console.log(report.applied, report.deadLettered, report.remaining.pending);
 * ```
 */
export interface DrainReport {
  /** Entries whose mirror was applied (or found already applied). */
  readonly applied: number;
  /** Attempts that failed transiently and will be retried. */
  readonly retried: number;
  /** Entries moved to the dead-letter queue. */
  readonly deadLettered: number;
  /** The outbox when the drain ended. */
  readonly remaining: OutboxCounts;
  /** Whether the drain stopped at its time limit with entries still pending. */
  readonly timedOut: boolean;
}

/**
 * Runs one lease: applies it, calling `attempted` once its writes to the other side are done
 * (success or not), and records the result in the store. `confirmedAt` is when (`Date.now()`)
 * the claim or renewal that last granted the lease was sent.
 */
export type LeaseRun<P> = (
  lease: Lease,
  prepared: P | undefined,
  attempted: () => void,
  confirmedAt: number,
) => Promise<LeaseResult>;

/**
 * What a {@link Drainer} tells its owner, and asks of it, besides running leases.
 */
export interface DrainerHooks<P> {
  /**
   * Reads for a claimed batch at once, before its leases run (one value per lease, same
   * order); when it throws, the leases run without.
   */
  readonly prepare?: ((leases: readonly Lease[]) => Promise<readonly P[]>) | undefined;
  /**
   * Told of each failure of the store in the background loop (a claim, or recording a result),
   * which then backs off and goes on; a lease whose result could not be recorded returns when
   * it expires. A `drain()` throws such failures to its caller instead.
   */
  readonly onError?: ((error: unknown, retryInMs: number) => void) | undefined;
}

interface Queued<P> {
  readonly lease: Lease;
  readonly prepared: P | undefined;
  /** When `prepared` was read. */
  readonly readAt: number;
  /** When the claim or renewal that last granted the lease was sent. */
  renewedAt: number;
}

/**
 * Applies pending outbox entries: claims leases in batches and runs them with bounded
 * concurrency, either in the background (`start`/`stop`) or until the outbox is empty
 * (`drain`). Many drainers, in many processes, can share one store.
 *
 * The work is a pipeline, so that a worker waits on the other side and on nothing else: the
 * next batch is claimed (and its records read) while the current one is being applied, and a
 * worker hands each result to the store in the background and takes its next lease at once.
 * `concurrency` bounds the mirrors in flight; as many results again may be being recorded, and
 * twice as many leases may wait to start. A lease stays held until its result is recorded.
 */
export class Drainer<P = undefined> {
  readonly #store: SyncStore;
  readonly #run: LeaseRun<P>;
  readonly #hooks: DrainerHooks<P>;
  readonly #policy: DrainerPolicy;
  readonly #queue: Queued<P>[] = [];
  #claiming: Promise<number> | undefined;
  /** Leases taken from the queue and not yet recorded. */
  #inFlight = 0;
  /** Of those, the ones whose mirror is still running. */
  #mirroring = 0;
  readonly #recording = new Set<Promise<void>>();
  #running: Promise<void> | undefined;
  #stopping = false;
  #paused = false;
  readonly #sleepers = new Set<() => void>();
  #counts = { applied: 0, retried: 0, deadLettered: 0 };
  /** Store failures in a row, in the background loop: its backoff. */
  #storeFailures = 0;
  readonly #reported = new WeakSet<object>();
  /** The first store failure of a drain, thrown to its caller once its workers stop. */
  #drainFailure: { readonly error: unknown } | undefined;

  /**
   * @param store - The store holding the outbox.
   * @param run - Applies one lease, with what `hooks.prepare` read for it, and records its result.
   * @param policy - Concurrency, leases and polling.
   * @param hooks - Batch reads, and where store failures are reported.
   */
  constructor(store: SyncStore, run: LeaseRun<P>, policy: DrainerPolicy, hooks: DrainerHooks<P> = {}) {
    this.#store = store;
    this.#run = run;
    this.#policy = policy;
    this.#hooks = hooks;
  }

  /** Whether the background loop runs. */
  get running(): boolean {
    return this.#running !== undefined;
  }

  /** Starts the background loop; a no-op when it runs. */
  start(): void {
    if (this.#running !== undefined) return;
    this.#stopping = false;
    this.#running = this.#work(undefined).finally(() => {
      this.#running = undefined;
    });
  }

  /** Stops the background loop after the leases already claimed are applied and recorded. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#wakeAll();
    await this.#running;
    // Stopped means no background loop, not unusable: a later drain() must still work.
    this.#stopping = false;
  }

  /** Stops claiming new entries until {@link Drainer.resume}; leases already claimed finish. */
  pause(): void {
    this.#paused = true;
  }

  /** Resumes claiming. */
  resume(): void {
    this.#paused = false;
    this.#wakeAll();
  }

  /** Wakes the loop early (a new entry was committed). */
  notify(): void {
    this.#wakeAll();
  }

  /**
   * Applies entries until the outbox holds nothing pending (dead letters aside) or the time
   * limit passes; waits for entries that are backing off.
   *
   * @param timeoutMs - The time limit.
   * @returns What was done, and what remains.
   */
  async drain(timeoutMs: number): Promise<DrainReport> {
    const before = { ...this.#counts };
    const deadline = Date.now() + timeoutMs;
    if (this.#running === undefined) await this.#work(deadline);
    else {
      // Leases queued or being claimed count as leased, not pending: they are this drainer's work.
      const busy = (): number => this.#inFlight + this.#queue.length + (this.#claiming === undefined ? 0 : 1);
      // Woken early when the last lease in flight is recorded (see #start): a drain then ends at
      // once, not up to a poll interval later (200 ms of a 1,000-record backfill's 1–3 s).
      while (Date.now() < deadline && (await this.#pending()) + busy() > 0) await this.#sleep();
    }
    const remaining = await this.#store.outboxCounts();
    return {
      applied: this.#counts.applied - before.applied,
      retried: this.#counts.retried - before.retried,
      deadLettered: this.#counts.deadLettered - before.deadLettered,
      remaining,
      timedOut: remaining.pending + remaining.leased > 0,
    };
  }

  /**
   * Runs `concurrency` workers until stopped, or (with a deadline) until the outbox is empty;
   * then waits for the results still being recorded.
   */
  async #work(deadline: number | undefined): Promise<void> {
    this.#drainFailure = undefined;
    const renewing = setInterval(() => void this.#renewQueued(), this.#policy.leaseMs / 8);
    renewing.unref();
    try {
      await Promise.all(Array.from({ length: this.#policy.concurrency }, () => this.#worker(deadline)));
      while (this.#recording.size > 0) await Promise.all(this.#recording);
    } finally {
      clearInterval(renewing);
    }
    this.#throwDrainFailure();
  }

  /**
   * Renews the leases that have waited in the queue for a quarter of their life (a slow Medplum
   * makes the queue slow). Checked every eighth of a lease, so a lease is renewed before it is
   * three eighths old, well before {@link Drainer.#fresh} gives up on it at half; one the store
   * no longer grants is dropped.
   */
  async #renewQueued(): Promise<void> {
    const now = Date.now();
    const old = this.#queue.filter((queued) => now - queued.renewedAt >= this.#policy.leaseMs / 4);
    await Promise.all(
      old.map(async (queued) => {
        let renewed: boolean;
        try {
          renewed = await this.#store.renew(queued.lease, this.#policy.leaseMs);
        } catch {
          return; // The store is away: the lease may expire; the claim after it applies the entry.
        }
        if (renewed) queued.renewedAt = now;
        else {
          const at = this.#queue.indexOf(queued);
          if (at >= 0) this.#queue.splice(at, 1);
        }
      }),
    );
  }

  /** What is left for this drainer: the outbox's pending entries, or its lane's entries. */
  async #pending(): Promise<number> {
    const { lane } = this.#policy;
    return lane === undefined ? (await this.#store.outboxCounts()).pending : this.#store.laneCount(lane);
  }

  /** Whether workers may claim now. */
  #mayClaim(deadline: number | undefined): boolean {
    return (
      !this.#stopping &&
      !this.#paused &&
      this.#drainFailure === undefined &&
      (deadline === undefined || Date.now() < deadline)
    );
  }

  #throwDrainFailure(): void {
    const failure = this.#drainFailure;
    this.#drainFailure = undefined;
    if (failure !== undefined) throw failure.error;
  }

  /**
   * A store failure: a drain stops and throws it; the background loop reports it and backs off
   * (the poll interval, doubled per failure in a row, up to 64 times).
   *
   * @returns Whether the worker should go on.
   */
  async #failed(error: unknown, background: boolean): Promise<boolean> {
    if (!background) {
      this.#drainFailure ??= { error };
      return false;
    }
    // Workers waiting on one claim all see its failure: it is one failure, reported once.
    const seen = typeof error === 'object' && error !== null && this.#reported.has(error);
    if (!seen) {
      this.#storeFailures += 1;
      if (typeof error === 'object' && error !== null) this.#reported.add(error);
    }
    const delayMs = this.#policy.pollIntervalMs * 2 ** Math.min(Math.max(this.#storeFailures, 1) - 1, 6);
    try {
      if (!seen) this.#hooks.onError?.(error, delayMs);
    } catch {
      // A reporting hook must not stop the drainer.
    }
    await this.#sleep(delayMs);
    return true;
  }

  async #worker(deadline: number | undefined): Promise<void> {
    const background = deadline === undefined;
    for (;;) {
      // Stopping, pausing, past the deadline or failed: claim nothing more, but run what was
      // claimed.
      let next: Queued<P> | undefined;
      try {
        next = this.#mayClaim(deadline) ? await this.#next(deadline) : this.#fresh();
      } catch (err) {
        if (await this.#failed(err, background)) continue;
        next = this.#fresh();
      }
      if (next === undefined) {
        if (this.#claiming !== undefined) {
          // A claim made ahead is still out: whatever it leases must run, not wait for expiry.
          await this.#claiming.catch(() => undefined);
          continue;
        }
        if (this.#drainFailure !== undefined) return;
        if (this.#stopping || (deadline !== undefined && Date.now() >= deadline)) return;
        if (deadline !== undefined && this.#inFlight === 0) {
          let pending: number;
          try {
            pending = await this.#pending();
          } catch (err) {
            await this.#failed(err, background);
            return;
          }
          if (pending === 0) return;
        }
        await this.#sleep();
        continue;
      }
      await this.#start(next, background);
      // Results being recorded hold their leases; never let more pile up than the mirrors.
      while (this.#recording.size > this.#policy.concurrency) await Promise.race(this.#recording);
    }
  }

  /** Runs a lease; resolves when its mirror is done, while its result may still be recorded. */
  #start(next: Queued<P>, background: boolean): Promise<void> {
    this.#inFlight += 1;
    this.#mirroring += 1;
    let attempted!: () => void;
    const mirrored = new Promise<void>((resolve) => {
      let done = false;
      attempted = () => {
        if (done) return;
        done = true;
        this.#mirroring -= 1;
        resolve();
      };
    });
    const recorded: Promise<void> = this.#run(next.lease, next.prepared, attempted, next.renewedAt)
      .then(
        (result) => {
          if (result.status === 'applied' || result.status === 'unchanged') this.#counts.applied += 1;
          else if (result.status === 'retrying') this.#counts.retried += 1;
          else if (result.status === 'dead-letter') this.#counts.deadLettered += 1;
        },
        // The result is not recorded: the lease stands until it expires, and the entry is
        // applied again then (idempotently).
        async (err: unknown) => {
          await this.#failed(err, background);
        },
      )
      .finally(() => {
        attempted();
        this.#inFlight -= 1;
        this.#recording.delete(recorded);
        // The last entry in flight may have been the outbox's last: let idle workers look now
        // rather than after their poll interval (a drain ends that much sooner).
        if (this.#inFlight === 0) this.#wakeAll();
      });
    this.#recording.add(recorded);
    return Promise.race([mirrored, recorded]);
  }

  /** The next queued lease young enough to run. */
  #fresh(): Queued<P> | undefined {
    for (;;) {
      const queued = this.#queue.shift();
      if (queued === undefined) return undefined;
      const now = Date.now();
      // A lease whose renewal failed for half its life is left to expire rather than run:
      // running it late could overlap another worker that claims it after expiry.
      if (now - queued.renewedAt >= this.#policy.leaseMs / 2) continue;
      // What the batch read is used only while fresh; older, the mirror reads for itself.
      if (queued.prepared !== undefined && now - queued.readAt > this.#preparedFreshMs)
        return { ...queued, prepared: undefined };
      return queued;
    }
  }

  /** How long a batch's reads stay usable: a tenth of a lease, at most 2 s. */
  get #preparedFreshMs(): number {
    return Math.min(2000, this.#policy.leaseMs / 10);
  }

  async #next(deadline: number | undefined): Promise<Queued<P> | undefined> {
    let next = this.#fresh();
    if (next === undefined) {
      await this.#claim();
      next = this.#fresh();
    }
    // Claim ahead: the next batch is claimed and read while the leases queued now run (unless
    // a stop, a pause, a failure or the deadline came while this worker waited).
    if (next !== undefined && this.#queue.length <= this.#claimAheadAt && this.#mayClaim(deadline))
      this.#claim().catch(() => undefined);
    return next;
  }

  /**
   * One claim query at a time per drainer, made while as many leases as there are workers
   * still wait: enough to keep every worker busy while the next batch is claimed and read
   * (against a Medplum 20 ms away, a queue half as deep left workers idle meanwhile). Never more
   * than `batchSize` at once, so leases start within a few mirrors' time.
   */
  #claim(): Promise<number> {
    const wanted = this.#maxLeases - this.#mirroring - this.#queue.length;
    if (this.#claiming === undefined && wanted < 1) return Promise.resolve(0);
    // Taken before the claim is sent: the store starts each lease later, so the lease is
    // proven until at least `claimedAt + leaseMs` (see LeaseKeeper).
    const claimedAt = Date.now();
    this.#claiming ??= this.#store
      .claim(
        this.#policy.workerId,
        Math.min(this.#policy.batchSize, wanted),
        this.#policy.leaseMs,
        this.#policy.lane,
      )
      .then(async (leases) => {
        this.#storeFailures = 0;
        const prepared = await this.#prepareFor(leases);
        const readAt = Date.now();
        this.#queue.push(
          ...leases.map((lease, i) => ({ lease, prepared: prepared[i], readAt, renewedAt: claimedAt })),
        );
        return leases.length;
      })
      .finally(() => {
        this.#claiming = undefined;
      });
    return this.#claiming;
  }

  /**
   * Most leases running or waiting at once: three times `concurrency` (a queue as deep as the
   * workers, claimed while they run), but no more than `concurrency` + 2 × `batchSize` when
   * many records are in flight. Against a real Medplum, 64 mirrors with 3 × 64 leases made
   * leases wait in the queue past their batch reads' freshness: each mirror then searched on
   * its own (716 requests for 1,000 creates instead of ~100) at 0.4–0.6× the throughput.
   */
  get #maxLeases(): number {
    const { concurrency, batchSize } = this.#policy;
    return Math.min(3 * concurrency, concurrency + 2 * batchSize);
  }

  /** The queue depth at which the next batch is claimed ahead. */
  get #claimAheadAt(): number {
    return Math.min(this.#policy.concurrency, this.#policy.batchSize);
  }

  /**
   * The batch's reads, or none when they fail or take longer than a tenth of a lease (a slow
   * Medplum): the leases then run at once and each mirror reads for itself.
   */
  async #prepareFor(leases: readonly Lease[]): Promise<readonly (P | undefined)[]> {
    const { prepare } = this.#hooks;
    if (prepare === undefined || leases.length === 0) return [];
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<readonly P[]>((resolve) => {
      timer = setTimeout(() => resolve([]), this.#policy.leaseMs / 10);
    });
    try {
      return await Promise.race([prepare(leases).catch(() => []), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  #sleep(ms = this.#policy.pollIntervalMs): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#sleepers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#sleepers.add(done);
    });
  }

  #wakeAll(): void {
    for (const wake of [...this.#sleepers]) wake();
  }
}

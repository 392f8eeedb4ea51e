import { setTimeout as sleep } from 'node:timers/promises';
import { DualWriteError } from '../errors.ts';
import { valueFreeError } from '../error-values.ts';
import { journalFailure } from '../journal/journal-failure.ts';
import { databaseFailureKind } from '../sql/database-failure.ts';
import {
  changeFeedsSettings,
  type ChangeFeedsOptions,
  type ChangeFeedsSettings,
} from './change-feeds-options.ts';
import {
  handleDeleteNotification,
  type RestHookRequest,
  type RestHookResult,
} from './delete-notification.ts';
import { checkExistence } from './existence-check.ts';
import {
  addCounts,
  newTally,
  NO_FEED_COUNTS,
  type FeedCounts,
  type FeedReport,
  type FeedTally,
} from './feed-report.ts';
import type { ChangeFeedsDeps } from './inbound-change.ts';
import { pollLegacyFeed } from './legacy-feed.ts';
import { pollMedplumFeed } from './medplum-feed.ts';
import { aFunction, anObject, checkValue, refuse } from '../option-checks.ts';

/**
 * Inbound change feeds: picks up writes made directly in either system (legacy screens, the
 * Medplum app) and mirrors them through the same path as the writer's own writes. A feed
 * never writes the other system: it journals an outbox entry per change (towards the other
 * side, due at once) and wakes the drainer, which applies it with the same mirror code,
 * last-sync guard and conflict resolver as any write. Changes the library made itself
 * (echoes), and records of units whose stage mirrors nothing, are counted and skipped.
 *
 * Per mapped resource type, each pass runs:
 * - the **legacy feed**: the adapter's `changesSince` from its stored cursor;
 * - the **Medplum feed**: a `_lastUpdated` search from its stored cursor, less `overlapMs`;
 * - every `existenceCheckIntervalMs`, the **existence check**: linked Medplum resources that
 *   are gone become deletes towards the legacy system.
 * Deletes can also arrive promptly through {@link ChangeFeeds.handleRestHook}.
 *
 * Cursors are stored only after a page's entries are durable, so a crash or a failure
 * re-reads, never skips: a change journaled twice coalesces with its pending entry, or its
 * mirror finds the target equal (`unchanged`). A feed that fails (Medplum down) is counted in
 * the pass's report and resumes from its cursor next pass; the others run regardless.
 *
 * @typeParam L - The legacy row shape.
 * @example
 * ```ts
 * const feeds = new ChangeFeeds(deps, { pollIntervalMs: 2000 });
 * const report = await feeds.pollOnce(); // { seen, queued, echoes, … }
 * feeds.start();
 * // …
 * await feeds.stop();
 * ```
 */
export class ChangeFeeds<L> {
  readonly #deps: ChangeFeedsDeps<L>;
  readonly #settings: ChangeFeedsSettings;
  #counts: FeedCounts = NO_FEED_COUNTS;
  /** The last pass queued; passes never overlap (two would journal every change twice). */
  #tail: Promise<unknown> = Promise.resolve();
  #loop: Promise<void> | undefined;
  #stopping: AbortController | undefined;
  #lastExistenceCheck = Number.NEGATIVE_INFINITY;
  /** The feed leases this instance holds, given up on stop. */
  readonly #held = new Set<string>();

  /**
   * @param deps - The two sides, store, mappings, routing, `unitOf` and the drainer's wake-up;
   *   see {@link ChangeFeedsDeps}.
   * @param options - Intervals, page size, overlap and sides; see {@link ChangeFeedsOptions}.
   * @throws {@link ConfigurationError} naming the option (or the dependency) at fault.
   */
  constructor(deps: ChangeFeedsDeps<L>, options: ChangeFeedsOptions = {}) {
    checkValue(deps, anObject, 'deps', 'configuration');
    for (const name of ['legacy', 'medplum', 'store'])
      checkValue(deps[name], anObject, `deps.${name}`, 'configuration');
    const mappings = deps.mappings as Partial<ReadonlyMap<string, unknown>> | null | undefined;
    if (typeof mappings?.get !== 'function' || typeof mappings.keys !== 'function')
      refuse('configuration', 'deps.mappings', mappings, 'must be a Map of resource type to mapping');
    for (const name of ['routeOf', 'unitOf', 'notify'])
      checkValue(deps[name], aFunction, `deps.${name}`, 'configuration');
    this.#settings = changeFeedsSettings(options);
    this.#deps = deps;
  }

  /**
   * Counts summed over every pass and notification since construction.
   *
   * @returns The running totals.
   * @example
   * ```ts
   * console.log(feeds.counts.echoes, feeds.counts.errors);
   * ```
   */
  get counts(): FeedCounts {
    return { ...this.#counts };
  }

  /**
   * Runs one pass of every feed: each legacy and Medplum feed of each mapped resource type,
   * and the existence check when it is due. Waits for a pass already running, then runs its
   * own. Never throws for a failing feed: the failure is in the report.
   *
   * @returns What the pass did.
   * @example
   * ```ts
   * const report = await feeds.pollOnce();
   * if (report.errors > 0) console.warn(report.failures);
   * ```
   */
  pollOnce(): Promise<FeedReport> {
    const pass = this.#tail.then(() => this.#runPass());
    this.#tail = pass.catch(() => undefined);
    return pass;
  }

  /**
   * Polls in the background: one pass, then `pollIntervalMs` of rest, until {@link stop}.
   * Calling it again while running does nothing.
   *
   * @example
   * ```ts
   * feeds.start();
   * ```
   */
  start(): void {
    if (this.#loop !== undefined) return;
    const stopping = new AbortController();
    this.#stopping = stopping;
    this.#loop = (async () => {
      while (!stopping.signal.aborted) {
        await this.pollOnce();
        await sleep(this.#settings.pollIntervalMs, undefined, { signal: stopping.signal }).catch(
          () => undefined,
        );
      }
    })();
  }

  /**
   * Stops background polling and waits for the running pass to finish (its cursors are then
   * stored, so a restart resumes exactly there).
   *
   * @returns When no pass is running.
   * @example
   * ```ts
   * await feeds.stop();
   * ```
   */
  async stop(): Promise<void> {
    this.#stopping?.abort();
    await this.#loop;
    this.#loop = undefined;
    this.#stopping = undefined;
    await this.#tail;
    // Given up at once, so another instance takes the feeds over without waiting for expiry.
    for (const name of this.#held) {
      await this.#deps.store.releaseFeedLease(name, this.#settings.owner).catch(() => undefined);
    }
    this.#held.clear();
  }

  /**
   * Handles a Medplum rest-hook notification: a delete of a linked resource (Medplum posts `{}`
   * with `X-Medplum-Deleted-Resource: <Type>/<id>`) is journaled towards the legacy system
   * once Medplum confirms the resource is gone. Subscribe with criteria `<Type>` and the
   * extension `https://medplum.com/fhir/StructureDefinition/subscription-supported-interaction`
   * = `delete`; add `subscription-secret` and set `restHookSecret` to check signatures.
   *
   * @param request - The request's headers and raw body.
   * @returns What was done; answer Medplum 2xx unless it throws (then 5xx, so it retries).
   * @throws What the store or Medplum threw; an {@link InvalidInputError} naming `request` (or
   *   its field) when it is not `{ headers, body }` with a string body.
   * @example
   * ```ts
   * const { status } = await feeds.handleRestHook({ headers: req.headers, body: rawBody });
   * ```
   */
  async handleRestHook(request: RestHookRequest): Promise<RestHookResult> {
    checkRestHookRequest(request);
    const tally = newTally();
    try {
      return await handleDeleteNotification(this.#deps, request, this.#settings.restHookSecret, tally);
    } finally {
      this.#counts = addCounts(this.#counts, tally);
    }
  }

  async #runPass(): Promise<FeedReport> {
    const tally = newTally();
    const { sides, existenceCheckIntervalMs, owner, leaseMs } = this.#settings;
    const types = [...this.#deps.mappings.keys()];
    const checkExistenceNow = Date.now() - this.#lastExistenceCheck >= existenceCheckIntervalMs;
    // Every feed this instance holds is renewed every third of `leaseMs` for the whole pass, not
    // only while it is read: the pass reads its feeds one after another (and the existence
    // check reads every link), so a feed renewed only around its own read lapsed while another
    // one was read, and a live instance took it over (seen: the legacy feed, at load 18, during
    // the Medplum feed's read).
    const renewing = setInterval(() => {
      for (const name of this.#held)
        this.#deps.store.acquireFeedLease(name, owner, leaseMs).catch(() => undefined);
    }, leaseMs / 3);
    renewing.unref();
    let existenceChecked: boolean;
    try {
      existenceChecked = await this.#readAll(types, sides, checkExistenceNow, tally);
    } finally {
      clearInterval(renewing);
    }
    // A check that failed runs again next pass rather than after a whole interval.
    if (checkExistenceNow && existenceChecked) this.#lastExistenceCheck = Date.now();
    this.#counts = addCounts(this.#counts, tally);
    return { ...tally, failures: [...tally.failures] };
  }

  /** Reads every feed of the pass in turn; whether each existence check that ran succeeded. */
  async #readAll(
    types: readonly string[],
    sides: readonly ('legacy' | 'medplum')[],
    checkExistenceNow: boolean,
    tally: FeedTally,
  ): Promise<boolean> {
    let existenceChecked = true;
    for (const type of types) {
      if (sides.includes('legacy'))
        await this.#read('legacy', type, tally, () =>
          pollLegacyFeed(this.#deps, type, this.#settings, tally),
        );
      if (sides.includes('medplum')) {
        const held = await this.#read('medplum', type, tally, () =>
          pollMedplumFeed(this.#deps, type, this.#settings, tally),
        );
        // The existence check goes with the Medplum feed's lease: one instance reads the links.
        if (checkExistenceNow && held) {
          existenceChecked &&= await this.#guard(`existence:${type}`, tally, () =>
            checkExistence(this.#deps, type, this.#settings, tally),
          );
        }
      }
    }
    return existenceChecked;
  }

  /**
   * Runs one read of a feed while this instance holds its lease: takes or renews it first
   * (`false`, and nothing read, while another instance holds it). The pass renews it every
   * third of `leaseMs` until the pass ends, so a read slower than the lease (a loaded machine,
   * a slow Medplum, many pages) does not let another instance take the feed over and read it at
   * the same time. Measured: with a 1 s lease renewed only before each read, three instances on
   * a machine at load 20 handed the feed back and forth while every holder was alive.
   */
  async #holding(feed: string, read: () => Promise<void>): Promise<boolean> {
    if (!(await this.#hold(feed))) return false;
    await read();
    return true;
  }

  /**
   * Runs one side's feed of a type when this instance holds its lease, and tells `onRead` what
   * the read did.
   *
   * @returns Whether this instance holds the feed.
   */
  async #read(
    side: 'legacy' | 'medplum',
    resourceType: string,
    tally: FeedTally,
    poll: () => Promise<void>,
  ): Promise<boolean> {
    const before = { seen: tally.seen, echoes: tally.echoes, queued: tally.queued };
    const feed = { held: false };
    const ok = await this.#guard(`${side}:${resourceType}`, tally, async () => {
      await this.#holding(`${side}:${resourceType}`, async () => {
        feed.held = true;
        await poll();
      });
    });
    if (feed.held) {
      this.#deps.onRead?.({
        side,
        resourceType,
        seen: tally.seen - before.seen,
        echoes: tally.echoes - before.echoes,
        queued: tally.queued - before.queued,
        failed: !ok,
      });
    }
    return feed.held;
  }

  /**
   * Takes or renews this instance's lease of a feed; `false` while another instance holds it
   * (that instance polls it, this one skips it).
   */
  async #hold(feed: string): Promise<boolean> {
    const name = `feed:${feed}`;
    const held = await this.#deps.store.acquireFeedLease(name, this.#settings.owner, this.#settings.leaseMs);
    if (held) this.#held.add(name);
    else this.#held.delete(name);
    return held;
  }

  /** Runs one feed; a failure is counted and reported, never thrown. */
  async #guard(feed: string, tally: FeedTally, run: () => Promise<void>): Promise<boolean> {
    try {
      await run();
      return true;
    } catch (err) {
      tally.errors += 1;
      // A report is read and logged by operators: it names the failure, never a value.
      const error =
        err instanceof DualWriteError || databaseFailureKind(err) === undefined
          ? valueFreeError(err)
          : journalFailure(err);
      tally.failures.push({ feed, name: error.name, message: error.message });
      return false;
    }
  }
}

/** A rest-hook request as the HTTP framework gave it: headers (an object or `Headers`) and the raw body. */
function checkRestHookRequest(request: unknown): asserts request is RestHookRequest {
  checkValue(request, anObject, 'request', 'input');
  checkValue(request.headers, anObject, 'request.headers', 'input');
  if (typeof request.body !== 'string' && !(request.body instanceof Uint8Array))
    refuse('input', 'request.body', request.body, 'must be the raw body as signed (a string or a Buffer)');
}

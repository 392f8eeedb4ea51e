import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { MedplumClient } from '@medplum/core';
import { InvalidInputError } from '../errors.ts';
import type { SyncStore } from '../journal/sync-store.ts';
import { anObject, checkOptions } from '../option-checks.ts';
import { QuotaPacer } from '../pacing/quota-pacer.ts';
import type { JobContext } from './job-context.ts';

/**
 * A Medplum client of a backfill's own: another client application, so another Medplum user
 * with a quota of its own. The backfill's searches and the writes it queues go through it; live
 * mirrors stay on the writer's client and keep its whole quota.
 *
 * @example
 * ```ts
 * const ownClient: BackfillClient = { medplum: createMedplumClient({ baseUrl, clientId: backfillId, clientSecret: backfillSecret }) };
 * await writer.backfill({ resourceType: 'Patient', unit: 'north', direction: 'to-medplum', ownClient });
 * ```
 */
export interface BackfillClient {
  /**
   * The client, logged in as its own client application (build it with `createMedplumClient`,
   * as the writer's: the library owns retries and needs real HTTP statuses).
   */
  readonly medplum: MedplumClient;
  /**
   * The quota pacer of that client's user; give the same one to every backfill using the client
   * at once. @default a pacer of its own with no reserve (nothing live shares the user)
   */
  readonly pacer?: QuotaPacer | undefined;
}

/**
 * A drainer of one outbox lane on a client of a backfill's own, started and stopped by the
 * backfill (the writer's `Drainer` is one).
 *
 * @example
 * ```ts
 * const drainer: LaneDrainer = laneDrainers('backfill:42', { medplum, pacer });
 * drainer.start();
 * await drainer.stop();
 * ```
 */
export interface LaneDrainer {
  start(): void;
  stop(): Promise<void>;
  notify(): void;
}

/**
 * What a writer gives its job context so that a backfill on a client of its own can apply its
 * writes on that client: a drainer of the lane, with the writer's mirror path. Applications do
 * not implement it; `writer.backfill` passes the writer's.
 *
 * @example
 * ```ts
 * const drainer = ctx.laneDrainers?.('backfill:42', { medplum: backfillClient, pacer: new QuotaPacer() });
 * ```
 */
export type LaneDrainers = (lane: string, client: Required<BackfillClient>) => LaneDrainer;

/** How long a process's hold of a lane lasts unless renewed (renewed every third of it). */
const LANE_HOLD_MS = 30_000;

/** How often a backfill looks at its lane while waiting for it to drain. */
const LANE_POLL_MS = 200;

/**
 * The backfill's client of its own, checked, with its pacer; `undefined` without one.
 *
 * @param ctx - The job context (it must be a writer's).
 * @param given - The `ownClient` option.
 * @returns The client and pacer.
 * @throws {@link InvalidInputError} naming `ownClient`.
 */
export function ownClientOf<L>(
  ctx: JobContext<L>,
  given: BackfillClient | undefined,
): Required<BackfillClient> | undefined {
  if (given === undefined) return undefined;
  checkOptions(given, 'ownClient', 'input', { medplum: anObject, pacer: anObject }, 'ownClient.');
  if (typeof (given.medplum as { executeBatch?: unknown } | undefined)?.executeBatch !== 'function')
    throw new InvalidInputError('ownClient.medplum', 'must be a MedplumClient');
  if (ctx.laneDrainers === undefined)
    throw new InvalidInputError(
      'ownClient',
      "needs a writer's mirror path to apply the writes on it: use writer.backfill (a stand-alone operator or a context built by hand has none yet)",
    );
  return { medplum: given.medplum, pacer: given.pacer ?? new QuotaPacer({ reserve: 0 }) };
}

/**
 * A backfill's lane while it runs on a client of its own: held in the journal (renewed), with
 * its drainer running on that client, until {@link OwnLane.close}.
 */
export class OwnLane {
  readonly name: string;
  readonly #store: SyncStore;
  readonly #owner: string;
  readonly #drainer: LaneDrainer;
  readonly #renewing: ReturnType<typeof setInterval>;

  private constructor(store: SyncStore, name: string, owner: string, drainer: LaneDrainer) {
    this.#store = store;
    this.name = name;
    this.#owner = owner;
    this.#drainer = drainer;
    this.#renewing = setInterval(() => {
      // A failed renewal is tried again a third of a hold later; a hold that lapses meanwhile
      // lets the writer's drainers take the lane's entries, which loses nothing.
      store.holdLane(name, owner, LANE_HOLD_MS).catch(() => undefined);
    }, LANE_HOLD_MS / 3);
    this.#renewing.unref();
  }

  /**
   * Holds the job's lane for this process and starts its drainer on the client.
   *
   * @param ctx - The job context (with `laneDrainers`).
   * @param jobId - The job.
   * @param client - The client of its own and its pacer.
   * @param workerId - This worker's name, if given.
   * @returns The lane, held.
   */
  static async open<L>(
    ctx: JobContext<L>,
    jobId: string,
    client: Required<BackfillClient>,
    workerId: string | undefined,
  ): Promise<OwnLane> {
    const { laneDrainers } = ctx;
    if (laneDrainers === undefined) throw new InvalidInputError('ownClient', "needs a writer's mirror path");
    const name = `backfill:${jobId}`;
    const owner = workerId ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    await ctx.store.holdLane(name, owner, LANE_HOLD_MS);
    const drainer = laneDrainers(name, client);
    drainer.start();
    return new OwnLane(ctx.store, name, owner, drainer);
  }

  /**
   * Waits until the lane holds fewer than `limit` entries (its drainer applies them), or the
   * signal aborts.
   *
   * @param limit - The most entries the lane may hold.
   * @param signal - Stops waiting.
   */
  async below(limit: number, signal: AbortSignal | undefined): Promise<void> {
    while (signal?.aborted !== true && (await this.#store.laneCount(this.name)) >= limit) {
      this.#drainer.notify();
      await new Promise((resolve) => setTimeout(resolve, LANE_POLL_MS));
    }
  }

  /**
   * Stops the drainer once its leases are recorded, and gives the lane up: what is left in it
   * (a job paused, cancelled or stopped by its signal) is claimed by every drainer from then on.
   */
  async close(): Promise<void> {
    clearInterval(this.#renewing);
    try {
      await this.#drainer.stop();
    } finally {
      await this.#store.releaseLane(this.name, this.#owner);
    }
  }
}

import type { Lease } from './outbox.ts';

/** What {@link MarkQueue} runs: several marks in one statement, or one alone. */
export interface MarkRunner {
  /**
   * Records several marks at once (of distinct entries), never waiting for a lock on an entry:
   * per mark `true` (recorded), `false` (fenced: the lease is no longer current) or `skipped`
   * (its entry was locked; record it with `one`).
   */
  many(marks: readonly { readonly lease: Lease; readonly hash: string }[]): Promise<(boolean | 'skipped')[]>;
  /** Records one mark, waiting for its entry's lock if need be; `false` when fenced. */
  one(lease: Lease, hash: string): Promise<boolean>;
}

interface Waiting {
  readonly lease: Lease;
  readonly hash: string;
  readonly resolve: (marked: boolean) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Group commit for `SyncStore.markApplying`: the marks asked for in one turn of the event loop
 * go together, in one statement. Every write of a mirror is marked just before it is sent
 * (creates included, so that a replay can tell a dead worker's create from an edit made since),
 * and the mirrors of one claimed batch reach their writes in the same turn: one statement marks
 * them all, and their writes then leave together again, so the Medplum side's bundler still
 * sends them in one batch `Bundle`. A mark alone in its turn goes alone. Like the completions'
 * queue, a statement never waits for a lock on an entry: one held by an application's
 * transaction is marked on its own, as is each mark of a batch whose statement failed.
 *
 * @example
 * ```ts
 * const marks = new MarkQueue({ many: (batch) => markApplyingMany(sql, tables, batch), one: (lease, hash) => markApplying(sql, tables, lease, hash) });
 * if (!(await marks.mark(lease, 'sha256:…'))) throw new Error('lease taken over');
 * ```
 */
export class MarkQueue {
  /** Most marks in one statement. */
  static readonly MAX_BATCH = 64;
  readonly #runner: MarkRunner;
  #waiting: Waiting[] = [];
  #scheduled = false;

  /** @param runner - Runs the statements. */
  constructor(runner: MarkRunner) {
    this.#runner = runner;
  }

  /**
   * Records the hash a lease is about to write, with the others asked for in this turn.
   *
   * @param lease - The lease.
   * @param hash - The content hash.
   * @returns Whether the lease was still current (`false`: fenced).
   */
  mark(lease: Lease, hash: string): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.#waiting.push({ lease, hash, resolve, reject });
      if (this.#scheduled) return;
      this.#scheduled = true;
      setImmediate(() => {
        this.#scheduled = false;
        this.#flush();
      });
    });
  }

  #flush(): void {
    const waiting = this.#waiting;
    this.#waiting = [];
    // One statement per batch of distinct entries: a second mark of one entry in the same turn
    // (never seen from one mirror, which awaits each) goes in the next batch, after the first.
    let rest = waiting;
    const batches: Waiting[][] = [];
    while (rest.length > 0) {
      const ids = new Set<string>();
      const batch: Waiting[] = [];
      const later: Waiting[] = [];
      for (const one of rest) {
        if (batch.length < MarkQueue.MAX_BATCH && !ids.has(one.lease.entry.id)) {
          ids.add(one.lease.entry.id);
          batch.push(one);
        } else later.push(one);
      }
      batches.push(batch);
      rest = later;
    }
    void batches.reduce<Promise<void>>(
      (previous, batch) => previous.then(() => this.#send(batch)),
      Promise.resolve(),
    );
  }

  async #send(batch: readonly Waiting[]): Promise<void> {
    const [first] = batch;
    if (batch.length === 1 && first !== undefined) {
      await this.#alone(first);
      return;
    }
    let outcomes: (boolean | 'skipped')[];
    try {
      outcomes = await this.#runner.many(batch);
    } catch {
      // Nothing of the batch was written: each mark goes alone (and reports its own failure).
      await Promise.all(batch.map((waiting) => this.#alone(waiting)));
      return;
    }
    await Promise.all(
      batch.map(async (waiting, i) => {
        const outcome = outcomes[i];
        if (outcome === 'skipped') await this.#alone(waiting);
        else if (outcome === undefined) waiting.reject(new Error('no outcome for a mark'));
        else waiting.resolve(outcome);
      }),
    );
  }

  async #alone(waiting: Waiting): Promise<void> {
    try {
      waiting.resolve(await this.#runner.one(waiting.lease, waiting.hash));
    } catch (err) {
      waiting.reject(err);
    }
  }
}

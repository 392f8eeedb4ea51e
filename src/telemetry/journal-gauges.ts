import type {
  Attributes,
  BatchObservableCallback,
  BatchObservableResult,
  Meter,
  ObservableGauge,
} from '@opentelemetry/api';
import type { Job } from '../journal/job.ts';
import type { OutboxBacklog } from '../journal/outbox.ts';
import type { SyncStore } from '../journal/sync-store.ts';
import { attributeValue as v } from './attribute-values.ts';

/** The gauges, by the key the callback observes them with. */
const GAUGES = {
  depth: {
    name: 'dualwrite.outbox.depth',
    description: 'Outbox entries not applied yet, by state (pending, waiting, leased)',
    unit: '{entry}',
  },
  oldest: {
    name: 'dualwrite.outbox.oldest_age',
    description: 'Age of the oldest outbox entry not applied yet',
    unit: 's',
  },
  pages: {
    name: 'dualwrite.job.pages',
    description: 'Pages of running and paused backfill and reconcile jobs, known so far',
    unit: '{page}',
  },
  pagesDone: {
    name: 'dualwrite.job.pages_done',
    description: 'Pages of running and paused jobs completed',
    unit: '{page}',
  },
  records: {
    name: 'dualwrite.job.records',
    description: 'Records running and paused jobs handled, by outcome',
    unit: '{record}',
  },
  cursorAge: {
    name: 'dualwrite.feed.cursor_age',
    description: 'Time since a change feed this instance holds last read to its end',
    unit: 's',
  },
} as const;

type GaugeKey = keyof typeof GAUGES;

/** What one read of the journal found. */
interface JournalFigures {
  readonly backlog: readonly OutboxBacklog[];
  readonly jobs: readonly Job[];
}

/**
 * The gauges read from the journal — outbox depth and oldest age per unit and resource type,
 * progress of running and paused jobs — and the change feeds' cursor age. One batch callback
 * reads the journal (two queries) at most once per `intervalMs`, however often a reader
 * collects; collections in between report the last figures. Registered while the writer runs.
 *
 * @example
 * ```ts
 * const gauges = new JournalGauges(meter, store, 10_000, metrics.feedsReadAt);
 * gauges.register();
 * gauges.unregister();
 * ```
 */
export class JournalGauges {
  readonly #meter: Meter;
  readonly #store: SyncStore;
  readonly #intervalMs: number;
  readonly #feedsReadAt: ReadonlyMap<string, number>;
  readonly #gauges: Readonly<Record<GaugeKey, ObservableGauge>>;
  readonly #reported = new ReportedSets();
  readonly #callback: BatchObservableCallback;
  #registered = false;
  #figures: JournalFigures | undefined;
  #readAt = Number.NEGATIVE_INFINITY;
  #reading: Promise<void> | undefined;

  /**
   * @param meter - Where the gauges live.
   * @param store - The journal.
   * @param intervalMs - The shortest time between two reads of the journal.
   * @param feedsReadAt - When each feed (`side`, NUL, `type`) last read to its end.
   */
  constructor(meter: Meter, store: SyncStore, intervalMs: number, feedsReadAt: ReadonlyMap<string, number>) {
    this.#meter = meter;
    this.#store = store;
    this.#intervalMs = intervalMs;
    this.#feedsReadAt = feedsReadAt;
    const entries = Object.entries(GAUGES) as [GaugeKey, (typeof GAUGES)[GaugeKey]][];
    this.#gauges = Object.fromEntries(
      entries.map(([key, { name, description, unit }]) => [
        key,
        meter.createObservableGauge(name, { description, unit }),
      ]),
    ) as Record<GaugeKey, ObservableGauge>;
    this.#callback = async (result) => {
      const figures = await this.#read();
      const observe = (gauge: ObservableGauge, value: number, attributes: Attributes): void =>
        this.#reported.observe(result, gauge, value, attributes);
      this.#observeFeeds(observe);
      const { depth, oldest, pages, pagesDone, records } = this.#gauges;
      const now = Date.now();
      for (const line of figures?.backlog ?? []) {
        const where = { unit: v(line.unit), resource_type: v(line.resourceType), target: v(line.target) };
        observe(depth, line.pending, { ...where, state: 'pending' });
        observe(depth, line.waiting, { ...where, state: 'waiting' });
        observe(depth, line.leased, { ...where, state: 'leased' });
        // A line with only dead letters has no entry in the outbox: no age.
        if (line.oldestAt !== undefined)
          observe(oldest, Math.max(0, now - Date.parse(line.oldestAt)) / 1000, where);
      }
      for (const [key, job] of jobTotals(figures?.jobs ?? [])) {
        const attributes = JSON.parse(key) as Attributes;
        observe(pages, job.pages, attributes);
        observe(pagesDone, job.pagesDone, attributes);
        for (const [outcome, count] of Object.entries(job.counts))
          observe(records, count, { ...attributes, outcome: v(outcome) });
      }
      // Without figures (the journal unreachable) nothing is known to be gone.
      if (figures !== undefined) this.#reported.settle(result);
      else this.#reported.forget();
    };
  }

  /** Starts reporting (again); does nothing when already reporting. */
  register(): void {
    if (this.#registered) return;
    this.#registered = true;
    this.#meter.addBatchObservableCallback(this.#callback, Object.values(this.#gauges));
  }

  /** Stops reporting. */
  unregister(): void {
    if (!this.#registered) return;
    this.#registered = false;
    this.#meter.removeBatchObservableCallback(this.#callback, Object.values(this.#gauges));
  }

  #observeFeeds(observe: (gauge: ObservableGauge, value: number, attributes: Attributes) => void): void {
    const now = Date.now();
    for (const [key, at] of this.#feedsReadAt) {
      const [side = '', resourceType = ''] = key.split('\u0000');
      observe(this.#gauges.cursorAge, (now - at) / 1000, { side, resource_type: resourceType });
    }
  }

  /** The journal's figures, read again when the last read is older than the interval. */
  async #read(): Promise<JournalFigures | undefined> {
    if (Date.now() - this.#readAt >= this.#intervalMs) {
      this.#reading ??= (async () => {
        try {
          const [backlog, running, paused] = await Promise.all([
            this.#store.outboxBacklog(),
            this.#store.listJobs({ state: 'running' }),
            this.#store.listJobs({ state: 'paused' }),
          ]);
          this.#figures = { backlog, jobs: [...running, ...paused] };
        } catch {
          // The journal unreachable: no figures rather than stale ones (the drainer's
          // journal-error events say why).
          this.#figures = undefined;
        } finally {
          this.#readAt = Date.now();
          this.#reading = undefined;
        }
      })();
      await this.#reading;
    }
    return this.#figures;
  }
}

/**
 * The attribute sets each gauge reported at a collection. The SDK keeps reporting a set's last
 * value until it is observed again: a unit whose backlog emptied, a job that finished, must go
 * to 0, not stay where it was — so a collection reports 0 for each set the last one reported
 * and this one did not.
 */
class ReportedSets {
  #last = new Map<ObservableGauge, Map<string, Attributes>>();
  #now = new Map<ObservableGauge, Map<string, Attributes>>();

  /** Observes a value and remembers its attribute set. */
  observe(
    result: BatchObservableResult,
    gauge: ObservableGauge,
    value: number,
    attributes: Attributes,
  ): void {
    result.observe(gauge, value, attributes);
    const sets = this.#now.get(gauge) ?? new Map<string, Attributes>();
    sets.set(JSON.stringify(attributes), attributes);
    this.#now.set(gauge, sets);
  }

  /** Reports 0 for each set gone since the last collection; this collection's sets become the last. */
  settle(result: BatchObservableResult): void {
    for (const [gauge, before] of this.#last)
      for (const [key, attributes] of before)
        if (this.#now.get(gauge)?.has(key) !== true) result.observe(gauge, 0, attributes);
    this.#last = this.#now;
    this.#now = new Map();
  }

  /** Drops this collection's sets, keeping the last ones (nothing is known to be gone). */
  forget(): void {
    this.#now = new Map();
  }
}

/** Jobs summed per kind, resource type, unit, direction and state (the key is their JSON). */
function jobTotals(
  jobs: readonly Job[],
): Map<string, { pages: number; pagesDone: number; counts: Record<string, number> }> {
  const totals = new Map<string, { pages: number; pagesDone: number; counts: Record<string, number> }>();
  for (const job of jobs) {
    const key = JSON.stringify({
      kind: v(job.kind),
      resource_type: v(job.resourceType),
      unit: job.unit === undefined ? 'all' : v(job.unit),
      direction: v(job.direction),
      state: v(job.state),
    });
    const total = totals.get(key) ?? { pages: 0, pagesDone: 0, counts: {} };
    total.pages += job.pages;
    total.pagesDone += job.pagesDone;
    for (const [outcome, count] of Object.entries(job.counts))
      total.counts[outcome] = (total.counts[outcome] ?? 0) + count;
    totals.set(key, total);
  }
  return totals;
}

import type { Attributes, Counter, Histogram, Meter } from '@opentelemetry/api';
import type { DualWriteEvent } from '../dual-write-event.ts';
import type { EventSink } from '../events/event-sink.ts';
import { attributeValue as v } from './attribute-values.ts';

/*
 * Bucket bounds in seconds. Lag: an inline mirror lands within tens of milliseconds, a drained
 * one within a poll interval or two, a backlog in minutes to hours. Rate-limit waits: Medplum's
 * windows reset within a minute.
 */
const LAG_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];
const WAIT_BUCKETS = [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** An instrument of the table: a counter, or a histogram with its bucket bounds. */
type InstrumentSpec =
  | { readonly kind: 'counter'; readonly name: string; readonly description: string; readonly unit: string }
  | {
      readonly kind: 'histogram';
      readonly name: string;
      readonly description: string;
      readonly unit: string;
      readonly buckets: readonly number[];
    };

/** Every instrument the events feed, by the key the recordings below name. */
const INSTRUMENTS = {
  mirrors: {
    kind: 'counter',
    name: 'dualwrite.mirrors',
    description: 'Attempts at outbox entries, inline or drained, by how they ended',
    unit: '{mirror}',
  },
  lag: {
    kind: 'histogram',
    name: 'dualwrite.mirror.lag',
    description: 'Time from a write to its mirror being applied',
    unit: 's',
    buckets: LAG_BUCKETS,
  },
  retries: {
    kind: 'counter',
    name: 'dualwrite.retries',
    description: 'Transient failures retried, by side and HTTP status',
    unit: '{retry}',
  },
  rateLimitWaits: {
    kind: 'histogram',
    name: 'dualwrite.rate_limit.wait',
    description: 'Waits for a rate limit to reset after a 429',
    unit: 's',
    buckets: WAIT_BUCKETS,
  },
  deadLetters: {
    kind: 'counter',
    name: 'dualwrite.dead_letters',
    description: 'Entries moved to the dead-letter queue, by reason class',
    unit: '{entry}',
  },
  conflicts: {
    kind: 'counter',
    name: 'dualwrite.conflicts',
    description: 'Records changed on both sides since the last sync, by resolver',
    unit: '{conflict}',
  },
  divergences: {
    kind: 'counter',
    name: 'dualwrite.divergences',
    description: 'Copies found to differ when they should agree',
    unit: '{divergence}',
  },
  feedChanges: {
    kind: 'counter',
    name: 'dualwrite.feed.changes',
    description: 'Changes the change feeds read',
    unit: '{change}',
  },
  feedEchoes: {
    kind: 'counter',
    name: 'dualwrite.feed.echoes',
    description: "Changes read that were the writer's own mirrors",
    unit: '{change}',
  },
  feedReads: {
    kind: 'counter',
    name: 'dualwrite.feed.reads',
    description: 'Reads of a change feed, by whether they failed',
    unit: '{read}',
  },
} as const satisfies Record<string, InstrumentSpec>;

type InstrumentKey = keyof typeof INSTRUMENTS;

/** One measurement an event makes: which instrument, how much, with which attributes. */
type Measurement = readonly [instrument: InstrumentKey, value: number, attributes: Attributes];

type EventOf<T extends DualWriteEvent['type']> = Extract<DualWriteEvent, { readonly type: T }>;

/**
 * What each event type measures. Attribute values are names and codes only (see
 * `attributeValue`); an event type not listed measures nothing.
 */
const MEASUREMENTS: { readonly [T in DualWriteEvent['type']]?: (event: EventOf<T>) => Measurement[] } = {
  'mirror-settled': (event) => {
    const where = { unit: v(event.unit), resource_type: v(event.resourceType), target: v(event.target) };
    return [
      ['mirrors', 1, { ...where, outcome: v(event.status) }],
      ...(event.lagMs === undefined ? [] : [['lag', event.lagMs / 1000, where] as const]),
    ];
  },
  retry: (event) => [
    ['retries', 1, { side: v(event.side), resource_type: v(event.resourceType), status: v(event.status) }],
    ...(event.status === 429 && event.delayMs !== undefined
      ? [['rateLimitWaits', event.delayMs / 1000, { side: v(event.side) }] as const]
      : []),
  ],
  'dead-letter': (event) => [
    [
      'deadLetters',
      1,
      {
        unit: v(event.unit),
        resource_type: v(event.resourceType),
        target: v(event.target),
        reason: v(event.error),
        status: v(event.status),
      },
    ],
  ],
  conflict: (event) => [
    [
      'conflicts',
      1,
      {
        unit: v(event.unit),
        resource_type: v(event.resourceType),
        resolver: v(event.resolvedBy),
        resolution: v(event.resolution),
      },
    ],
  ],
  divergence: (event) => [
    [
      'divergences',
      1,
      { unit: v(event.unit), resource_type: v(event.resourceType), source: v(event.source) },
    ],
  ],
  'feed-read': (event) => {
    const feed = { side: v(event.side), resource_type: v(event.resourceType) };
    // A read that saw nothing adds no attribute set to the change counters.
    return [
      ['feedReads', 1, { ...feed, failed: String(event.failed) }],
      ...(event.seen > 0 ? [['feedChanges', event.seen, feed] as const] : []),
      ...(event.echoes > 0 ? [['feedEchoes', event.echoes, feed] as const] : []),
    ];
  },
};

/**
 * The counters and histograms derived from a writer's events: each event type feeds the
 * instruments it speaks of (the table above), with attributes that are names and codes only.
 *
 * @example
 * ```ts
 * const metrics = new EventMetrics(meter);
 * new EventPublisher(store, [metrics.sink, ...sinks], undefined);
 * ```
 */
export class EventMetrics {
  readonly #instruments: Readonly<Record<InstrumentKey, Counter | Histogram>>;
  /** When each feed (`side`, NUL, `type`) last read to its end, for the cursor-age gauge. */
  readonly feedsReadAt = new Map<string, number>();

  /** A sink that records each event (values already hidden, as for any sink). */
  readonly sink: EventSink = { handle: (event) => this.record(event) };

  /**
   * @param meter - Where the instruments live.
   */
  constructor(meter: Meter) {
    const entries = Object.entries(INSTRUMENTS) as [InstrumentKey, InstrumentSpec][];
    this.#instruments = Object.fromEntries(
      entries.map(([key, spec]) => [
        key,
        spec.kind === 'counter'
          ? meter.createCounter(spec.name, { description: spec.description, unit: spec.unit })
          : meter.createHistogram(spec.name, {
              description: spec.description,
              unit: spec.unit,
              advice: { explicitBucketBoundaries: [...spec.buckets] },
            }),
      ]),
    ) as Record<InstrumentKey, Counter | Histogram>;
  }

  /**
   * Records one event.
   *
   * @param event - The event (values hidden).
   */
  record(event: DualWriteEvent): void {
    const measure = MEASUREMENTS[event.type] as ((event: DualWriteEvent) => Measurement[]) | undefined;
    for (const [key, value, attributes] of measure?.(event) ?? []) {
      const instrument = this.#instruments[key];
      if (INSTRUMENTS[key].kind === 'counter') (instrument as Counter).add(value, attributes);
      else (instrument as Histogram).record(value, attributes);
    }
    if (event.type === 'feed-read' && !event.failed)
      this.feedsReadAt.set(`${v(event.side)}\u0000${v(event.resourceType)}`, Date.now());
  }
}

import type { Counter, Histogram, Meter } from '@opentelemetry/api';
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

/**
 * The counters and histograms derived from a writer's events: each event type feeds the
 * instruments it speaks of, with attributes that are names and codes only.
 *
 * @example
 * ```ts
 * const metrics = new EventMetrics(meter);
 * new EventPublisher(store, [metrics.sink, ...sinks], undefined);
 * ```
 */
export class EventMetrics {
  readonly #mirrors: Counter;
  readonly #lag: Histogram;
  readonly #retries: Counter;
  readonly #rateLimitWaits: Histogram;
  readonly #deadLetters: Counter;
  readonly #conflicts: Counter;
  readonly #divergences: Counter;
  readonly #feedChanges: Counter;
  readonly #feedEchoes: Counter;
  readonly #feedReads: Counter;
  /** When each feed (`side:type`) last read to its end, for the cursor-age gauge. */
  readonly feedsReadAt = new Map<string, number>();

  /** A sink that records each event (values already hidden, as for any sink). */
  readonly sink: EventSink = { handle: (event) => this.record(event) };

  /**
   * @param meter - Where the instruments live.
   */
  constructor(meter: Meter) {
    this.#mirrors = meter.createCounter('dualwrite.mirrors', {
      description: 'Attempts at outbox entries, inline or drained, by how they ended',
      unit: '{mirror}',
    });
    this.#lag = meter.createHistogram('dualwrite.mirror.lag', {
      description: 'Time from a write to its mirror being applied',
      unit: 's',
      advice: { explicitBucketBoundaries: LAG_BUCKETS },
    });
    this.#retries = meter.createCounter('dualwrite.retries', {
      description: 'Transient failures retried, by side and HTTP status',
      unit: '{retry}',
    });
    this.#rateLimitWaits = meter.createHistogram('dualwrite.rate_limit.wait', {
      description: 'Waits for a rate limit to reset after a 429',
      unit: 's',
      advice: { explicitBucketBoundaries: WAIT_BUCKETS },
    });
    this.#deadLetters = meter.createCounter('dualwrite.dead_letters', {
      description: 'Entries moved to the dead-letter queue, by reason class',
      unit: '{entry}',
    });
    this.#conflicts = meter.createCounter('dualwrite.conflicts', {
      description: 'Records changed on both sides since the last sync, by resolver',
      unit: '{conflict}',
    });
    this.#divergences = meter.createCounter('dualwrite.divergences', {
      description: 'Copies found to differ when they should agree',
      unit: '{divergence}',
    });
    this.#feedChanges = meter.createCounter('dualwrite.feed.changes', {
      description: 'Changes the change feeds read',
      unit: '{change}',
    });
    this.#feedEchoes = meter.createCounter('dualwrite.feed.echoes', {
      description: "Changes read that were the writer's own mirrors",
      unit: '{change}',
    });
    this.#feedReads = meter.createCounter('dualwrite.feed.reads', {
      description: 'Reads of a change feed, by whether they failed',
      unit: '{read}',
    });
  }

  /**
   * Records one event.
   *
   * @param event - The event (values hidden).
   */
  record(event: DualWriteEvent): void {
    switch (event.type) {
      case 'mirror-settled': {
        const where = { unit: v(event.unit), resource_type: v(event.resourceType), target: v(event.target) };
        this.#mirrors.add(1, { ...where, outcome: v(event.status) });
        if (event.lagMs !== undefined) this.#lag.record(event.lagMs / 1000, where);
        return;
      }
      case 'retry':
        this.#retries.add(1, {
          side: v(event.side),
          resource_type: v(event.resourceType),
          status: v(event.status),
        });
        if (event.status === 429 && event.delayMs !== undefined)
          this.#rateLimitWaits.record(event.delayMs / 1000, { side: v(event.side) });
        return;
      case 'dead-letter':
        this.#deadLetters.add(1, {
          unit: v(event.unit),
          resource_type: v(event.resourceType),
          target: v(event.target),
          reason: v(event.error),
          status: v(event.status),
        });
        return;
      case 'conflict':
        this.#conflicts.add(1, {
          unit: v(event.unit),
          resource_type: v(event.resourceType),
          resolver: v(event.resolvedBy),
          resolution: v(event.resolution),
        });
        return;
      case 'divergence':
        this.#divergences.add(1, {
          unit: v(event.unit),
          resource_type: v(event.resourceType),
          source: v(event.source),
        });
        return;
      case 'feed-read': {
        const feed = { side: v(event.side), resource_type: v(event.resourceType) };
        this.#feedReads.add(1, { ...feed, failed: String(event.failed) });
        if (event.seen > 0) this.#feedChanges.add(event.seen, feed);
        if (event.echoes > 0) this.#feedEchoes.add(event.echoes, feed);
        if (!event.failed) this.feedsReadAt.set(`${feed.side}\u0000${feed.resource_type}`, Date.now());
        return;
      }
      default:
        return;
    }
  }
}

import type { DualWriteEvent } from '../dual-write-event.ts';
import type { StoredEvent, SyncStore } from '../journal/sync-store.ts';
import { redactEvent } from './event-redaction.ts';
import type { EventSink } from './event-sink.ts';
import type { ValueHashOptions } from './redact.ts';

/** Events the store keeps: what an operator and readiness figures look back on. */
const RECORDED: ReadonlySet<DualWriteEvent['type']> = new Set([
  'conflict',
  'resolved',
  'divergence',
  'dead-letter',
]);

/**
 * Hands a writer's events to its sinks, each redacted as that sink asks, and records the
 * disagreements (`conflict`, `resolved`, `divergence`, `dead-letter`) in the store, always
 * redacted. Internal to the writer.
 *
 * @example
 * ```ts
 * const events = new EventPublisher(store, [loggerSink(logger)], undefined);
 * await events.publish({ type: 'resolved', … });
 * ```
 */
export class EventPublisher {
  readonly #store: SyncStore;
  readonly #sinks: readonly EventSink[];
  readonly #hash: ValueHashOptions | undefined;

  /**
   * @param store - Where disagreements are recorded.
   * @param sinks - Where every event goes.
   * @param hash - How hidden values are hashed.
   */
  constructor(store: SyncStore, sinks: readonly EventSink[], hash: ValueHashOptions | undefined) {
    this.#store = store;
    this.#sinks = sinks;
    this.#hash = hash;
  }

  /**
   * Publishes an event: records it in the store when it is a disagreement (and waits for that),
   * then hands it to every sink without waiting; a sink's failure is ignored.
   *
   * @param event - The event, with values.
   * @returns When the store has recorded it.
   */
  async publish(event: DualWriteEvent): Promise<void> {
    if (RECORDED.has(event.type)) {
      await this.#store.appendEvent(storedOf(redactEvent(event, { revealValues: false, hash: this.#hash })));
    }
    this.emit(event);
  }

  /**
   * Hands an event to every sink, without recording it.
   *
   * @param event - The event, with values.
   */
  emit(event: DualWriteEvent): void {
    for (const sink of this.#sinks) {
      try {
        const shown = redactEvent(event, { revealValues: sink.revealValues === true, hash: this.#hash });
        const handled = sink.handle(shown);
        if (handled instanceof Promise) handled.catch(() => undefined);
      } catch {
        // An observer's failure must never fail a write.
      }
    }
  }
}

function storedOf(event: DualWriteEvent): StoredEvent {
  const { type, ...data } = event;
  const record = data as { resourceType?: string; legacyId?: string; unit?: string };
  return { type, resourceType: record.resourceType, legacyId: record.legacyId, unit: record.unit, data };
}

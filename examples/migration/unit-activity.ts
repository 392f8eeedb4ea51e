/**
 * What happened in each unit during the demo: writes through the service, writes made directly
 * in each system, and the writer's events (mirrors, conflicts, divergence, dead letters).
 * Events carry ids, paths and hashes only, so nothing here holds patient data.
 */
import type { DualWriteEvent } from '../../src/index.ts';

/** One unit's counts. */
export interface UnitActivity {
  /** Through the `DualWriter`. */
  readonly service: { creates: number; updates: number; reads: number; failed: number };
  /** Straight into the legacy table (its own screens and SQL). */
  readonly legacy: { inserts: number; updates: number; deletes: number };
  /** Straight into Medplum (the Medplum app, a separate client). */
  readonly medplum: { creates: number; updates: number };
  /** Mirrors applied: inline by the call, or by the drainer (from the outbox or a feed). */
  readonly mirrors: { inline: number; drained: number };
  /** Conflict events, by resolver and decision (`three-way-merge → merged`). */
  readonly conflicts: Map<string, number>;
  /** The records the conflict events were about. */
  readonly conflicted: Set<string>;
  resolved: number;
  /** Records the demo edited in both systems between two syncs: different fields, or the same one. */
  readonly bothSides: { differentFields: number; sameField: number; authorityKept: number };
  /** Divergence findings, by source and the paths that differed (`shadow-read: birthDate`). */
  readonly divergence: Map<string, number>;
  deadLetters: number;
}

/** Counts per unit, fed by the writer's events and by the staff. */
export class ActivityLog {
  readonly #units = new Map<string, UnitActivity>();
  /** Retries the writer made, by side and status (`medplum 503`). */
  readonly retries = new Map<string, number>();

  /**
   * The counts of one unit (created on first use).
   *
   * @param unit - The unit.
   * @returns Its counts, to read or to add to.
   */
  of(unit: string): UnitActivity {
    let activity = this.#units.get(unit);
    if (activity === undefined) {
      activity = {
        service: { creates: 0, updates: 0, reads: 0, failed: 0 },
        legacy: { inserts: 0, updates: 0, deletes: 0 },
        medplum: { creates: 0, updates: 0 },
        mirrors: { inline: 0, drained: 0 },
        conflicts: new Map(),
        conflicted: new Set(),
        resolved: 0,
        bothSides: { differentFields: 0, sameField: 0, authorityKept: 0 },
        divergence: new Map(),
        deadLetters: 0,
      };
      this.#units.set(unit, activity);
    }
    return activity;
  }

  /**
   * Counts one writer event (give it to the writer as `callbackSink(log.record)`).
   *
   * @param event - The event.
   */
  readonly record = (event: DualWriteEvent): void => {
    switch (event.type) {
      case 'retry': {
        const key = `${event.side} ${event.status === undefined ? 'no response' : String(event.status)}`;
        this.retries.set(key, (this.retries.get(key) ?? 0) + 1);
        return;
      }
      case 'mirrored':
        if (event.mirror === 'applied') this.of(event.unit).mirrors.inline += 1;
        return;
      case 'drained':
        if (event.outcome === 'applied') this.of(event.unit).mirrors.drained += 1;
        return;
      case 'conflict': {
        const { conflicts, conflicted } = this.of(event.unit);
        const key = `${event.resolvedBy} → ${event.resolution}`;
        conflicts.set(key, (conflicts.get(key) ?? 0) + 1);
        conflicted.add(`${event.resourceType}/${event.legacyId}`);
        return;
      }
      case 'resolved':
        this.of(event.unit).resolved += 1;
        return;
      case 'divergence': {
        const { divergence } = this.of(event.unit);
        const key = `${event.source}: ${event.differences.map((d) => d.path).join(', ')}`;
        divergence.set(key, (divergence.get(key) ?? 0) + 1);
        return;
      }
      case 'dead-letter':
        this.of(event.unit).deadLetters += 1;
        return;
      case 'mirror-failed':
        return;
    }
  };
}

/**
 * The sum of a map's counts.
 *
 * @param counts - Counts by key.
 * @returns Their total.
 */
export function total(counts: ReadonlyMap<string, number>): number {
  let sum = 0;
  for (const n of counts.values()) sum += n;
  return sum;
}

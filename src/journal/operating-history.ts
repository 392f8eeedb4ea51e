import { percentileOf } from './readiness-evidence.ts';

/*
 * What an operator charts over time: the outbox's backlog (sampled into the journal by whoever
 * records it, one sample per step across instances) and the applied mirrors' lag (read from the
 * readiness samples every instance already stores).
 */

/**
 * The outbox's backlog of one unit at one step of time, as {@link SyncStore.recordBacklog}
 * stored it.
 *
 * @example
 * ```ts
 * for (const s of await store.backlogHistory({ since })) console.log(s.at, s.unit ?? 'all', s.pending);
 * ```
 */
export interface BacklogSample {
  /** The step's start (ISO 8601). */
  readonly at: string;
  /** The unit; `undefined` for the sum over every unit (recorded at every step). */
  readonly unit: string | undefined;
  /** Entries owed and not held by a worker (due, backing off, or waiting for a dependency). */
  readonly pending: number;
  /** Entries a worker held. */
  readonly leased: number;
  /** Open dead letters. */
  readonly dead: number;
}

/**
 * The applied mirrors' lag of one unit over one step of time.
 *
 * @example
 * ```ts
 * for (const p of await store.lagHistory({ since, stepMs: 60_000 })) console.log(p.at, p.unit, p.p95);
 * ```
 */
export interface LagPoint {
  /** The step's start (ISO 8601). */
  readonly at: string;
  readonly unit: string;
  /** Median lag in milliseconds, from the write's journal entry to its applied mirror. */
  readonly p50: number;
  /** 95th percentile of the lag in milliseconds. */
  readonly p95: number;
  /** Applied mirrors sampled in the step. */
  readonly samples: number;
}

/**
 * How {@link SyncStore.recordBacklog} samples.
 *
 * @example
 * ```ts
 * await store.recordBacklog({ stepMs: 60_000, keepMs: 30 * 86_400_000 });
 * ```
 */
export interface BacklogRecording {
  /** The step: one sample per unit per step, whoever records first in it. */
  readonly stepMs: number;
  /** Samples older than this are deleted. */
  readonly keepMs: number;
}

/**
 * The start of the step of length `stepMs` holding `epochMs`.
 *
 * @param epochMs - An instant, in milliseconds since the epoch.
 * @param stepMs - The step.
 * @returns The step's start, in milliseconds since the epoch.
 * @example
 * ```ts
 * stepStart(90_500, 60_000); // 60_000
 * ```
 */
export function stepStart(epochMs: number, stepMs: number): number {
  return Math.floor(epochMs / stepMs) * stepMs;
}

/**
 * Lag samples grouped by step and unit, as `PostgresStore` groups them in SQL: for stores that
 * keep their samples in memory.
 *
 * @param samples - Lag samples with their instants (milliseconds since the epoch).
 * @param stepMs - The step.
 * @returns The points, by step then unit.
 * @example
 * ```ts
 * lagPoints([{ unit: 'north', value: 120, at: Date.now() }], 60_000);
 * ```
 */
export function lagPoints(
  samples: readonly { readonly unit: string; readonly value: number; readonly at: number }[],
  stepMs: number,
): LagPoint[] {
  const groups = new Map<string, { at: string; unit: string; values: number[] }>();
  for (const sample of samples) {
    const at = new Date(stepStart(sample.at, stepMs)).toISOString();
    const key = `${at}\u0000${sample.unit}`;
    const group = groups.get(key) ?? { at, unit: sample.unit, values: [] };
    group.values.push(sample.value);
    groups.set(key, group);
  }
  return [...groups.values()]
    .sort((a, b) => (a.at === b.at ? (a.unit < b.unit ? -1 : 1) : a.at < b.at ? -1 : 1))
    .map(({ at, unit, values }) => {
      const sorted = values.sort((a, b) => a - b);
      return {
        at,
        unit,
        p50: percentileOf(sorted, 0.5) ?? 0,
        p95: percentileOf(sorted, 0.95) ?? 0,
        samples: sorted.length,
      };
    });
}

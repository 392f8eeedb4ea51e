/**
 * One line of the bench's output. `name` is fixed from run to run so results can be tracked;
 * `ratio` compares `value` with `baseline`, a reference measured in the same run on the same
 * machine, which is the only comparison the bench claims.
 */
export interface BenchRow {
  /** A stable name, e.g. `async-create-p50`. */
  readonly name: string;
  /** Our figure. */
  readonly value: number;
  /** The unit of `value` and `baseline`, e.g. `ms` or `entries/s`. */
  readonly unit: string;
  /** `value / baseline`. */
  readonly ratio?: number | undefined;
  /** The same figure for the baseline, measured in this run. */
  readonly baseline?: number | undefined;
  /** The stated target, for the table only, e.g. `<= 1.2` (a ratio). */
  readonly target?: RatioTarget | undefined;
  /** What the row measures, for the table only. */
  readonly note?: string | undefined;
}

/** A target on a row's ratio. */
export interface RatioTarget {
  readonly op: '<=' | '>=';
  readonly ratio: number;
}

/**
 * Builds a row comparing ours with a baseline.
 *
 * @param name - The row's stable name.
 * @param unit - The unit of both figures.
 * @param value - Ours.
 * @param baseline - The baseline's.
 * @param extra - A target and a note.
 * @returns The row with its ratio.
 * @example
 * ```ts
 * const row = compared('async-create-p50', 'ms', 1.8, 0.6, { target: { op: '<=', ratio: 1.2 } });
 * ```
 */
export function compared(
  name: string,
  unit: string,
  value: number,
  baseline: number,
  extra: { readonly target?: RatioTarget; readonly note?: string } = {},
): BenchRow {
  return { name, unit, value, baseline, ratio: baseline === 0 ? undefined : value / baseline, ...extra };
}

/**
 * Whether a row meets its target; `undefined` when it has none.
 *
 * @param row - The row.
 * @returns Met, missed, or no target.
 */
export function meetsTarget(row: BenchRow): boolean | undefined {
  if (row.target === undefined || row.ratio === undefined) return undefined;
  return row.target.op === '<=' ? row.ratio <= row.target.ratio : row.ratio >= row.target.ratio;
}

/** What one measurement reports: its rows, and lines of profile detail for the table. */
export interface Measurement {
  readonly rows: readonly BenchRow[];
  readonly details: readonly string[];
}

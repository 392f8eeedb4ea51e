import type { CliTerminal } from './terminal.ts';

/**
 * A column of a human-readable table.
 *
 * @example
 * ```ts
 * const column: Column<{ unit: string }> = { header: 'unit', value: (row) => row.unit };
 * ```
 */
export interface Column<T> {
  readonly header: string;
  readonly value: (row: T) => string | number | undefined;
  /** Numbers read best right-aligned. @default 'left' */
  readonly align?: 'left' | 'right' | undefined;
}

/**
 * Rows as an aligned plain-text table: a header line, then one line per row, columns separated
 * by two spaces, trailing spaces trimmed. An empty cell shows `-`.
 *
 * @param rows - The rows.
 * @param columns - What each column shows.
 * @returns The table, ending with a newline; `(none)` when there are no rows.
 * @example
 * ```ts
 * formatTable([{ unit: 'north', pending: 3 }], [
 *   { header: 'unit', value: (r) => r.unit },
 *   { header: 'pending', value: (r) => r.pending, align: 'right' },
 * ]);
 * // unit   pending
 * // north        3
 * ```
 */
export function formatTable<T>(rows: readonly T[], columns: readonly Column<T>[]): string {
  if (rows.length === 0) return '(none)\n';
  const cells = rows.map((row) => columns.map((column) => String(column.value(row) ?? '-')));
  const widths = columns.map((column, i) =>
    Math.max(column.header.length, ...cells.map((line) => (line[i] ?? '').length)),
  );
  const line = (values: readonly string[]): string =>
    values
      .map((value, i) => {
        const width = widths[i] ?? 0;
        return columns[i]?.align === 'right' ? value.padStart(width) : value.padEnd(width);
      })
      .join('  ')
      .trimEnd();
  return [line(columns.map((column) => column.header)), ...cells.map((values) => line(values)), ''].join(
    '\n',
  );
}

/**
 * A duration as people read it: `850ms`, `42s`, `3m 12s`, `5h 02m`, `2d 03h`.
 *
 * @param ms - Milliseconds; `undefined` shows `-`.
 * @returns The duration.
 * @example
 * ```ts
 * formatDuration(192_000); // '3m 12s'
 * ```
 */
export function formatDuration(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '-';
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const pad = (n: number): string => String(n).padStart(2, '0');
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${pad(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86_400)}d ${pad(Math.floor((s % 86_400) / 3600))}h`;
}

/**
 * Keeps every field of a result in its JSON document: an absent value is `null` rather than a
 * missing field, and so is an unbounded number (`Infinity`: a type never reconciled).
 */
function stableFields(_key: string, value: unknown): unknown {
  if (value === undefined) return null;
  if (typeof value === 'number' && !Number.isFinite(value)) return null;
  return value;
}

/**
 * Where a command's result goes: with `--json` one JSON document on stdout (the command's
 * result object, field names stable), else the human form. Notes (what was done, hints) go to
 * stderr in both modes, so stdout stays one parseable document.
 *
 * @example
 * ```ts
 * output.result({ units }, () => formatTable(units, columns));
 * ```
 */
export class CommandOutput {
  readonly #terminal: CliTerminal;
  /** Whether results are printed as JSON. */
  readonly json: boolean;

  /**
   * @param terminal - Where to write.
   * @param json - `--json` was given.
   */
  constructor(terminal: CliTerminal, json: boolean) {
    this.#terminal = terminal;
    this.json = json;
  }

  /**
   * Prints the command's result.
   *
   * @param document - The JSON form (printed with `--json`).
   * @param human - The human form (printed without it).
   * @example
   * ```ts
   * output.result({ retried: 3 }, () => 'retried 3 dead letters\n');
   * ```
   */
  result(document: unknown, human: () => string): void {
    this.#terminal.stdout.write(this.json ? `${JSON.stringify(document, stableFields, 2)}\n` : human());
  }

  /**
   * A line for the person at the terminal (stderr), in both modes.
   *
   * @param text - The line, without its newline.
   * @example
   * ```ts
   * output.note('paused job 7: resume with `dualwrite backfill resume 7`');
   * ```
   */
  note(text: string): void {
    this.#terminal.stderr.write(`${text}\n`);
  }
}

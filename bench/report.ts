import { meetsTarget, type BenchRow } from './bench-row.ts';

/**
 * One JSON object per row, one per line: `{ name, value, unit, ratio?, baseline? }`.
 *
 * @param rows - The rows.
 * @returns The lines.
 */
export function jsonLines(rows: readonly BenchRow[]): string[] {
  return rows.map((row) => {
    const { name, value, unit, ratio, baseline } = row;
    return JSON.stringify({
      name,
      value: rounded(value),
      unit,
      ...(ratio === undefined ? {} : { ratio: rounded(ratio) }),
      ...(baseline === undefined ? {} : { baseline: rounded(baseline) }),
    });
  });
}

/**
 * A plain-text table of the rows, then the footer lines.
 *
 * @param rows - The rows.
 * @param footer - Caveats and context, one line each.
 * @returns The table's text.
 */
export function table(rows: readonly BenchRow[], footer: readonly string[]): string {
  const header = ['name', 'ours', 'baseline', 'ratio', 'target', 'what'];
  const cells = rows.map((row) => {
    const met = meetsTarget(row);
    return [
      row.name,
      `${figure(row.value)} ${row.unit}`,
      row.baseline === undefined ? '' : `${figure(row.baseline)} ${row.unit}`,
      row.ratio === undefined ? '' : `${row.ratio.toFixed(2)}×`,
      row.target === undefined
        ? ''
        : `${row.target.op} ${row.target.ratio}× ${met === true ? 'met' : 'MISSED'}`,
      row.note ?? '',
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: readonly string[]): string =>
    c
      .map((cell, i) => (i === 0 || i === c.length - 1 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '─'.repeat(w)).join('  ');
  return [line(header), rule, ...cells.map(line), rule, ...footer].join('\n');
}

function figure(value: number): string {
  if (Number.isInteger(value)) return String(value);
  return Math.abs(value) >= 100
    ? value.toFixed(0)
    : Math.abs(value) >= 10
      ? value.toFixed(1)
      : value.toFixed(3);
}

function rounded(value: number): number {
  return Math.round(value * 10_000) / 10_000;
}

import { InvalidArgumentError } from 'commander';

/**
 * Parses a positive integer option (`--limit 50`); commander reports a bad one as a usage error.
 *
 * @param value - The text given.
 * @returns The number.
 * @throws InvalidArgumentError for anything but a positive integer.
 * @example
 * ```ts
 * command.option('--limit <n>', 'most rows', positiveInteger);
 * ```
 */
export function positiveInteger(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) {
    throw new InvalidArgumentError('must be a positive integer.');
  }
  return n;
}

const UNITS_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses a duration option: a number and a unit (`500ms`, `30s`, `10m`, `2h`, `7d`).
 *
 * @param value - The text given.
 * @returns Milliseconds.
 * @throws InvalidArgumentError for anything else.
 * @example
 * ```ts
 * command.option('--window <duration>', 'the readiness window', duration);
 * ```
 */
export function duration(value: string): number {
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(value.trim());
  const scale = match?.[2] === undefined ? undefined : UNITS_MS[match[2]];
  if (match?.[1] === undefined || scale === undefined || Number(match[1]) === 0) {
    throw new InvalidArgumentError('must be a duration such as 30s, 10m, 2h or 7d.');
  }
  return Number(match[1]) * scale;
}

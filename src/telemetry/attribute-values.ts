/*
 * What a metric's or a span's attribute value may be: an allow-list of value-free things, never
 * free text. The old rule took any short string of letters, digits, spaces and a few marks, and
 * so let a unit function's `Ann Smith`, `1931-04-12` or `12 Main St` through as a unit.
 *
 * - an identifier: a letter, then letters and digits, in segments joined by one `-`, `_`, `.` or
 *   `:` — a unit (`north`, `clinic-12`), a resource type (`Patient`), a stage (`dual-write`), an
 *   outcome, a side, a job's state, an error's class (`RejectedError`), a resolver
 *   (`three-way-merge`); at most 64 characters;
 * - an HTTP status code (100–599).
 *
 * Anything else — spaces, `@`, `+`, `/`, a leading digit (a date, a phone number, a house
 * number) — is reported as `other`. A single word cannot be told from a name by its shape:
 * units and resolvers are names an organisation chooses for its teams and policies, and the
 * README says they must not be a patient's.
 */
const IDENTIFIER = /^[A-Za-z][A-Za-z0-9]*(?:[-_.:][A-Za-z0-9]+)*$/;
const MAX_LENGTH = 64;

/**
 * An attribute value that can carry no PHI: an identifier or a status code as it is, `other`
 * for anything else, `none` for a missing one.
 *
 * @param value - A unit, resource type, stage, outcome, error class, resolver or status code.
 * @returns The value to record.
 * @example
 * ```ts
 * attributeValue('north'); // 'north'
 * attributeValue(429); // '429'
 * attributeValue('1931-04-12'); // 'other'
 * attributeValue('Ann Smith'); // 'other'
 * attributeValue(undefined); // 'none'
 * ```
 */
export function attributeValue(value: string | number | undefined): string {
  if (value === undefined) return 'none';
  if (typeof value === 'number')
    return Number.isInteger(value) && value >= 100 && value <= 599 ? String(value) : 'other';
  return value.length <= MAX_LENGTH && IDENTIFIER.test(value) ? value : 'other';
}

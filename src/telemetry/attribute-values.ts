/**
 * What an attribute value may look like: a short name (a unit, a resource type, a stage, an
 * outcome, an error class, a resolver), digits (a status code). Anything else — a value that
 * could be a record's content slipped in by a custom resolver's name or a unit function — is
 * reported as `other`, so no metric or span ever carries free text.
 */
const NAME = /^[A-Za-z0-9][A-Za-z0-9 _.:/-]{0,63}$/;

/**
 * An attribute value that can carry no PHI: the name itself when it is a short name, else
 * `other`; `none` for a missing one.
 *
 * @param value - A unit, resource type, stage, outcome, error class, resolver or status code.
 * @returns The value to record.
 * @example
 * ```ts
 * attributeValue('north'); // 'north'
 * attributeValue(429); // '429'
 * attributeValue(undefined); // 'none'
 * ```
 */
export function attributeValue(value: string | number | undefined): string {
  if (value === undefined) return 'none';
  const text = String(value);
  return NAME.test(text) ? text : 'other';
}

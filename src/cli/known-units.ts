import type { Operator } from '../operator/operator.ts';
import { UsageError } from './cli-errors.ts';

/**
 * Refuses a unit the system does not know: one the plan does not name (configured, or moved by
 * `plan set`), that is not paused and holds nothing in the outbox — what `dualwrite status`
 * lists. A typo (`harbor` for `harbour`) looks to a job like a unit with no records: it scanned
 * everything, skipped every record, and ended `done` with exit 0.
 *
 * @param operator - The operator over the configuration (its plan attached).
 * @param unit - The unit given.
 * @param field - The option or argument that gave it.
 * @throws {@link UsageError} naming `field` (exit 2), the known units listed; the value given is
 *   never quoted.
 * @example
 * ```ts
 * if (options.unit !== undefined) await requireKnownUnit(operator, options.unit, '--unit');
 * ```
 */
export async function requireKnownUnit(
  operator: Operator<unknown, unknown>,
  unit: string,
  field: string,
): Promise<void> {
  const known = (await operator.status()).units.map((status) => status.unit);
  if (known.includes(unit)) return;
  throw new UsageError(
    field,
    `is not a unit of the plan or the journal (units: ${known.length === 0 ? 'none' : known.join(', ')}); ` +
      'check the name, or name a new unit with `dualwrite plan set <unit> <stage>`',
  );
}

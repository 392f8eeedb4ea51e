import type { DualWriteEvent, FieldChange } from '../dual-write-event.ts';
import { valueHash, type ValueHashOptions } from './redact.ts';
import { anObject, checkValue } from '../option-checks.ts';

/**
 * How an event is shown to one sink: values replaced by hashes (the default), or revealed.
 *
 * @example
 * ```ts
 * const redaction: EventRedaction = { revealValues: false, hash: { key: process.env.HASH_KEY } };
 * ```
 */
export interface EventRedaction {
  /** Show field values (PHI) instead of their hashes. */
  readonly revealValues: boolean;
  /** How values are hashed when hidden. */
  readonly hash?: ValueHashOptions | undefined;
}

/**
 * An event as one sink may see it: every field value in its changes replaced by a
 * {@link valueHash}, unless the sink reveals values. Events hold values nowhere else (ids, types,
 * paths, statuses and counts are not values).
 *
 * @param event - The event as the writer made it.
 * @param redaction - The sink's redaction.
 * @returns The event to hand to the sink.
 * @throws {@link InvalidInputError} naming `redaction` when it is not an object.
 * @example
 * ```ts
 * sink.handle(redactEvent(event, { revealValues: false }));
 * ```
 */
export function redactEvent(event: DualWriteEvent, redaction: EventRedaction): DualWriteEvent {
  checkValue(redaction, anObject, 'redaction', 'input');
  const reveal: unknown = redaction.revealValues;
  if (reveal === true) return event;
  const hide = (changes: readonly FieldChange[] | undefined): readonly FieldChange[] | undefined =>
    changes?.map((change) => hideValues(change, redaction.hash));
  switch (event.type) {
    case 'conflict':
      return {
        ...event,
        changes: { legacy: hide(event.changes.legacy), medplum: hide(event.changes.medplum) },
      };
    case 'divergence':
      return { ...event, differences: hide(event.differences) ?? [] };
    default:
      return event;
  }
}

function hideValues(change: FieldChange, hash: ValueHashOptions | undefined): FieldChange {
  const { path, kind } = change;
  return {
    path,
    kind,
    ...('before' in change ? { before: valueHash(change.before, hash) } : {}),
    ...('after' in change ? { after: valueHash(change.after, hash) } : {}),
  };
}

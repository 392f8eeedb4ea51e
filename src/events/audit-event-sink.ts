import type { MedplumClient } from '@medplum/core';
import type { AuditEvent, AuditEventEntity } from '@medplum/fhirtypes';
import type { DualWriteEvent, FieldChange } from '../dual-write-event.ts';
import { ConfigurationError } from '../errors.ts';
import { EVENT_TYPES, revealValuesOf, SINK_OPTIONS, type EventSink, type SinkOptions } from './event-sink.ts';
import { aFunction, checkValue, oneOf, type Rule } from '../option-checks.ts';

/**
 * The code system of the AuditEvent types this library writes (`AuditEvent.type.code` is the
 * event type).
 *
 * @example
 * ```ts
 * await medplum.searchResources('AuditEvent', { type: `${AUDIT_EVENT_SYSTEM}|conflict` });
 * ```
 */
export const AUDIT_EVENT_SYSTEM = 'urn:medplum-dualwrite:audit-event';

/**
 * Options of {@link auditEventSink}.
 *
 * @example
 * ```ts
 * const options: AuditEventSinkOptions = { types: ['conflict', 'divergence'] };
 * ```
 */
export interface AuditEventSinkOptions extends SinkOptions {
  /**
   * Which events become AuditEvents.
   * @default ['conflict', 'resolved', 'divergence', 'dead-letter']
   */
  readonly types?: readonly DualWriteEvent['type'][] | undefined;
  /**
   * Told when an AuditEvent cannot be written (the sink never fails a write).
   * @default undefined
   */
  readonly onError?: ((error: unknown) => void) | undefined;
}

/**
 * A sink that records disagreements as FHIR `AuditEvent`s in Medplum, so they sit next to the
 * data they concern: `type` is the event type (system {@link AUDIT_EVENT_SYSTEM}), `entity` points
 * at the resource, and each changed path is an `entity.detail` (`type` the path; `valueString`
 * the value hash, or the value with `revealValues`).
 *
 * @param medplum - A client allowed to create AuditEvents (it may be the writer's).
 * @param options - Which events, and whether to reveal values.
 * @returns The sink.
 * @throws {@link ConfigurationError} naming `medplum`, `options` or the option at fault (an
 *   unknown option, an event type that does not exist).
 * @example
 * ```ts
 * new DualWriter({ ...options, sinks: [auditEventSink(medplum)] });
 * ```
 */
export function auditEventSink(medplum: MedplumClient, options: AuditEventSinkOptions = {}): EventSink {
  if (typeof (medplum as Partial<MedplumClient> | null | undefined)?.createResource !== 'function')
    throw new ConfigurationError('medplum', medplum, 'must be a MedplumClient');
  const revealValues = revealValuesOf(options, {
    ...SINK_OPTIONS,
    types: eventTypes,
    onError: aFunction,
  });
  options.types?.forEach((type, i) => {
    checkValue(type, anEventType, `types[${i}]`, 'configuration');
  });
  const types = new Set(options.types ?? ['conflict', 'resolved', 'divergence', 'dead-letter']);
  return {
    revealValues,
    handle: async (event) => {
      if (!types.has(event.type)) return;
      try {
        await medplum.createResource(auditEventOf(event));
      } catch (err) {
        options.onError?.(err);
      }
    },
  };
}

const eventTypes: Rule<readonly unknown[]> = {
  test: (value): value is readonly unknown[] => Array.isArray(value),
  problem: 'must be an array of event types',
};

const anEventType = oneOf(...EVENT_TYPES);

/**
 * The AuditEvent recording one writer event.
 *
 * @param event - The event (already redacted for the sink).
 * @returns The AuditEvent to create.
 * @example
 * ```ts
 * await medplum.createResource(auditEventOf(event));
 * ```
 */
export function auditEventOf(event: DualWriteEvent): AuditEvent {
  const failed = event.type === 'dead-letter' || event.type === 'mirror-failed';
  return {
    resourceType: 'AuditEvent',
    type: { system: AUDIT_EVENT_SYSTEM, code: event.type, display: `dual-write ${event.type}` },
    action: 'U',
    recorded: new Date().toISOString(),
    outcome: failed ? '4' : '0',
    outcomeDesc: summaryOf(event),
    agent: [{ requestor: false, name: 'medplum-dualwrite', who: { display: 'medplum-dualwrite' } }],
    source: { observer: { display: 'medplum-dualwrite' } },
    entity: entitiesOf(event),
  };
}

function summaryOf(event: DualWriteEvent): string {
  const record = 'legacyId' in event ? `${event.resourceType ?? ''}/${event.legacyId ?? ''}` : '';
  switch (event.type) {
    case 'conflict':
      return `${record} changed in both systems; ${event.resolvedBy}: ${event.resolution}`;
    case 'resolved':
      return `${record} resolved by ${event.resolvedBy}: ${event.resolution}`;
    case 'divergence':
      return `${record} differs between the systems (${event.source}) at ${String(event.differences.length)} path(s)`;
    default:
      return `${record} ${event.type}`;
  }
}

function entitiesOf(event: DualWriteEvent): AuditEventEntity[] {
  if (!('legacyId' in event) || event.resourceType === undefined) return [];
  const medplumId = 'medplumId' in event ? event.medplumId : undefined;
  const entity: AuditEventEntity = {
    what:
      medplumId === undefined
        ? { identifier: { value: event.legacyId ?? '' }, display: `${event.resourceType} (legacy id)` }
        : { reference: `${event.resourceType}/${medplumId}` },
  };
  const details = detailsOf(event);
  return [details.length === 0 ? entity : { ...entity, detail: details }];
}

function detailsOf(event: DualWriteEvent): NonNullable<AuditEventEntity['detail']> {
  const one = (side: string, change: FieldChange) => ({
    type: `${side}${change.path === '' ? '(whole record)' : change.path} ${change.kind}`,
    valueString: JSON.stringify({ before: change.before, after: change.after }),
  });
  if (event.type === 'conflict') {
    return [
      ...(event.changes.legacy ?? []).map((c) => one('legacy:', c)),
      ...(event.changes.medplum ?? []).map((c) => one('medplum:', c)),
    ];
  }
  if (event.type === 'divergence') return event.differences.map((c) => one('', c));
  return [];
}

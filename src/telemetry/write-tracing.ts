import type { Link, Span, SpanContext, Tracer } from '@opentelemetry/api';
import type { OutboxEntry } from '../journal/outbox.ts';
import type { LeaseResult } from '../mirror/lease-runner.ts';
import { attributeValue as v } from './attribute-values.ts';
import type { OpenTelemetryApi } from './otel-api.ts';

/** What a write span says about its call: names only. */
export interface WriteSpanAttributes {
  readonly operation: string;
  readonly resourceType: string;
  readonly unit: string;
  readonly stage: string;
  readonly authority: string;
}

const TRACE_PARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/**
 * Spans for a write and its mirror, linked across the outbox. A write call runs in a
 * `dualwrite.write` span whose context is stored with the outbox entry (as a W3C `traceparent`);
 * each attempt at the entry runs in a `dualwrite.mirror` span that links to it — a child of the
 * write span too when it runs inline, in the call. Attributes are names and codes, never ids or
 * values; a failure records the error's class (`error.type`), never its message.
 *
 * @example
 * ```ts
 * const tracing = new WriteTracing(api, tracer);
 * await tracing.write({ operation: 'create', resourceType: 'Patient', unit: 'north', stage: 'dual-write', authority: 'legacy' }, (traceParent) => run(traceParent));
 * ```
 */
export class WriteTracing {
  readonly #api: OpenTelemetryApi;
  readonly #tracer: Tracer;

  /**
   * @param api - `@opentelemetry/api`.
   * @param tracer - Where spans are started.
   */
  constructor(api: OpenTelemetryApi, tracer: Tracer) {
    this.#api = api;
    this.#tracer = tracer;
  }

  /**
   * Runs a write call in a `dualwrite.write` span.
   *
   * @param call - The call's operation, resource type, unit, stage and authority.
   * @param run - The call; given the span's `traceparent` to store with the outbox entry
   *   (`undefined` when nothing records spans).
   * @returns What `run` returns.
   */
  write<T>(call: WriteSpanAttributes, run: (traceParent: string | undefined) => Promise<T>): Promise<T> {
    const attributes = {
      operation: v(call.operation),
      resource_type: v(call.resourceType),
      unit: v(call.unit),
      stage: v(call.stage),
      authority: v(call.authority),
    };
    return this.#tracer.startActiveSpan(
      'dualwrite.write',
      { kind: this.#api.SpanKind.INTERNAL, attributes },
      async (span) => {
        try {
          return await run(this.#traceParentOf(span));
        } catch (err) {
          this.#failed(span, err);
          throw err;
        } finally {
          span.end();
        }
      },
    );
  }

  /**
   * Runs one attempt at an outbox entry in a `dualwrite.mirror` span linked to the write that
   * owes it (a `LeasePolicy.around`).
   *
   * @param entry - The leased entry.
   * @param run - The attempt.
   * @returns How the lease ended.
   */
  mirror(entry: OutboxEntry, run: () => Promise<LeaseResult>): Promise<LeaseResult> {
    const written = spanContextOf(entry.traceParent);
    const links: Link[] = written === undefined ? [] : [{ context: written }];
    const attributes = {
      unit: v(entry.unit),
      resource_type: v(entry.resourceType),
      target: v(entry.target),
      attempt: entry.attempts + 1,
    };
    return this.#tracer.startActiveSpan(
      'dualwrite.mirror',
      { kind: this.#api.SpanKind.INTERNAL, attributes, links },
      async (span) => {
        try {
          const result = await run();
          span.setAttribute('outcome', result.status);
          if (result.status === 'dead-letter' || result.status === 'retrying') {
            span.setStatus({ code: this.#api.SpanStatusCode.ERROR });
            if (result.error !== undefined) span.setAttribute('error.type', v(result.error.name));
          }
          return result;
        } catch (err) {
          this.#failed(span, err);
          throw err;
        } finally {
          span.end();
        }
      },
    );
  }

  #failed(span: Span, err: unknown): void {
    span.setStatus({ code: this.#api.SpanStatusCode.ERROR });
    span.setAttribute('error.type', v(err instanceof Error ? err.name : 'Error'));
  }

  #traceParentOf(span: Span): string | undefined {
    const context = span.spanContext();
    if (!this.#api.trace.isSpanContextValid(context)) return undefined;
    const flags = (context.traceFlags & 0xff).toString(16).padStart(2, '0');
    return `00-${context.traceId}-${context.spanId}-${flags}`;
  }
}

/** The span context a stored `traceparent` names; `undefined` for none or a malformed one. */
function spanContextOf(traceParent: string | undefined): SpanContext | undefined {
  const match = traceParent === undefined ? null : TRACE_PARENT.exec(traceParent);
  if (match === null) return undefined;
  const [, traceId = '', spanId = '', flags = '00'] = match;
  return { traceId, spanId, traceFlags: Number.parseInt(flags, 16), isRemote: true };
}

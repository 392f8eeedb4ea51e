import type { DualWriteEvent } from '../dual-write-event.ts';
import { InvalidInputError, type Side } from '../errors.ts';
import type { LinkCache } from '../journal/link-cache.ts';
import type { ResourceMapping } from '../mapping/resource-mapping.ts';
import { withRetries, type RetryPolicy } from '../mirror/retry-policy.ts';
import type { Routed } from '../mirror/write-path.ts';
import { anObject, checkOptions, checkValue, nonEmptyString } from '../option-checks.ts';
import type { CutoverPlan } from '../plan/cutover-plan.ts';
import type { LegacyAdapter } from '../sides/legacy-adapter.ts';
import { callLegacy } from '../sides/legacy-failure.ts';
import type { MedplumSide } from '../sides/medplum-side.ts';

/** What a writer's calls reach records through: the two systems, the mappings, the plan, the links. */
export interface RecordAccessParts<C, L> {
  /** The legacy adapter, already timed and split into record parts. */
  readonly legacy: LegacyAdapter<L>;
  /** The live lane's Medplum side. */
  readonly medplum: MedplumSide;
  /** The mappings by resource type. */
  readonly mappings: ReadonlyMap<string, ResourceMapping<L>>;
  readonly plan: CutoverPlan<C>;
  readonly links: LinkCache;
  readonly retry: RetryPolicy;
  /** Emits an event (a retry) without waiting for the store. */
  readonly emit: (event: DualWriteEvent) => void;
}

/**
 * How a writer's write and read calls reach a record: a call routed by its type and context to
 * its mapping, unit and stage (the plan's route), and requests to either system with the
 * writer's retries, each retry an event. Shared by `WriteCalls` and `ReadCalls`.
 *
 * @typeParam C - The per-call context type.
 * @typeParam L - The legacy row type.
 */
export class RecordAccess<C, L> {
  readonly legacy: LegacyAdapter<L>;
  readonly medplum: MedplumSide;
  readonly mappings: ReadonlyMap<string, ResourceMapping<L>>;
  readonly links: LinkCache;
  readonly #plan: CutoverPlan<C>;
  readonly #retry: RetryPolicy;
  readonly #emit: (event: DualWriteEvent) => void;

  constructor(parts: RecordAccessParts<C, L>) {
    this.legacy = parts.legacy;
    this.medplum = parts.medplum;
    this.mappings = parts.mappings;
    this.links = parts.links;
    this.#plan = parts.plan;
    this.#retry = parts.retry;
    this.#emit = parts.emit;
  }

  /**
   * Routes a call: its type's mapping, its context's unit and the stage's route for both.
   *
   * @throws {@link InvalidInputError} naming `field` for a type that is not a string or has no mapping.
   */
  route(type: unknown, ctx: C, field = 'type'): Routed<L> {
    if (typeof type !== 'string' || type === '')
      throw new InvalidInputError(field, 'must be a FHIR resource type string');
    const mapping = this.mappings.get(type);
    if (mapping === undefined) {
      throw new InvalidInputError(
        field,
        `has no mapping; mapped types: ${[...this.mappings.keys()].join(', ')}`,
      );
    }
    const unit = this.#plan.unitOf(ctx);
    return { mapping, unit, route: this.#plan.routeOf(unit, type) };
  }

  /** Runs a request with the writer's retries; each retry is a `retry` event. */
  async retrying<T>(
    fn: () => Promise<T>,
    side: Side,
    legacyId?: string,
  ): Promise<{ value: T; attempts: number }> {
    return withRetries(fn, this.#retry, (error, attempt, delayMs) => {
      this.#emit({
        type: 'retry',
        side,
        resourceType: error.resourceType,
        legacyId: legacyId ?? error.legacyId,
        status: error.status,
        attempt,
        delayMs,
        error: error.name,
      });
    });
  }

  /** Runs a legacy request once, its failure classified (see `callLegacy`). */
  legacyCall<T>(fn: () => Promise<T>, resourceType: string, legacyId: string | undefined): Promise<T> {
    return callLegacy(fn, { resourceType, legacyId });
  }
}

/** Checks that a call's argument is an object, naming the field otherwise. */
export function requireObject(value: unknown, field: string): void {
  checkValue(value, anObject, field, 'input');
}

/** Checks that a call's argument is a non-empty string, naming the field otherwise. */
export function requireId(value: unknown, field: string): asserts value is string {
  checkValue(value, nonEmptyString, field, 'input');
}

/** The `expectedVersion` of an update's options, checked. */
export function expectedVersionOf(options: unknown): string | undefined {
  const given = checkOptions(options, 'options', 'input', { expectedVersion: nonEmptyString });
  return given.expectedVersion as string | undefined;
}

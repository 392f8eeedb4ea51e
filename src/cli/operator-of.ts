import { Operator, type OperatorOptions } from '../operator/operator.ts';
import type { DualwriteConfig } from './dualwrite-config.ts';

/**
 * The operator API over a configuration: the store, mappings and plan, the two clients for the
 * calls that touch records, the readiness gates, the request time limit, and `feeds.unitOf` as
 * the unit of a record a job reads. Nothing starts.
 *
 * @param config - The configuration.
 * @returns The operator; close it when done.
 * @example
 * ```ts
 * const status = await operatorOf(config).status();
 * ```
 */
export function operatorOf(config: DualwriteConfig): Operator<unknown, unknown> {
  return new Operator({
    store: config.store,
    mappings: config.mappings as OperatorOptions<unknown, unknown>['mappings'],
    plan: config.plan,
    legacy: config.legacy,
    medplum: config.medplum,
    readiness: config.readiness,
    unitOf: config.feeds?.unitOf,
    pacer: config.pacer,
    requestTimeoutMs: config.requestTimeoutMs,
    sinks: config.sinks,
  });
}

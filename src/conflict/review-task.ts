import type { Task } from '@medplum/fhirtypes';
import type { ConflictReport } from './conflict-report.ts';

/**
 * The identifier system of review Tasks: one Task per record and conflicting version pair.
 *
 * @example
 * ```ts
 * await medplum.searchResources('Task', { identifier: `${REVIEW_TASK_SYSTEM}|` });
 * ```
 */
export const REVIEW_TASK_SYSTEM = 'urn:medplum-dualwrite:conflict-review';

/**
 * The FHIR `Task` asking a person to decide a conflict (`manualReview({ task: true })`): its
 * `focus` is the Medplum resource, its description names the record by type and ids only (no
 * PHI), and its identifier makes a repeated conflict on the same versions the same Task.
 *
 * @param report - The conflict.
 * @returns The Task to create.
 * @example
 * ```ts
 * await medplum.createResource(reviewTaskOf(report));
 * ```
 */
export function reviewTaskOf(report: ConflictReport): Task {
  const record = `${report.resourceType}/${report.legacyId}`;
  return {
    resourceType: 'Task',
    status: 'requested',
    intent: 'order',
    priority: 'routine',
    identifier: [
      {
        system: REVIEW_TASK_SYSTEM,
        value: `${record}@${report.expectedVersion ?? ''}-${report.actualVersion ?? ''}`,
      },
    ],
    code: { text: 'Resolve a dual-write conflict' },
    description: `${record} (unit ${report.unit}) changed in both systems since the last sync. Decide with writer.resolveDeadLetter.`,
    authoredOn: new Date().toISOString(),
    ...(report.medplumId === undefined
      ? {}
      : { focus: { reference: `${report.resourceType}/${report.medplumId}` } }),
  };
}

import type { Job } from '../journal/job.ts';
import type { BacklogSample, LagPoint } from '../journal/operating-history.ts';
import type { StoredPlan } from '../journal/stored-plan.ts';
import type { Readiness } from '../plan/readiness.ts';
import type { ConsoleDeadLetter, ConsoleJournal, ConsoleOperator, ConsoleUnit } from './console-operator.ts';

/**
 * Everything one page shows, read in one go from the operator and the journal.
 *
 * @example
 * ```ts
 * const view = await readConsoleView(operator, journal, { historyMs: 86_400_000, stepMs: 60_000, deadLetterLimit: 500 });
 * ```
 */
export interface ConsoleView {
  /** When it was read (milliseconds since the epoch). */
  readonly at: number;
  readonly plan: StoredPlan;
  readonly units: readonly ConsoleUnit[];
  readonly readiness: ReadonlyMap<string, Readiness>;
  /** The charts' window (milliseconds since the epoch). */
  readonly from: number;
  readonly backlog: readonly BacklogSample[];
  readonly lag: readonly LagPoint[];
  readonly deadLetters: readonly ConsoleDeadLetter[];
  /** Whether more open dead letters exist than were read. */
  readonly moreDeadLetters: boolean;
  readonly reconciles: readonly Job[];
  readonly backfills: readonly Job[];
}

/**
 * Reads what the page shows. Readiness is read per unit, all at once.
 *
 * @param operator - The operator API.
 * @param journal - The journal's history.
 * @param options - The charts' window and step, and how many dead letters to list.
 * @returns The view.
 * @example
 * ```ts
 * const view = await readConsoleView(operator, store, { historyMs: 86_400_000, stepMs: 60_000, deadLetterLimit: 500 });
 * ```
 */
export async function readConsoleView(
  operator: ConsoleOperator,
  journal: ConsoleJournal,
  options: { readonly historyMs: number; readonly stepMs: number; readonly deadLetterLimit: number },
): Promise<ConsoleView> {
  const at = Date.now();
  const from = at - options.historyMs;
  const since = new Date(from).toISOString();
  const [status, backlog, lag, letters, jobs] = await Promise.all([
    operator.status(),
    journal.backlogHistory({ since }),
    journal.lagHistory({ since, stepMs: options.stepMs }),
    operator.deadLetters({ limit: options.deadLetterLimit + 1 }),
    operator.jobs({ limit: 200 }),
  ]);
  const readiness = new Map(
    await Promise.all(
      status.units.map(async (unit) => [unit.unit, await operator.readiness(unit.unit)] as const),
    ),
  );
  return {
    at,
    plan: status.plan,
    units: status.units,
    readiness,
    from,
    backlog,
    lag,
    deadLetters: letters.slice(0, options.deadLetterLimit),
    moreDeadLetters: letters.length > options.deadLetterLimit,
    reconciles: latestPerScope(jobs.filter((job) => job.kind === 'reconcile')),
    backfills: jobs.filter((job) => job.kind === 'backfill').slice(0, 20),
  };
}

/** The newest job of each resource type, unit and direction (jobs come newest first). */
function latestPerScope(jobs: readonly Job[]): Job[] {
  const seen = new Set<string>();
  return jobs.filter((job) => {
    const key = `${job.resourceType}\u0000${job.unit ?? ''}\u0000${job.direction}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * The migration team: checks a unit's readiness, moves it forward when it passes its gates,
 * steps it back when something goes wrong, backfills a unit that starts mirroring, and waits
 * for both systems to settle.
 */
import {
  STAGES,
  StageChangeRefusedError,
  type CutoverPlan,
  type DualWriter,
  type Readiness,
  type Stage,
} from '../../src/index.ts';
import type { Ctx } from './clinic-records.ts';
import type { ClinicRow, LegacyDatabase } from './legacy-database.ts';
import type { ActivityLog } from './unit-activity.ts';

/**
 * A readiness verdict on one line: figures against their gates.
 *
 * @param readiness - The unit's readiness.
 * @returns `ready · mirror lag p95 120 ms (≤ 5000) · …`.
 */
export function describeReadiness(readiness: Readiness): string {
  const { figures, gates } = readiness;
  const lag = figures.mirrorLagMs;
  const ms = (value: number | undefined): string => (value === undefined ? '—' : `${Math.round(value)} ms`);
  return [
    readiness.verdict,
    `mirror lag p50 ${ms(lag.p50)} p95 ${ms(lag.p95)} (≤ ${String(gates.maxMirrorLagP95Ms)} ms, ${String(lag.samples)} mirrors)`,
    `conflicts ${String(figures.conflicts)} (≤ ${String(gates.maxConflicts)})`,
    `divergence ${String(figures.divergence)} (≤ ${String(gates.maxDivergence)})`,
    `dead letters ${String(figures.deadLetters)} (≤ ${String(gates.maxDeadLetters)})`,
    `pending ${String(figures.pending)} (≤ ${String(gates.maxPending)})`,
  ].join(' · ');
}

/**
 * The gates a unit fails, on one line.
 *
 * @param readiness - The unit's readiness.
 * @returns `maxPending 7 > 0, …`, or `none`.
 */
export function describeFailing(readiness: Readiness): string {
  return (
    readiness.failing.map((f) => `${f.gate} ${String(f.value)} > ${String(f.limit)}`).join(', ') || 'none'
  );
}

/** The clinic's tables by resource type, in dependency order (what a record points at first). */
const BACKFILL_ORDER = [
  ['Patient', 'patients'],
  ['Encounter', 'encounters'],
  ['Observation', 'vitals'],
] as const;

/** What the migration team does, printed as it happens. */
export class Operations {
  readonly #writer: DualWriter<Ctx, ClinicRow>;
  readonly #plan: CutoverPlan<Ctx>;
  readonly #db: LegacyDatabase;
  readonly #log: ActivityLog;
  /** Records written through the writer to start a unit's mirroring, per unit. */
  readonly backfilled = new Map<string, number>();
  /** Stage changes the plan refused. */
  readonly refusals: string[] = [];

  /**
   * @param writer - The service's writer.
   * @param plan - The shared plan.
   * @param db - The legacy database (to list a unit's records for a backfill).
   * @param log - Where failures of backfill writes are counted.
   */
  constructor(
    writer: DualWriter<Ctx, ClinicRow>,
    plan: CutoverPlan<Ctx>,
    db: LegacyDatabase,
    log: ActivityLog,
  ) {
    this.#writer = writer;
    this.#plan = plan;
    this.#db = db;
    this.#log = log;
  }

  /**
   * Moves a unit to its next stage if it passes its gates (the plan checks them again and
   * refuses with a `StageChangeRefusedError` otherwise).
   *
   * @param unit - The unit.
   * @param reason - Recorded with the change.
   * @returns Whether it moved.
   */
  async promote(unit: string, reason: string): Promise<boolean> {
    const from = this.#plan.stageOf(unit, 'Patient');
    const to = STAGES[STAGES.indexOf(from) + 1] ?? from;
    const readiness = await this.#writer.readiness(unit);
    console.log(`  ${unit}: ${from} → ${to}? ${describeReadiness(readiness)}`);
    try {
      await this.#plan.set(unit, to, { reason, by: 'ops:maria' });
      console.log(`  ${unit}: moved to ${to} (${reason})`);
      return true;
    } catch (err) {
      if (!(err instanceof StageChangeRefusedError)) throw err;
      console.log(`  ${unit}: ${err.name}: ${err.message}`);
      this.refusals.push(err.message);
      return false;
    }
  }

  /**
   * Steps a unit back a stage: always allowed, loses nothing.
   *
   * @param unit - The unit.
   * @param reason - Recorded with the change.
   */
  async rollBack(unit: string, reason: string): Promise<void> {
    const from = this.#plan.stageOf(unit, 'Patient');
    const to: Stage = STAGES[STAGES.indexOf(from) - 1] ?? from;
    const change = await this.#plan.set(unit, to, { reason, by: 'ops:maria' });
    console.log(`  ${unit}: rolled back ${change.from} → ${change.to} (${reason})`);
  }

  /**
   * Brings a unit that just started mirroring up to date: every record without a Medplum copy
   * is written through the writer as it stands (its legacy version moves on; the mirror creates
   * the copy). The change feed had skipped these records while the unit was legacy-only.
   *
   * @param unit - The unit.
   */
  async backfill(unit: string): Promise<void> {
    let written = 0;
    const ctx = { clinic: unit };
    // Patients first, then what points at them: each mirror finds its references linked.
    for (const [type, table] of BACKFILL_ORDER) {
      const rows = await this.#db.select(table, ['id'], { clinic: unit });
      for (const { id } of rows) {
        if (id === null) continue;
        if ((await this.#writer.linkOf(type, id)) !== undefined) continue;
        try {
          const row = await this.#writer.read(type, id, ctx);
          if (row === undefined) continue; // deleted meanwhile
          await this.#writer.update(type, id, row, ctx);
          written += 1;
        } catch (err) {
          this.#log.of(unit).service.failed += 1;
          console.log(
            `  ${unit}: backfill of ${type} ${id} failed: ${err instanceof Error ? err.message : String(err)}`,
          );
        }
      }
    }
    this.backfilled.set(unit, (this.backfilled.get(unit) ?? 0) + written);
    console.log(`  ${unit}: backfilled ${String(written)} records through the writer`);
  }

  /**
   * Waits until both systems agree: the feeds have read every direct write, and the outbox
   * holds nothing more to apply (also what the drainer had left from an outage).
   *
   * @returns The outbox counts after the last drain.
   */
  async settle(): Promise<{ pending: number; dead: number }> {
    for (let pass = 0; ; pass += 1) {
      const feeds = await this.#writer.pollFeeds();
      const drained = await this.#writer.drain({ timeoutMs: 30_000 });
      await this.#writer.settled();
      if ((feeds.queued === 0 && feeds.errors === 0 && drained.applied === 0) || pass >= 10)
        return drained.remaining;
    }
  }
}

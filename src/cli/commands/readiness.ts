import type { Command } from 'commander';
import type { GateLimits, Readiness } from '../../plan/readiness.ts';
import { UsageError } from '../cli-errors.ts';
import type { CliCommand } from '../command-context.ts';
import { formatDuration, formatTable } from '../command-output.ts';
import { EXIT_CODES } from '../exit-code.ts';
import { duration } from '../option-parsers.ts';

/** A figure or limit: a duration for the `…Ms` gates, else a count; `never` for infinity. */
function shown(gate: keyof GateLimits, n: number | undefined): string {
  if (n === undefined) return '-';
  if (!Number.isFinite(n)) return gate === 'maxReconcileAgeMs' ? 'never' : 'none';
  return gate.endsWith('Ms') ? formatDuration(n) : String(n);
}

/** The figures against their gates, one line per gate that is checked. */
function formatReadiness(readiness: Readiness): string {
  const { figures, gates } = readiness;
  const values: Record<keyof GateLimits, number | undefined> = {
    maxMirrorLagP95Ms: figures.mirrorLagMs.p95,
    maxConflicts: figures.conflicts,
    maxDivergence: figures.divergence,
    maxDeadLetters: figures.deadLetters,
    maxPending: figures.pending,
    maxUnbackfilledTypes: figures.unbackfilledTypes?.length,
    maxReconcileDisagreements: figures.reconcileDisagreements,
    maxReconcileAgeMs: figures.reconcileAgeMs,
  };
  const verdictOf = (gate: keyof GateLimits): string =>
    readiness.failing.some((failing) => failing.gate === gate)
      ? 'FAIL'
      : readiness.unknown.some((unknown) => unknown.gate === gate)
        ? 'unknown'
        : 'ok';
  const checked = (Object.keys(values) as (keyof GateLimits)[]).filter((gate) =>
    Number.isFinite(gates[gate]),
  );
  const table = formatTable(checked, [
    { header: 'gate', value: (gate) => gate },
    { header: 'value', value: (gate) => shown(gate, values[gate]), align: 'right' },
    { header: 'limit', value: (gate) => shown(gate, gates[gate]), align: 'right' },
    { header: 'verdict', value: (gate) => verdictOf(gate) },
  ]);
  const evidence = readiness.unknown
    .map((gate) => `${gate.gate}: ${gate.samples} of the ${gate.needed} samples needed\n`)
    .join('');
  const lag = figures.mirrorLagMs;
  return (
    `${readiness.unit}: ${readiness.verdict} (window ${readiness.window.from} to ${readiness.window.to}, ` +
    `plan revision ${readiness.plan.revision ?? '-'}${readiness.plan.stale ? ', stale' : ''})\n` +
    `mirror lag p50 ${formatDuration(lag.p50)}, p95 ${formatDuration(lag.p95)} over ${lag.samples} mirrors; ` +
    `${figures.comparisons} comparisons\n` +
    table +
    evidence
  );
}

/** Whether the figures show the unit was ever at work in the window (a mirror, a finding, a letter). */
function hasEvidence({ figures }: Readiness): boolean {
  return (
    figures.mirrorLagMs.samples > 0 ||
    figures.comparisons > 0 ||
    figures.conflicts > 0 ||
    figures.divergence > 0 ||
    figures.deadLetters > 0 ||
    figures.pending > 0
  );
}

/**
 * `dualwrite readiness <unit>`: the unit's figures over the window against its gates; exits 3
 * unless the verdict is `ready` (a gate fails, or too little evidence).
 *
 * A unit the plan does not name, that is not paused, has nothing in the outbox and left no
 * evidence over the window is a usage error (exit 2): a typo (`nrth`) and a unit never named
 * are alike to the journal, and answering `ready` (a unit on a default stage that mirrors
 * nothing passes every gate) or `not ready` would let a script act on a unit that is not there.
 * `plan set` names a new unit.
 */
export const readinessCommand: CliCommand = {
  register(program, context) {
    program
      .command('readiness')
      .description('a unit’s figures against its readiness gates (exit status 3 unless ready)')
      .argument('<unit>', 'the unit')
      .option('-w, --window <duration>', 'the window (default: the configured one)', duration)
      .action(async (unit: string, options: { window?: number }, command: Command) => {
        const operator = await context.operator(command);
        const readiness = await operator.readiness(
          unit,
          options.window === undefined ? {} : { windowMs: options.window },
        );
        if (!hasEvidence(readiness)) {
          const known = (await operator.status()).units.map((status) => status.unit);
          if (!known.includes(unit)) {
            throw new UsageError(
              'unit',
              `is not a unit of the plan or the journal (units: ${known.length === 0 ? 'none' : known.join(', ')}); ` +
                'check the name, or name a new unit with `dualwrite plan set <unit> <stage>`',
            );
          }
        }
        context.output(command).result(readiness, () => formatReadiness(readiness));
        if (readiness.verdict !== 'ready') context.exitWith(EXIT_CODES.notReady);
      });
  },
};

import type { Command } from 'commander';
import type { OperatorStatus, UnitStatus } from '../../operator/operator-views.ts';
import type { CliCommand } from '../command-context.ts';
import { formatDuration, formatTable } from '../command-output.ts';
import { jobTable } from '../job-document.ts';

/** A unit's stages: one stage when every type is in it, else `type=stage` pairs. */
function stagesOf(unit: UnitStatus): string {
  const stages = Object.entries(unit.stages);
  const distinct = new Set(stages.map(([, stage]) => stage));
  if (distinct.size <= 1) return stages[0]?.[1] ?? '-';
  return stages.map(([type, stage]) => `${type}=${stage}`).join(' ');
}

/**
 * The status as people read it: the plan revision, a line per unit with its stage, backlog and
 * how long it has been paused, the totals, the paused units (since, by, reason) and the jobs
 * still open.
 *
 * @param status - The operator's status.
 * @returns The text.
 * @example
 * ```ts
 * terminal.stdout.write(formatStatus(await operator.status()));
 * ```
 */
export function formatStatus(status: OperatorStatus): string {
  const total = { unit: '(total)', stages: {}, paused: undefined, ...status.totals };
  const at = Date.parse(status.at);
  const units = formatTable<UnitStatus>(
    [...status.units, total],
    [
      { header: 'unit', value: (unit) => unit.unit },
      { header: 'stage', value: (unit) => (unit === total ? '' : stagesOf(unit)) },
      { header: 'pending', value: (unit) => unit.pending, align: 'right' },
      { header: 'waiting', value: (unit) => unit.waiting, align: 'right' },
      { header: 'leased', value: (unit) => unit.leased, align: 'right' },
      { header: 'dead', value: (unit) => unit.dead, align: 'right' },
      { header: 'oldest', value: (unit) => formatDuration(unit.oldestAgeMs), align: 'right' },
      {
        header: 'paused',
        value: (unit) =>
          unit.paused === undefined ? undefined : formatDuration(at - Date.parse(unit.paused.since)),
        align: 'right',
      },
    ],
  );
  const paused = status.units.filter((unit) => unit.paused !== undefined);
  const pauses =
    paused.length === 0
      ? ''
      : `\npaused units (mirroring held until resumed)\n${formatTable(paused, [
          { header: 'unit', value: (unit) => unit.unit },
          { header: 'since', value: (unit) => unit.paused?.since },
          { header: 'by', value: (unit) => unit.paused?.by },
          { header: 'reason', value: (unit) => unit.paused?.reason },
        ])}`;
  const jobs = status.openJobs.length === 0 ? '' : `\nopen jobs\n${jobTable(status.openJobs)}`;
  return `plan revision ${status.plan.revision}, default ${status.plan.default} (at ${status.at})\n${units}${pauses}${jobs}`;
}

/** `dualwrite status`: every unit at a glance. */
export const statusCommand: CliCommand = {
  register(program, context) {
    program
      .command('status')
      .description(
        "every unit's stage, backlog (pending, waiting, leased, dead, oldest) and pause, and the open jobs",
      )
      .option('-u, --unit <unit...>', 'only these units')
      .action(async (options: { unit?: string[] }, command: Command) => {
        const operator = await context.operator(command);
        const status = await operator.status();
        const only = options.unit;
        const shown =
          only === undefined
            ? status
            : { ...status, units: status.units.filter((unit) => only.includes(unit.unit)) };
        context.output(command).result(shown, () => formatStatus(shown));
      });
  },
};

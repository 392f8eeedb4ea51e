import { Argument, type Command } from 'commander';
import type { StoredPlan } from '../../journal/stored-plan.ts';
import { StageChangeRefusedError, type StageChange } from '../../plan/cutover-plan.ts';
import { STAGES, type Stage } from '../../plan/stage.ts';
import type { CliCommand } from '../command-context.ts';
import { formatTable } from '../command-output.ts';
import { positiveInteger } from '../option-parsers.ts';

interface PlanLine {
  readonly unit: string;
  readonly resourceType: string;
  readonly stage: Stage;
}

function planLines(plan: StoredPlan): PlanLine[] {
  const lines: PlanLine[] = [{ unit: '(default)', resourceType: '*', stage: plan.default }];
  for (const [unit, stages] of Object.entries(plan.units)) {
    if (stages.default !== undefined) lines.push({ unit, resourceType: '*', stage: stages.default });
    for (const [resourceType, stage] of Object.entries(stages.resourceTypes))
      lines.push({ unit, resourceType, stage });
  }
  return lines;
}

const CHANGE_COLUMNS = [
  { header: 'at', value: (change: StageChange) => change.at },
  { header: 'unit', value: (change: StageChange) => change.unit },
  { header: 'type', value: (change: StageChange) => change.resourceType ?? '*' },
  { header: 'from', value: (change: StageChange) => change.from },
  { header: 'to', value: (change: StageChange) => change.to },
  { header: 'by', value: (change: StageChange) => change.by },
  { header: 'forced', value: (change: StageChange) => (change.forced ? 'yes' : '') },
  { header: 'reason', value: (change: StageChange) => change.reason },
] as const;

/**
 * A refusal as the command line says it: the library's `pass { force: true }` is `--force` here.
 */
function inCommandTerms(err: unknown): unknown {
  if (!(err instanceof StageChangeRefusedError)) return err;
  const marker = ' refused: ';
  const problem = err.message.slice(err.message.indexOf(marker) + marker.length);
  return new StageChangeRefusedError(
    err.unit,
    err.from,
    err.to,
    problem.replace('pass { force: true }', 'pass --force'),
    err.readiness,
  );
}

/** `dualwrite plan show|set|history`: the cutover plan every instance routes by. */
export const planCommand: CliCommand = {
  register(program, context) {
    const plan = program.command('plan').description('the cutover plan: stages per unit and resource type');

    plan
      .command('show')
      .description('the stored plan: the default stage, and each unit’s')
      .action(async (_options: unknown, command: Command) => {
        const stored = await (await context.operator(command)).plan();
        context.output(command).result(
          stored,
          () =>
            `plan revision ${stored.revision}\n` +
            formatTable(planLines(stored), [
              { header: 'unit', value: (line) => line.unit },
              { header: 'type', value: (line) => line.resourceType },
              { header: 'stage', value: (line) => line.stage },
            ]),
        );
      });

    plan
      .command('set')
      .description(
        'move a unit (or one type of it) to a stage, for every instance: one stage forward at a time, when ready (asks first unless --yes)',
      )
      .argument('<unit>', 'the unit')
      .addArgument(new Argument('<stage>', 'the new stage').choices(STAGES))
      .option('-t, --type <resourceType>', 'only this resource type')
      .option('-r, --reason <text>', 'why (kept in the history; no PHI)')
      .option('--by <who>', 'who (kept in the history)')
      .option('--force', 'skip the readiness and one-stage checks')
      .option('-y, --yes', 'do not ask')
      .action(
        async (
          unit: string,
          stage: Stage,
          options: { type?: string; reason?: string; by?: string; force?: boolean; yes?: boolean },
          command: Command,
        ) => {
          const config = await context.config(command);
          const operator = await context.operator(command);
          await operator.plan(); // follows the stored plan before reading the current stage
          const type: string | undefined =
            options.type ?? (config.mappings[0] as { resourceType: string } | undefined)?.resourceType;
          const from = type === undefined ? '?' : config.plan.stageOf(unit, type);
          await context.confirm(
            `move ${unit}${options.type === undefined ? '' : ` ${options.type}`} from ${from} to ${stage}${options.force === true ? ' (forced)' : ''}`,
            options.yes,
          );
          const change = await operator
            .setStage(unit, stage, {
              ...(options.type === undefined ? {} : { resourceType: options.type }),
              ...(options.reason === undefined ? {} : { reason: options.reason }),
              ...(options.by === undefined ? {} : { by: options.by }),
              ...(options.force === undefined ? {} : { force: options.force }),
            })
            .catch((err: unknown) => {
              throw inCommandTerms(err);
            });
          context
            .output(command)
            .result(
              change,
              () =>
                `${[change.unit, change.resourceType].filter(Boolean).join(' ')}: ${change.from} → ${change.to}\n`,
            );
        },
      );

    plan
      .command('history')
      .description('the recorded stage changes, newest first')
      .option('-u, --unit <unit>', 'one unit’s')
      .option('--limit <n>', 'most changes', positiveInteger, 50)
      .action(async (options: { unit?: string; limit: number }, command: Command) => {
        const changes = await (
          await context.operator(command)
        ).planHistory({
          limit: options.limit,
          ...(options.unit === undefined ? {} : { unit: options.unit }),
        });
        context.output(command).result({ changes }, () => formatTable(changes, CHANGE_COLUMNS));
      });
  },
};

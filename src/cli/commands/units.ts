import type { Command } from 'commander';
import type { Operator } from '../../operator/operator.ts';
import { UsageError } from '../cli-errors.ts';
import type { CliCommand } from '../command-context.ts';

/**
 * A unit must be one the plan names, that is paused, or that holds mirrors or dead letters: a
 * typo would otherwise record a pause (or a resume) for a unit that does not exist, and the
 * real unit would go on mirroring.
 */
async function requireKnownUnit(operator: Operator<unknown, unknown>, unit: string): Promise<void> {
  const known = (await operator.status()).units.map((status) => status.unit);
  if (known.includes(unit)) return;
  throw new UsageError(
    'unit',
    `is not a unit of the plan or the journal (units: ${known.length === 0 ? 'none' : known.join(', ')}); ` +
      'check the name, or name a new unit with `dualwrite plan set <unit> <stage>`',
  );
}

/**
 * `dualwrite pause <unit>` and `dualwrite resume <unit>`: hold a unit's mirroring for every
 * instance sharing the journal (writes and feeds keep journaling its mirrors, nothing is lost),
 * and let it go again (`Operator.pauseUnit`, `Operator.resumeUnit`). A pause asks first unless
 * `--yes`; `status` and `readiness` show it.
 */
export const unitsCommand: CliCommand = {
  register(program, context) {
    program
      .command('pause')
      .description('hold a unit’s mirroring on every instance until resumed (asks first unless --yes)')
      .argument('<unit>', 'the unit')
      .option('--by <who>', 'who pauses it (kept with the pause; no PHI)')
      .option('-r, --reason <text>', 'why (kept with the pause; no PHI)')
      .option('-y, --yes', 'do not ask')
      .action(
        async (unit: string, options: { by?: string; reason?: string; yes?: boolean }, command: Command) => {
          const operator = await context.operator(command);
          await requireKnownUnit(operator, unit);
          await context.confirm(
            `pause the mirroring of unit ${unit} on every instance (its mirrors wait in the journal)`,
            options.yes,
          );
          const pause = await operator.pauseUnit(unit, {
            ...(options.by === undefined ? {} : { by: options.by }),
            ...(options.reason === undefined ? {} : { reason: options.reason }),
          });
          context
            .output(command)
            .result({ unit, paused: pause }, () => `${unit}: paused since ${pause.since}\n`);
        },
      );

    program
      .command('resume')
      .description('let a paused unit’s mirroring go on, on every instance')
      .argument('<unit>', 'the unit')
      .action(async (unit: string, _options: unknown, command: Command) => {
        const operator = await context.operator(command);
        await requireKnownUnit(operator, unit);
        const resumed = await operator.resumeUnit(unit);
        context
          .output(command)
          .result({ unit, resumed }, () => `${unit}: ${resumed ? 'resumed' : 'was not paused'}\n`);
      });
  },
};

import type { Command } from 'commander';
import type { CliCommand } from '../command-context.ts';
import { formatDuration, formatTable } from '../command-output.ts';

/** `dualwrite outbox`: the backlog per unit, resource type and target. */
export const outboxCommand: CliCommand = {
  register(program, context) {
    program
      .command('outbox')
      .description(
        'the backlog per unit, type and target: pending, waiting, leased, dead, and the oldest mirror’s age',
      )
      .option('-u, --unit <unit>', 'one unit’s')
      .option('-t, --type <resourceType>', 'one resource type’s')
      .action(async (options: { unit?: string; type?: string }, command: Command) => {
        const lines = await (
          await context.operator(command)
        ).outbox({
          ...(options.unit === undefined ? {} : { unit: options.unit }),
          ...(options.type === undefined ? {} : { resourceType: options.type }),
        });
        context.output(command).result({ lines }, () =>
          formatTable(lines, [
            { header: 'unit', value: (line) => line.unit },
            { header: 'type', value: (line) => line.resourceType },
            { header: 'target', value: (line) => line.target },
            { header: 'pending', value: (line) => line.pending, align: 'right' },
            { header: 'waiting', value: (line) => line.waiting, align: 'right' },
            { header: 'leased', value: (line) => line.leased, align: 'right' },
            { header: 'dead', value: (line) => line.dead, align: 'right' },
            { header: 'oldest', value: (line) => formatDuration(line.oldestAgeMs), align: 'right' },
          ]),
        );
      });
  },
};

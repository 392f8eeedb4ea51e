import type { Command } from 'commander';
import type { ConflictView } from '../../operator/operator-views.ts';
import type { CliCommand } from '../command-context.ts';
import { formatTable } from '../command-output.ts';
import { duration, positiveInteger } from '../option-parsers.ts';

const paths = (list: readonly string[] | undefined): string =>
  list === undefined ? '?' : list.join(' ') || '-';

/** `dualwrite conflicts list|counts`: what both systems changed between syncs, and who decided. */
export const conflictsCommand: CliCommand = {
  register(program, context) {
    const conflicts = program
      .command('conflicts')
      .description('records both systems changed between two syncs: recent ones, and counts by resolver');

    conflicts
      .command('list')
      .description('recent conflicts, newest first: the resolver, its decision, the paths each side changed')
      .option('-u, --unit <unit>', 'of this unit')
      .option('--resolver <name>', 'decided by this resolver (e.g. three-way-merge)')
      .option('--since <duration>', 'in the last … (e.g. 24h)', duration)
      .option('--limit <n>', 'at most this many', positiveInteger, 50)
      .action(
        async (
          options: { unit?: string; resolver?: string; since?: number; limit: number },
          command: Command,
        ) => {
          const found = await (
            await context.operator(command)
          ).conflicts({
            limit: options.limit,
            ...(options.unit === undefined ? {} : { unit: options.unit }),
            ...(options.resolver === undefined ? {} : { resolver: options.resolver }),
            ...(options.since === undefined
              ? {}
              : { since: new Date(Date.now() - options.since).toISOString() }),
          });
          context.output(command).result({ conflicts: found }, () =>
            formatTable<ConflictView>(found, [
              { header: 'at', value: (conflict) => conflict.at },
              { header: 'unit', value: (conflict) => conflict.unit },
              { header: 'type', value: (conflict) => conflict.resourceType },
              { header: 'legacy id', value: (conflict) => conflict.legacyId },
              { header: 'stage', value: (conflict) => conflict.stage },
              { header: 'resolver', value: (conflict) => conflict.resolvedBy },
              { header: 'decision', value: (conflict) => conflict.resolution },
              { header: 'legacy changed', value: (conflict) => paths(conflict.changedPaths.legacy) },
              { header: 'medplum changed', value: (conflict) => paths(conflict.changedPaths.medplum) },
            ]),
          );
        },
      );

    conflicts
      .command('counts')
      .description('conflicts since an instant (default: the readiness window), by resolver')
      .option('-u, --unit <unit>', 'of this unit')
      .option('--since <duration>', 'in the last … (e.g. 24h)', duration)
      .action(async (options: { unit?: string; since?: number }, command: Command) => {
        const counts = await (
          await context.operator(command)
        ).conflictCounts({
          ...(options.unit === undefined ? {} : { unit: options.unit }),
          ...(options.since === undefined
            ? {}
            : { since: new Date(Date.now() - options.since).toISOString() }),
        });
        context.output(command).result(
          counts,
          () =>
            `conflicts since ${counts.since}${counts.unit === undefined ? '' : ` in ${counts.unit}`}: ${counts.total}\n` +
            formatTable(Object.entries(counts.byResolver), [
              { header: 'resolver', value: ([name]) => name },
              { header: 'conflicts', value: ([, n]) => n, align: 'right' },
            ]),
        );
      });
  },
};

import { Option, type Command } from 'commander';
import { InvalidInputError } from '../../errors.ts';
import type { DeadLetterSelection } from '../../operator/operator.ts';
import type { BulkOutcome, DeadLetterView } from '../../operator/operator-views.ts';
import { UsageError } from '../cli-errors.ts';
import type { CliCommand } from '../command-context.ts';
import { formatTable } from '../command-output.ts';
import { positiveInteger } from '../option-parsers.ts';

interface FilterOptions {
  readonly unit?: string;
  readonly type?: string;
  readonly target?: 'legacy' | 'medplum';
  readonly reason?: string;
  readonly limit?: number;
}

/** Adds the filters every list and bulk action takes. */
function withFilters(command: Command): Command {
  return command
    .option('-u, --unit <unit>', 'of this unit')
    .option('-t, --type <resourceType>', 'of this resource type')
    .addOption(new Option('--target <side>', 'mirroring to this side').choices(['legacy', 'medplum']))
    .option('-r, --reason <name>', "whose reason is this error's name (e.g. RejectedError)")
    .option('--limit <n>', 'at most this many', positiveInteger);
}

function selectionOf(options: FilterOptions): DeadLetterSelection {
  return {
    ...(options.unit === undefined ? {} : { unit: options.unit }),
    ...(options.type === undefined ? {} : { resourceType: options.type }),
    ...(options.target === undefined ? {} : { target: options.target }),
    ...(options.reason === undefined ? {} : { reason: options.reason }),
    ...(options.limit === undefined ? {} : { limit: options.limit }),
  };
}

/** One id, or a selection by filters: never both, never neither. */
function oneOrBulk(id: string | undefined, options: FilterOptions): DeadLetterSelection | undefined {
  const selection = selectionOf(options);
  const filtered = Object.keys(selection).some((key) => key !== 'limit');
  if (id !== undefined && filtered) throw new UsageError('<id>', 'give an id or filters, not both');
  if (id === undefined && !filtered) {
    throw new UsageError('<id>', 'give an id, or at least one of --unit, --type, --target, --reason');
  }
  return id === undefined ? selection : undefined;
}

/** The filters in words, for a confirmation (no values: units, types, error names). */
function describeSelection(selection: DeadLetterSelection): string {
  return Object.entries(selection)
    .map(([key, value]) => `${key} ${String(value)}`)
    .join(', ');
}

const LETTER_COLUMNS = [
  { header: 'id', value: (letter: DeadLetterView) => letter.id, align: 'right' as const },
  { header: 'type', value: (letter: DeadLetterView) => letter.resourceType },
  { header: 'legacy id', value: (letter: DeadLetterView) => letter.legacyId },
  { header: 'unit', value: (letter: DeadLetterView) => letter.unit },
  { header: 'target', value: (letter: DeadLetterView) => letter.target },
  { header: 'kind', value: (letter: DeadLetterView) => letter.kind },
  { header: 'attempts', value: (letter: DeadLetterView) => letter.attempts, align: 'right' as const },
  { header: 'status', value: (letter: DeadLetterView) => letter.status },
  { header: 'reason', value: (letter: DeadLetterView) => letter.reason.name },
  { header: 'http', value: (letter: DeadLetterView) => letter.reason.status },
  { header: 'failed at', value: (letter: DeadLetterView) => letter.failedAt },
];

function describeLetter(letter: DeadLetterView): string {
  const rows: [string, string][] = [
    ['dead letter', letter.id],
    ['record', `${letter.resourceType} ${letter.legacyId} (unit ${letter.unit})`],
    ['mirror', `${letter.kind} to ${letter.target}, ${letter.attempts} attempts`],
    [
      'reason',
      `${letter.reason.name}${letter.reason.status === undefined ? '' : ` (HTTP ${letter.reason.status})`}`,
    ],
    ['message', letter.reason.message],
    ['fields', letter.reason.fields === undefined ? '-' : letter.reason.fields.join(', ')],
    ['failed at', letter.failedAt],
    [
      'status',
      letter.status +
        (letter.resolution === undefined
          ? ''
          : letter.resolution === 'merged'
            ? ' (merged)'
            : ` (${letter.resolution} won)`) +
        (letter.resolvedAt === undefined ? '' : ` at ${letter.resolvedAt}`),
    ],
    ['note', letter.note ?? '-'],
  ];
  return rows.map(([name, value]) => `${name.padEnd(11)}  ${value}`).join('\n') + '\n';
}

function bulkSummary(verb: string, outcome: BulkOutcome): string {
  return (
    `${verb} ${outcome.done.length} of ${outcome.matched} matching dead letters` +
    (outcome.skipped.length === 0 ? '' : ` (${outcome.skipped.length} closed meanwhile)`) +
    '\n'
  );
}

/** `dualwrite dead-letters list|show|retry|discard|resolve`, one by id or in bulk by filters. */
export const deadLettersCommand: CliCommand = {
  register(program, context) {
    const letters = program
      .command('dead-letters')
      .description(
        'mirrors that failed for good: list, show, retry, discard, resolve (one, or in bulk by filters)',
      );

    withFilters(
      letters
        .command('list')
        .description('dead letters, oldest first (open ones unless --status)')
        .addOption(
          new Option('-s, --status <status>', 'which')
            .choices(['open', 'retried', 'discarded', 'resolved', 'all'])
            .default('open'),
        ),
    ).action(
      async (options: FilterOptions & { status: DeadLetterView['status'] | 'all' }, command: Command) => {
        const found = await (
          await context.operator(command)
        ).deadLetters({ ...selectionOf(options), status: options.status });
        context.output(command).result({ deadLetters: found }, () => formatTable(found, LETTER_COLUMNS));
      },
    );

    letters
      .command('show')
      .description('one dead letter (its reason, never the record)')
      .argument('<id>', 'the dead letter')
      .action(async (id: string, _options: unknown, command: Command) => {
        const letter = await (await context.operator(command)).deadLetter(id);
        context.output(command).result({ deadLetter: letter }, () => describeLetter(letter));
      });

    withFilters(
      letters
        .command('retry')
        .description(
          'queue the records again, after the cause was fixed (one by id, or every open one the filters match)',
        )
        .argument('[id]', 'the dead letter'),
    ).action(async (id: string | undefined, options: FilterOptions, command: Command) => {
      const operator = await context.operator(command);
      const selection = oneOrBulk(id, options);
      const outcome: BulkOutcome =
        selection === undefined
          ? (await operator.retryDeadLetter(id ?? ''))
            ? { matched: 1, done: [id ?? ''], skipped: [] }
            : { matched: 1, done: [], skipped: [id ?? ''] }
          : await operator.retryDeadLetters(selection);
      context.output(command).result(outcome, () => bulkSummary('retried', outcome));
    });

    withFilters(
      letters
        .command('discard')
        .description('close without retrying, with a note (asks first unless --yes)')
        .argument('[id]', 'the dead letter')
        .requiredOption('-n, --note <text>', 'why (kept with the letter; no PHI)')
        .option('-y, --yes', 'do not ask'),
    ).action(
      async (
        id: string | undefined,
        options: FilterOptions & { note: string; yes?: boolean },
        command: Command,
      ) => {
        const operator = await context.operator(command);
        const selection = oneOrBulk(id, options);
        if (selection === undefined) {
          await operator.deadLetter(id ?? ''); // names an existing letter before asking
          await context.confirm(`discard dead letter ${id ?? ''}`, options.yes);
          const closed = await operator.discardDeadLetter(id ?? '', options.note);
          const outcome: BulkOutcome = closed
            ? { matched: 1, done: [id ?? ''], skipped: [] }
            : { matched: 1, done: [], skipped: [id ?? ''] };
          context.output(command).result(outcome, () => bulkSummary('discarded', outcome));
          return;
        }
        const matching = await operator.deadLetters({ ...selection, status: 'open' });
        await context.confirm(
          `discard ${matching.length} open dead letters (${describeSelection(selection)})`,
          options.yes,
        );
        const outcome = await operator.discardDeadLetters(selection, options.note);
        context.output(command).result(outcome, () => bulkSummary('discarded', outcome));
      },
    );

    withFilters(
      letters
        .command('resolve')
        .description(
          'decide a conflict held for review: write the winning side’s record to the other side and close the letter (asks first unless --yes)',
        )
        .argument('[id]', 'the dead letter')
        .addOption(
          new Option('-w, --winner <side>', 'the side whose record wins')
            .choices(['legacy', 'medplum'])
            .makeOptionMandatory(),
        )
        .option('-n, --note <text>', 'why (kept with the letter; no PHI)', 'resolved by an operator')
        .option('-y, --yes', 'do not ask'),
    ).action(
      async (
        id: string | undefined,
        options: FilterOptions & { winner: 'legacy' | 'medplum'; note: string; yes?: boolean },
        command: Command,
      ) => {
        const operator = await context.operator(command);
        const selection = oneOrBulk(id, options);
        const resolution = { winner: options.winner };
        if (selection === undefined) {
          const letter = await operator.deadLetter(id ?? '');
          if (letter.status !== 'open')
            throw new InvalidInputError('id', `names a ${letter.status} dead letter`);
          await context.confirm(
            `write ${letter.resourceType} ${letter.legacyId} as ${options.winner} has it to the other side, and close dead letter ${letter.id}`,
            options.yes,
          );
          const closed = await operator.resolveDeadLetter(letter.id, resolution, options.note);
          const outcome: BulkOutcome = closed
            ? { matched: 1, done: [letter.id], skipped: [] }
            : { matched: 1, done: [], skipped: [letter.id] };
          context.output(command).result(outcome, () => bulkSummary('resolved', outcome));
          return;
        }
        const matching = await operator.deadLetters({ ...selection, status: 'open' });
        await context.confirm(
          `resolve ${matching.length} open dead letters (${describeSelection(selection)}) with ${options.winner}'s records`,
          options.yes,
        );
        const outcome = await operator.resolveDeadLetters(selection, resolution, options.note);
        context.output(command).result(outcome, () => bulkSummary('resolved', outcome));
      },
    );
  },
};

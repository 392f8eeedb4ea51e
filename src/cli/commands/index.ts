import type { CliCommand } from '../command-context.ts';
import { conflictsCommand } from './conflicts.ts';
import { consoleCommand } from './console.ts';
import { deadLettersCommand } from './dead-letters.ts';
import { drainCommand } from './drain.ts';
import { backfillCommand, reconcileCommand } from './jobs.ts';
import { outboxCommand } from './outbox.ts';
import { planCommand } from './plan.ts';
import { readinessCommand } from './readiness.ts';
import { statusCommand } from './status.ts';
import { unitsCommand } from './units.ts';

/**
 * The commands of `dualwrite`, in the order `--help` lists them. A new command is a module
 * exporting a {@link CliCommand}, added here (the web console's `console` command joins this
 * way).
 */
export const COMMANDS: readonly CliCommand[] = [
  statusCommand,
  planCommand,
  outboxCommand,
  deadLettersCommand,
  conflictsCommand,
  readinessCommand,
  unitsCommand,
  backfillCommand,
  reconcileCommand,
  drainCommand,
  consoleCommand,
];

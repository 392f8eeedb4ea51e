import type { CliCommand } from '../command-context.ts';
import { drainCommand } from './drain.ts';
import { backfillCommand, reconcileCommand } from './jobs.ts';

/**
 * The commands of `dualwrite`, in the order `--help` lists them. A new command is a module
 * exporting a {@link CliCommand}, added here (the web console's `console` command joins this
 * way).
 */
export const COMMANDS: readonly CliCommand[] = [backfillCommand, reconcileCommand, drainCommand];

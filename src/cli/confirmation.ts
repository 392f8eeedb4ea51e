import { createInterface } from 'node:readline/promises';
import { DeclinedError, UsageError } from './cli-errors.ts';
import type { CliTerminal } from './terminal.ts';

/**
 * Asks the person at the terminal to confirm a destructive action, unless `--yes` was given.
 * Where nobody can answer (standard input is not a terminal: a script, a pipe, CI) and `--yes`
 * was not given, it refuses rather than guess.
 *
 * @param terminal - Where to ask.
 * @param action - What will be done, without values (`discard 3 dead letters`).
 * @param yes - `--yes` was given.
 * @throws {@link UsageError} when it cannot ask and `--yes` was not given;
 *   {@link DeclinedError} when the answer is not yes.
 * @example
 * ```ts
 * await confirm(terminal, 'cancel backfill job 7', options.yes === true);
 * ```
 */
export async function confirm(terminal: CliTerminal, action: string, yes: boolean): Promise<void> {
  if (yes) return;
  if (terminal.stdin.isTTY !== true) {
    throw new UsageError('--yes', `is required to ${action} when standard input is not a terminal`);
  }
  const prompt = createInterface({ input: terminal.stdin, output: terminal.stderr });
  try {
    const answer = await prompt.question(`${action}? [y/N] `);
    if (!/^\s*y(es)?\s*$/i.test(answer)) throw new DeclinedError(action);
  } finally {
    prompt.close();
  }
}

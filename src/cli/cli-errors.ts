import { DualWriteError } from '../errors.ts';

/**
 * The command line is wrong: an unknown command or option, a missing or malformed argument, a
 * destructive action asked for without `--yes` where nobody can be asked. Nothing was done.
 * The CLI exits with status 2.
 *
 * @example
 * ```ts
 * throw new UsageError('--limit', 'must be a positive integer');
 * ```
 */
export class UsageError extends DualWriteError {
  override readonly name = 'UsageError' as const;
  readonly retryable = false as const;
  /** The argument or option at fault. */
  readonly field: string;
  /**
   * @param field - The argument or option at fault.
   * @param problem - What is wrong with it.
   */
  constructor(field: string, problem: string) {
    super(`${field}: ${problem}`);
    this.field = field;
  }
}

/**
 * The operator answered no to a confirmation. Nothing was done. The CLI exits with status 1.
 *
 * @example
 * ```ts
 * throw new DeclinedError('discard 3 dead letters');
 * ```
 */
export class DeclinedError extends DualWriteError {
  override readonly name = 'DeclinedError' as const;
  readonly retryable = false as const;
  /** What was not done. */
  readonly action: string;
  /** @param action - What was not done. */
  constructor(action: string) {
    super(`not confirmed: ${action}`);
    this.action = action;
  }
}

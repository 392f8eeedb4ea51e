import type { CliTerminal } from './terminal.ts';

/**
 * How a long operation ended: its result, and whether Ctrl-C stopped it.
 *
 * @example
 * ```ts
 * const { result, interrupted } = await interruptible(terminal, stopCleanly, run);
 * ```
 */
export interface Interruptible<T> {
  readonly result: T;
  readonly interrupted: boolean;
}

/**
 * Runs a long operation that Ctrl-C stops cleanly: the first Ctrl-C calls `stop` (pause the
 * job, stop claiming) and the operation finishes what it holds and returns; a second Ctrl-C
 * ends the process at once (the default SIGINT action: the operation's leases lapse and another
 * worker takes its pages over).
 *
 * @param terminal - Where Ctrl-C arrives, and where the notice goes (stderr).
 * @param stopping - What the notice says is happening (`pausing backfill job 7`).
 * @param stop - Asks the operation to stop (its failure is ignored); awaited before returning.
 * @param run - The operation.
 * @returns Its result, and whether it was interrupted.
 * @example
 * ```ts
 * await interruptible(terminal, 'stopping the drain', () => writer.pause(), () => writer.drain());
 * ```
 */
export async function interruptible<T>(
  terminal: CliTerminal,
  stopping: string,
  stop: () => unknown,
  run: () => Promise<T>,
): Promise<Interruptible<T>> {
  let stopped: Promise<unknown> | undefined;
  const release = terminal.onInterrupt(() => {
    release(); // The next Ctrl-C is the default one: it ends the process.
    terminal.stderr.write(`\nCtrl-C: ${stopping} after the work in hand (Ctrl-C again to quit at once)\n`);
    stopped = Promise.resolve()
      .then(stop)
      .catch(() => undefined);
  });
  try {
    const result = await run();
    // The operation may see the stop before the stop is recorded (a job's state): wait for it.
    if (stopped !== undefined) await stopped;
    return { result, interrupted: stopped !== undefined };
  } finally {
    release();
  }
}

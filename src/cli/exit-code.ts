/**
 * What the `dualwrite` command's exit status means, for scripts: `0` done, `1` failed (a
 * system unreachable, a call refused, the operator said no, a drain's time limit came with
 * mirrors still owed: `drain`, or the drain after `backfill`/`reconcile`), `2` the command line
 * or the configuration is wrong (nothing was done), `3` the unit asked about is not ready
 * (`readiness` only), `130` interrupted by Ctrl-C (a long job was paused, resumable).
 *
 * @example
 * ```ts
 * if (status === EXIT_CODES.notReady) console.log('not yet');
 * ```
 */
export const EXIT_CODES = {
  ok: 0,
  failure: 1,
  usage: 2,
  notReady: 3,
  interrupted: 130,
} as const;

/**
 * One of {@link EXIT_CODES}.
 *
 * @example
 * ```ts
 * const code: ExitCode = EXIT_CODES.usage;
 * ```
 */
export type ExitCode = (typeof EXIT_CODES)[keyof typeof EXIT_CODES];

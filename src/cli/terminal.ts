/**
 * Where the `dualwrite` command reads and writes: the process's streams when run as a program,
 * others when a program runs a command in-process (the demo prints `dualwrite status` this way).
 *
 * @example
 * ```ts
 * const code = await runCli(['status'], processTerminal());
 * ```
 */
export interface CliTerminal {
  /** Results: one JSON document with `--json`, tables otherwise. */
  readonly stdout: NodeJS.WritableStream & { readonly isTTY?: boolean | undefined };
  /** Errors, prompts, progress. */
  readonly stderr: NodeJS.WritableStream & { readonly isTTY?: boolean | undefined };
  /** Answers to confirmations; never read when it is not a terminal. */
  readonly stdin: NodeJS.ReadableStream & { readonly isTTY?: boolean | undefined };
  /** The environment (`DATABASE_URL`, `MEDPLUM_*`). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Where `dualwrite.config.ts` is looked for. */
  readonly cwd: string;
  /**
   * Calls `listener` on Ctrl-C (SIGINT) instead of ending the process, until the returned
   * function is called.
   */
  onInterrupt(listener: () => void): () => void;
}

/**
 * The running process's terminal.
 *
 * @returns The process's streams, environment and working directory.
 * @example
 * ```ts
 * process.exitCode = await runCli(process.argv.slice(2), processTerminal());
 * ```
 */
export function processTerminal(): CliTerminal {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    cwd: process.cwd(),
    onInterrupt: (listener) => {
      process.on('SIGINT', listener);
      return () => process.off('SIGINT', listener);
    },
  };
}

import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { valueFreeError } from '../error-values.ts';
import { ConfigurationError, DualWriteError, InvalidInputError } from '../errors.ts';
import { UsageError } from './cli-errors.ts';
import { CommandContext } from './command-context.ts';
import { COMMANDS } from './commands/index.ts';
import type { DualwriteConfig } from './dualwrite-config.ts';
import { EXIT_CODES, type ExitCode } from './exit-code.ts';
import type { CliTerminal } from './terminal.ts';

/**
 * Options of {@link runCli}.
 *
 * @typeParam C - The service's per-call context type.
 * @typeParam L - The legacy row type.
 * @example
 * ```ts
 * await runCli(['status'], processTerminal(), { config: { store, plan, legacy, medplum, mappings } });
 * ```
 */
export interface RunCliOptions<C, L> {
  /**
   * A configuration already built, instead of loading `dualwrite.config.ts` (a program that
   * runs a command in-process, like the demo). It is not closed afterwards.
   */
  readonly config?: DualwriteConfig<C, L> | undefined;
}

/** The package's version, read from its manifest (two levels up from `src/cli` and `dist/cli`). */
function version(): string {
  const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version?: string;
  };
  return manifest.version ?? '0.0.0';
}

/**
 * The `dualwrite` program: commander with the global options, and every command of the
 * registry.
 *
 * @param context - What the commands work with.
 * @returns The program, ready to parse.
 */
function program(context: CommandContext): Command {
  const { terminal } = context;
  const root = new Command('dualwrite')
    .description(
      'Operate a medplum-dualwrite migration: the plan, the outbox, dead letters, conflicts, readiness, backfills and reconciliations.',
    )
    .version(version())
    .option('-c, --config <path>', 'the configuration module (default: ./dualwrite.config.ts)')
    .option('--json', 'print one JSON document (stable field names) instead of tables')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => terminal.stdout.write(text),
      writeErr: (text) => terminal.stderr.write(text),
    })
    .addHelpText(
      'after',
      '\nExit status: 0 ok, 1 failure, 2 usage or configuration error, 3 not ready (readiness), 130 interrupted (a job paused by Ctrl-C).\n' +
        'Environment: DATABASE_URL, MEDPLUM_BASE_URL, MEDPLUM_CLIENT_ID, MEDPLUM_CLIENT_SECRET (handed to the configuration).',
    );
  for (const command of COMMANDS) command.register(root, context);
  return root;
}

/**
 * Runs the `dualwrite` command line: parses `argv` (the arguments after the program name), runs
 * the command, prints its result, and returns the exit status. Errors are printed (without
 * values) rather than thrown; with `--json` an error is also one JSON document on stdout,
 * `{ "error": { "name", "message", "field"? } }`.
 *
 * @param argv - The arguments, e.g. `['dead-letters', 'list', '--json']`.
 * @param terminal - Where to read and write.
 * @param options - A configuration already built.
 * @returns The exit status (see {@link EXIT_CODES}).
 * @example
 * ```ts
 * process.exitCode = await runCli(process.argv.slice(2), processTerminal());
 * ```
 */
export async function runCli<C, L>(
  argv: readonly string[],
  terminal: CliTerminal,
  options: RunCliOptions<C, L> = {},
): Promise<ExitCode> {
  // The commands work on any context and row type: they only pass them between the parts.
  const context = new CommandContext(terminal, options.config as DualwriteConfig | undefined);
  try {
    await program(context).parseAsync([...argv], { from: 'user' });
    return context.exitCode ?? EXIT_CODES.ok;
  } catch (err) {
    return reportFailure(err, terminal, argv.includes('--json'));
  } finally {
    await context.close();
  }
}

/** Prints a failure (never a value) and returns its exit status. */
function reportFailure(err: unknown, terminal: CliTerminal, json: boolean): ExitCode {
  if (err instanceof CommanderError) {
    // Commander printed its message (or the help) already.
    const code = err.exitCode === 0 ? EXIT_CODES.ok : EXIT_CODES.usage;
    if (json && code !== EXIT_CODES.ok) {
      printJsonError(terminal, { name: 'UsageError', message: err.message.replace(/^error: /, '') });
    }
    return code;
  }
  const usage =
    err instanceof UsageError || err instanceof InvalidInputError || err instanceof ConfigurationError;
  const safe = err instanceof DualWriteError ? err : valueFreeError(err);
  const field = (err as { field?: unknown }).field;
  terminal.stderr.write(`dualwrite: ${safe.name}: ${safe.message}\n`);
  if (json) {
    printJsonError(terminal, {
      name: safe.name,
      message: safe.message,
      ...(typeof field === 'string' ? { field } : {}),
    });
  }
  return usage ? EXIT_CODES.usage : EXIT_CODES.failure;
}

function printJsonError(terminal: CliTerminal, error: Record<string, string>): void {
  terminal.stdout.write(`${JSON.stringify({ error }, null, 2)}\n`);
}

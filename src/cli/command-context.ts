import type { Command } from 'commander';
import { CommandOutput } from './command-output.ts';
import { confirm } from './confirmation.ts';
import type { DualwriteConfig } from './dualwrite-config.ts';
import type { ExitCode } from './exit-code.ts';
import { loadConfig } from './load-config.ts';
import type { Operator } from '../operator/operator.ts';
import { operatorOf } from './operator-of.ts';
import type { CliTerminal } from './terminal.ts';

/**
 * What a command's action works with: the terminal, its output mode, the configuration (loaded
 * on first use, so `--help` needs none), confirmations, and the exit status it ends with.
 *
 * @example
 * ```ts
 * program.command('outbox').action(async (_options, command: Command) => {
 *   const { store } = await context.config(command);
 *   context.output(command).result(await store.outboxCounts(), () => '…');
 * });
 * ```
 */
export class CommandContext {
  /** Where the command reads and writes. */
  readonly terminal: CliTerminal;
  readonly #given: DualwriteConfig | undefined;
  #loaded: Promise<DualwriteConfig> | undefined;
  #ready: Promise<DualwriteConfig> | undefined;
  #attachedHere: DualwriteConfig['plan'] | undefined;
  #operator: Promise<Operator<unknown, unknown>> | undefined;
  #exitCode: ExitCode | undefined;

  /**
   * @param terminal - Where the command reads and writes.
   * @param config - A configuration already built (a program running a command in-process);
   *   otherwise `--config` or `dualwrite.config.ts` is loaded.
   */
  constructor(terminal: CliTerminal, config?: DualwriteConfig) {
    this.terminal = terminal;
    this.#given = config;
  }

  /**
   * The command's output, per the global `--json`.
   *
   * @param command - The running command.
   * @returns Its output.
   */
  output(command: Command): CommandOutput {
    return new CommandOutput(this.terminal, command.optsWithGlobals<{ json?: boolean }>().json === true);
  }

  /**
   * The configuration, loaded once, its plan attached to its store before any command runs.
   *
   * A plan that follows no store routes every unit by the code's stages, not the stored plan
   * the service's instances share: a unit moved to `rampdown` by `plan set` was reconciled as
   * `legacy-only` (authority legacy), and a queued repair overwrote the authoritative Medplum
   * edit. So a loaded configuration's plan is always attached to the configuration's store
   * (attaching again is harmless: the stored plan wins, and only what the store lacks is
   * seeded), and a configuration given in-process is attached unless its plan already follows
   * a store (the program's own, left as it is). A plan attached here is detached by
   * {@link CommandContext.close}.
   *
   * @param command - The running command (for the global `--config`).
   * @returns The configuration.
   */
  config(command: Command): Promise<DualwriteConfig> {
    if (this.#ready !== undefined) return this.#ready;
    let loaded: Promise<DualwriteConfig>;
    if (this.#given === undefined) {
      const path = command.optsWithGlobals<{ config?: string }>().config;
      loaded = this.#loaded = loadConfig(this.terminal, path).then((found) => found.config);
    } else {
      loaded = Promise.resolve(this.#given);
    }
    this.#ready = loaded.then(async (config) => {
      const attached = config.plan.status().attached;
      if (this.#given === undefined || !attached) {
        await config.plan.attach(config.store);
        if (!attached) this.#attachedHere = config.plan;
      }
      return config;
    });
    return this.#ready;
  }

  /**
   * The operator API over the configuration, built once.
   *
   * @param command - The running command.
   * @returns The operator.
   */
  operator(command: Command): Promise<Operator<unknown, unknown>> {
    this.#operator ??= this.config(command).then(operatorOf);
    return this.#operator;
  }

  /**
   * Confirms a destructive action unless `--yes` (see {@link confirm}).
   *
   * @param action - What will be done, without values.
   * @param yes - `--yes` was given.
   */
  confirm(action: string, yes: boolean | undefined): Promise<void> {
    return confirm(this.terminal, action, yes === true);
  }

  /**
   * Sets the status the command ends with when it does not fail (`readiness`: not ready).
   *
   * @param code - The status.
   */
  exitWith(code: ExitCode): void {
    this.#exitCode = code;
  }

  /** The status set by {@link CommandContext.exitWith}; `undefined` when none was. */
  get exitCode(): ExitCode | undefined {
    return this.#exitCode;
  }

  /** Lets go of a configuration this context loaded (its `close`). */
  async close(): Promise<void> {
    const operator = await this.#operator?.catch(() => undefined);
    await operator?.close();
    await this.#ready?.catch(() => undefined);
    this.#attachedHere?.detach();
    if (this.#loaded === undefined) return;
    const config = await this.#loaded.catch(() => undefined);
    await config?.close?.();
  }
}

/**
 * A top-level command of `dualwrite` (or a group of subcommands): it adds itself to the program.
 * The registry in `commands/index.ts` lists them in help order.
 *
 * @example
 * ```ts
 * export const outboxCommand: CliCommand = {
 *   register: (program, context) => program.command('outbox').action(…),
 * };
 * ```
 */
export interface CliCommand {
  /** Adds the command to `program`. */
  register(program: Command, context: CommandContext): void;
}

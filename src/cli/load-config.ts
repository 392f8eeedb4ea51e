import { existsSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { valueFreeError } from '../error-values.ts';
import { ConfigurationError } from '../errors.ts';
import { validateDualWriterOptions } from '../dual-writer-options.ts';
import { UsageError } from './cli-errors.ts';
import { writerOptions } from './dualwrite-config.ts';
import type { ConfigEnvironment, DualwriteConfig } from './dualwrite-config.ts';
import type { CliTerminal } from './terminal.ts';

/** The files looked for in the working directory when `--config` is not given, in this order. */
export const CONFIG_FILES = [
  'dualwrite.config.ts',
  'dualwrite.config.mts',
  'dualwrite.config.js',
  'dualwrite.config.mjs',
] as const;

/**
 * A configuration as loaded: what it gives, and where it came from.
 *
 * @example
 * ```ts
 * const { config, path } = await loadConfig(terminal, undefined);
 * ```
 */
export interface LoadedConfig {
  /** The command works on every resource type and row shape the service has. */
  readonly config: DualwriteConfig;
  readonly path: string;
}

/**
 * The environment variables a configuration factory is given.
 *
 * @param variables - The environment.
 * @returns What the factory sees.
 * @example
 * ```ts
 * configEnvironment(process.env).databaseUrl;
 * ```
 */
export function configEnvironment(
  variables: Readonly<Record<string, string | undefined>>,
): ConfigEnvironment {
  const given = (name: string): string | undefined => {
    const value = variables[name];
    return value === undefined || value === '' ? undefined : value;
  };
  const baseUrl = given('MEDPLUM_BASE_URL');
  return {
    databaseUrl: given('DATABASE_URL'),
    medplum:
      baseUrl === undefined
        ? undefined
        : { baseUrl, clientId: given('MEDPLUM_CLIENT_ID'), clientSecret: given('MEDPLUM_CLIENT_SECRET') },
    variables,
  };
}

/**
 * Loads the user's configuration module: `--config` when given (relative to the working
 * directory), else the first of {@link CONFIG_FILES} there. A `.ts` module runs as it is (Node
 * strips the types). Its default export is the configuration or a factory called with the
 * environment.
 *
 * @param terminal - The working directory and environment.
 * @param path - `--config`.
 * @returns The configuration, checked.
 * @throws {@link UsageError} naming `--config` (no such file); {@link ConfigurationError} naming
 *   the export's field at fault.
 * @example
 * ```ts
 * const { config } = await loadConfig(terminal, './ops/dualwrite.config.ts');
 * ```
 */
export async function loadConfig(terminal: CliTerminal, path: string | undefined): Promise<LoadedConfig> {
  const file = configPath(terminal.cwd, path);
  const module = await importModule(file, path);
  const exported = module.default;
  const name = `${file}: default export`;
  if (exported === undefined || exported === null) {
    throw new ConfigurationError(
      name,
      exported,
      'must be a configuration object or a function returning one',
    );
  }
  const config: unknown =
    typeof exported === 'function'
      ? await (exported as (env: ConfigEnvironment) => unknown)(configEnvironment(terminal.env))
      : exported;
  return { config: checkConfig(config, name), path: file };
}

/**
 * Imports the configuration module. One that cannot be loaded (not JavaScript or TypeScript, a
 * syntax error, an import that fails) is a usage error naming `--config`, by the error's name and
 * code only: a parser's message quotes the file's text, which may hold secrets (`--config
 * /etc/passwd` exited 1 with a SyntaxError quoting the file).
 */
async function importModule(file: string, given: string | undefined): Promise<{ default?: unknown }> {
  try {
    return (await import(pathToFileURL(file).href)) as { default?: unknown };
  } catch (err) {
    const { name, code } = valueFreeError(err, { message: 'dropped' }) as Error & { code?: string | number };
    throw new UsageError(
      '--config',
      `${given ?? file} could not be loaded as a module (${name}${code === undefined ? '' : ` ${String(code)}`}); it must be a JavaScript or TypeScript module default-exporting the configuration`,
    );
  }
}

function configPath(cwd: string, path: string | undefined): string {
  if (path !== undefined) {
    const file = isAbsolute(path) ? path : resolve(cwd, path);
    if (!existsSync(file)) throw new UsageError('--config', `no such file: ${path}`);
    return file;
  }
  const found = CONFIG_FILES.map((name) => join(cwd, name)).find((file) => existsSync(file));
  if (found === undefined) {
    throw new UsageError('--config', `not given, and no ${CONFIG_FILES[0]} in ${cwd}`);
  }
  return found;
}

/** Checks what the command relies on; the writer's and operator's own checks do the rest. */
function checkConfig(config: unknown, name: string): DualwriteConfig {
  if (typeof config !== 'object' || config === null) {
    throw new ConfigurationError(
      name,
      config,
      'must be an object (store, plan, legacy, medplum, mappings)',
      true,
    );
  }
  const given = config as Record<string, unknown>;
  const expect = (field: string, ok: boolean, problem: string): void => {
    if (!ok) throw new ConfigurationError(`${name}.${field}`, given[field], problem, true);
  };
  const isObject = (value: unknown): boolean => typeof value === 'object' && value !== null;
  const hasMethod = (value: unknown, method: string): boolean =>
    isObject(value) && typeof (value as Record<string, unknown>)[method] === 'function';
  expect('store', hasMethod(given.store, 'outboxCounts'), 'must be a SyncStore (PostgresStore.open(…))');
  expect('plan', hasMethod(given.plan, 'stageOf'), 'must be a CutoverPlan');
  expect('legacy', hasMethod(given.legacy, 'read'), 'must be a LegacyAdapter');
  expect('medplum', isObject(given.medplum), 'must be a MedplumClient');
  expect('mappings', Array.isArray(given.mappings), 'must be an array of mappings');
  expect('close', given.close === undefined || typeof given.close === 'function', 'must be a function');
  // Every command checks the writer's options as the writer does (a misspelt key is refused):
  // `status`, `readiness` and `plan` took a configuration that `backfill` then refused.
  validateDualWriterOptions(writerOptions(config as DualwriteConfig));
  return config as DualwriteConfig;
}

import type { DualWriterOptions } from '../dual-writer-options.ts';
import type { SyncStore } from '../journal/sync-store.ts';

/**
 * What the `dualwrite` command reads from the environment, handed to a configuration factory:
 * `DATABASE_URL`, and `MEDPLUM_BASE_URL` with `MEDPLUM_CLIENT_ID` and `MEDPLUM_CLIENT_SECRET`.
 * Empty variables count as absent.
 *
 * @example
 * ```ts
 * const env: ConfigEnvironment = { databaseUrl: 'postgres://…', medplum: { baseUrl: 'https://…', clientId: 'id', clientSecret: 'secret' }, variables: {} };
 * ```
 */
export interface ConfigEnvironment {
  /** `DATABASE_URL`. */
  readonly databaseUrl: string | undefined;
  /** `MEDPLUM_BASE_URL` and the client credentials; `undefined` without a base URL. */
  readonly medplum:
    | {
        readonly baseUrl: string;
        readonly clientId: string | undefined;
        readonly clientSecret: string | undefined;
      }
    | undefined;
  /** Every environment variable, for settings of your own. */
  readonly variables: Readonly<Record<string, string | undefined>>;
}

/**
 * What `dualwrite.config.ts` gives the `dualwrite` command: the options your service builds its
 * `DualWriter` from (the store is required: the command works on the journal the service
 * shares), and how to let go of what it opened. The command never starts a writer: it reads
 * and changes the journal, and runs the jobs, the drain and the console you ask for.
 *
 * @typeParam C - The service's per-call context type.
 * @typeParam L - The legacy row type.
 * @example
 * ```ts
 * import pg from 'pg';
 * import { CutoverPlan, PostgresStore, createMedplumClient, defineConfig, sqlClientFromPg } from 'medplum-dualwrite';
 * import { MemoryLegacyAdapter } from 'medplum-dualwrite/testing';
 *
 * export default defineConfig(async (env) => {
 *   const pool = new pg.Pool({ connectionString: env.databaseUrl });
 *   const medplum = createMedplumClient({ baseUrl: env.medplum?.baseUrl ?? 'http://localhost:8103/' });
 *   await medplum.startClientLogin(env.medplum?.clientId ?? '', env.medplum?.clientSecret ?? '');
 *   const store = await PostgresStore.open({ sql: sqlClientFromPg(pool) });
 *   const plan = new CutoverPlan<{ clinic: string }>({ default: 'legacy-only', unitOf: (ctx) => ctx.clinic });
 *   await plan.attach(store);
 *   return {
 *     store,
 *     plan,
 *     medplum,
 *     legacy: new MemoryLegacyAdapter<Record<string, unknown>>({ idField: 'id' }),
 *     mappings: [],
 *     close: async () => {
 *       plan.detach();
 *       await store.close();
 *       await pool.end();
 *     },
 *   };
 * });
 * ```
 */
export interface DualwriteConfig<C = unknown, L = unknown> extends DualWriterOptions<C, L> {
  /** The journal the service's writers share. */
  readonly store: SyncStore;
  /** Called once the command is done (end pools, detach the plan). @default nothing */
  readonly close?: (() => Promise<void>) | undefined;
  /** What `dualwrite console` may show. */
  readonly console?:
    | {
        /**
         * Show the values of one record's diff to the operator who asks for it (audited; never
         * logged). Off, a diff shows paths only.
         * @default false
         */
        readonly revealValues?: boolean | undefined;
      }
    | undefined;
}

/**
 * A configuration, or a function of the environment that builds one (sync or async).
 *
 * @example
 * ```ts
 * const factory: DualwriteConfigModule = async (env) => buildConfig(env.databaseUrl);
 * ```
 */
export type DualwriteConfigModule<C = unknown, L = unknown> =
  | DualwriteConfig<C, L>
  | ((env: ConfigEnvironment) => DualwriteConfig<C, L> | Promise<DualwriteConfig<C, L>>);

/**
 * Types the default export of `dualwrite.config.ts`; returns its argument unchanged.
 *
 * @param config - The configuration, or a factory of the environment.
 * @returns `config`.
 * @example
 * ```ts
 * export default defineConfig(async (env) => ({ store, plan, legacy, medplum, mappings: [patients] }));
 * ```
 */
export function defineConfig<C, L>(config: DualwriteConfigModule<C, L>): DualwriteConfigModule<C, L> {
  return config;
}

/**
 * The options of a `DualWriter` in a configuration (everything but `close`): the `drain` command
 * and the backfill's own drain apply mirrors through a writer built from them, never started.
 *
 * @param config - The configuration.
 * @returns The writer's options.
 * @example
 * ```ts
 * const writer = new DualWriter(writerOptions(config));
 * ```
 */
export function writerOptions<C, L>(config: DualwriteConfig<C, L>): DualWriterOptions<C, L> {
  const { close: _close, console: _console, ...options } = config;
  return options;
}

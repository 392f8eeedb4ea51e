import { randomBytes } from 'node:crypto';
import { InvalidArgumentError, type Command } from 'commander';
import { isLoopback } from '../../console/console-access.ts';
import { startConsole } from '../../console/console-server.ts';
import type { ResourceMapping } from '../../mapping/resource-mapping.ts';
import { Operator } from '../../operator/operator.ts';
import type { CliCommand } from '../command-context.ts';

/** A TCP port, 0 for any free one. */
function port(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65_535) throw new InvalidArgumentError('must be a port from 0 to 65535.');
  return n;
}

/**
 * `dualwrite console`: serves the web console (see `startConsole`) over the configuration's
 * store, plan, mappings and clients until Ctrl-C. Bound beyond loopback, it needs the access
 * token from `DUALWRITE_CONSOLE_TOKEN`, or makes one and prints it once. Values in a record's
 * diff only when the configuration says `console: { revealValues: true }`.
 */
export const consoleCommand: CliCommand = {
  register(program, context) {
    program
      .command('console')
      .description('serve the web console (on 127.0.0.1 unless told otherwise) until Ctrl-C')
      .option(
        '--host <address>',
        'the address to listen on; beyond loopback a token is required',
        '127.0.0.1',
      )
      .option('--port <port>', 'the port (0: any free one)', port, 4780)
      .action(async (options: { host: string; port: number }, command: Command) => {
        const config = await context.config(command);
        const output = context.output(command);
        let token = context.terminal.env.DUALWRITE_CONSOLE_TOKEN;
        if (token === undefined && !isLoopback(options.host)) {
          token = randomBytes(24).toString('base64url');
          output.note(`access token (printed once; set DUALWRITE_CONSOLE_TOKEN to choose it): ${token}`);
        }
        const { store, plan, legacy, medplum } = config;
        // The command works on any row type: it only passes the mappings between the parts.
        const mappings = config.mappings as readonly ResourceMapping<unknown>[];
        const operator = new Operator({
          store,
          mappings,
          plan,
          legacy,
          medplum,
          readiness: config.readiness,
          unitOf: config.feeds?.unitOf,
          pacer: config.pacer,
        });
        try {
          const server = await startConsole({
            operator,
            journal: store,
            records: { store, legacy, medplum, mappings },
            revealValues: config.console?.revealValues,
            host: options.host,
            port: options.port,
            token,
          });
          output.result(
            { url: server.url, requiresToken: server.requiresToken },
            () => `console at ${server.url}\n`,
          );
          output.note('Ctrl-C stops it');
          await new Promise<void>((resolve) => {
            const release = context.terminal.onInterrupt(() => {
              release();
              resolve();
            });
          });
          await server.close();
        } finally {
          await operator.close();
        }
      });
  },
};

#!/usr/bin/env node
/**
 * The `dualwrite` program (the package's `bin`). Everything it does is in {@link runCli}; this
 * file only binds it to the process. It exits once the command is done, even if the user's
 * configuration left a pool or a timer open.
 */
import { runCli } from './run-cli.ts';
import { processTerminal } from './terminal.ts';

const code = await runCli(process.argv.slice(2), processTerminal());
process.stdout.write('', () => process.exit(code));

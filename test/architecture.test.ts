/**
 * The layering the README's Architecture section draws: each folder of `src/` imports only from
 * folders below it (the composition files at the top may import anything), and the pure layers
 * import nothing that does I/O. Read from the sources' import statements.
 */
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT } from './helpers/process';

const SRC = path.join(REPO_ROOT, 'src');

/** Top to bottom, as in the README. */
const LAYERS = ['ops', 'progress', 'upload', 'http', 'state', 'store', 'session', 'config', 'protocol'];

/** Modules the pure layers may use: no file system, network or processes (`node:net` for `isIP`). */
const PURE = ['session', 'config', 'protocol'];
const PURE_MODULES = ['node:crypto', 'node:net', 'node:path', 'node:util', 'node:zlib', 'zod'];
/** The one I/O of a pure layer, at its edge: `loadConfigFile` reads the file it is given. */
const IO_AT_THE_EDGE = ['config/parse.ts imports node:fs'];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(file);
    return entry.name.endsWith('.ts') ? [file] : [];
  });
}

/** The module specifiers a file imports (static and dynamic; `import type` too: it is a dependency of the design). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:from|import\(?)\s*'([^']+)'/g)].map((m) => m[1]!);
}

/** `src/upload/raw-upload.ts` → `upload`; a file directly in `src/` → null (composition). */
function folderOf(file: string): string | null {
  const parts = path.relative(SRC, file).split(path.sep);
  return parts.length > 1 ? parts[0]! : null;
}

const files = sourceFiles(SRC);

test('every folder of src/ is one of the layers', () => {
  const folders = new Set(files.map(folderOf).filter((f): f is string => f !== null));
  expect([...folders].sort()).toEqual([...LAYERS].sort());
});

test('no folder imports a folder above it, nor a composition file', () => {
  const upward: string[] = [];
  for (const file of files) {
    const from = folderOf(file);
    if (from === null) continue;
    for (const specifier of importsOf(file).filter((s) => s.startsWith('.'))) {
      const target = path.resolve(path.dirname(file), specifier);
      const to = folderOf(target.endsWith('.ts') ? target : `${target}.ts`);
      if (to === from) continue;
      if (to === null || LAYERS.indexOf(to) < LAYERS.indexOf(from)) upward.push(`${path.relative(SRC, file)} imports ${specifier}`);
    }
  }
  expect(upward).toEqual([]);
});

test('the pure layers use no I/O module', () => {
  const impure: string[] = [];
  for (const file of files.filter((f) => PURE.includes(folderOf(f) ?? ''))) {
    for (const specifier of importsOf(file).filter((s) => !s.startsWith('.'))) {
      const module = /^[a-z_]+$/.test(specifier) && !PURE_MODULES.includes(specifier) ? `node:${specifier}` : specifier;
      if (!PURE_MODULES.includes(module)) impure.push(`${path.relative(SRC, file)} imports ${module}`);
    }
  }
  expect(impure).toEqual(IO_AT_THE_EDGE);
});

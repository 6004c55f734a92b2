/**
 * The layers the README's layout promises, checked on the sources' import statements:
 *
 * - engine/ imports only engine/ and the leaves below. Whatever it needs from the world is a
 *   port it declares (engine/ports.ts) and services/ or server/ implement, so the interpreter
 *   runs the same against real stores, in-memory ones and test doubles, and never reaches the SIP
 *   stack, the server, the CLI or the node types.
 * - nodes/ imports engine/, the leaves and nodes/: a node reaches stores through the ports in
 *   its run context, never an adapter of services/.
 * - services/ (the adapters) and sip/ (the SIP stack) import engine/, the leaves and themselves:
 *   they meet only in server/, which wires adapters into the run context the SIP front end uses.
 * - grammar/ (the RFC 3261 value grammar) and schemas/ (the `.slid` envelope schema) are leaves:
 *   they import nothing of the project, so every layer can share them without depending on
 *   another (engine/ parses URIs without importing sip/).
 *
 * Every module specifier counts — `import`, `import type`, `export … from`, `require()`,
 * `import()` — as TypeScript's own pre-processor finds them (comments and strings are not
 * imports). Packages (zod, ajv, node:…) are not layers and are allowed.
 */
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

const ROOT = path.resolve(__dirname, '../..');
const LEAVES = ['grammar', 'schemas'];

/** Layer → the top-level folders its files may import from. */
const ALLOWED: Record<string, string[]> = {
  engine: ['engine', ...LEAVES],
  nodes: ['nodes', 'engine', ...LEAVES],
  // adapters and the SIP stack sit side by side above the engine: neither reaches the other, the server or the CLI
  services: ['services', 'engine', ...LEAVES],
  sip: ['sip', 'engine', ...LEAVES],
  ...Object.fromEntries(LEAVES.map((leaf) => [leaf, [leaf]])),
};

function sources(dir: string): string[] {
  return fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) return sources(rel);
    return /\.(ts|tsx|js|mjs|cjs)$/.test(e.name) ? [rel] : [];
  });
}

/** Project imports of a file, as top-level folders (`services`), with the specifier as written. */
function projectImports(file: string): Array<{ specifier: string; folder: string }> {
  const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
  const { importedFiles } = ts.preProcessFile(text, true, true);
  return importedFiles
    .map((f) => f.fileName)
    .filter((specifier) => specifier.startsWith('.'))
    .map((specifier) => {
      const target = path.relative(ROOT, path.resolve(ROOT, path.dirname(file), specifier));
      return { specifier, folder: target.startsWith('..') ? '(outside the project)' : target.split(path.sep)[0] };
    });
}

describe.each(Object.keys(ALLOWED))('%s/', (layer) => {
  const files = sources(layer);

  test('has sources', () => {
    expect(files.length).toBeGreaterThan(0);
  });

  test(`imports only ${ALLOWED[layer].map((f) => `${f}/`).join(', ')}`, () => {
    const violations = files.flatMap((file) =>
      projectImports(file)
        .filter((i) => !ALLOWED[layer].includes(i.folder))
        .map((i) => `${file} imports '${i.specifier}' (${i.folder}/)`),
    );
    expect(violations).toEqual([]);
  });
});

test('the import scan sees imports (it would pass vacuously otherwise)', () => {
  expect(projectImports('engine/run.ts').map((i) => i.specifier)).toContain('./ports');
  expect(projectImports('engine/cd.ts').map((i) => i.folder)).toContain('grammar');
  expect(projectImports('nodes/save-location.ts').map((i) => i.folder)).toContain('engine');
  // a type-only import and a re-export count as imports too
  expect(projectImports('nodes/query-database.ts').map((i) => i.specifier)).toContain('../engine/ports');
  expect(projectImports('nodes/common.ts').map((i) => i.specifier)).toContain('../engine/schema-walk');
});

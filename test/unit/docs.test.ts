import { readFileSync } from 'fs';
import path from 'path';
import { builtinRegistry } from '../../nodes';
import { nodeReferenceMarkdown } from '../../nodes/reference';

test('docs/nodes.md is the reference generated from the node schemas (run `npm run docs` after changing a node)', () => {
  const onDisk = readFileSync(path.join(__dirname, '../../docs/nodes.md'), 'utf8');
  expect(onDisk).toBe(nodeReferenceMarkdown(builtinRegistry().list()) + '\n');
  for (const t of builtinRegistry().list()) expect(onDisk).toContain(`\`${t.type}\``);
});

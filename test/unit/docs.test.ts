import { readFileSync } from 'fs';
import path from 'path';
import { builtinRegistry } from '../../nodes';
import { nodeReferenceMarkdown } from '../../nodes/reference';
import { configReferenceMarkdown } from '../../server/config';

test('docs/nodes.md is the reference generated from the node schemas (run `npm run docs` after changing a node)', () => {
  const onDisk = readFileSync(path.join(__dirname, '../../docs/nodes.md'), 'utf8');
  expect(onDisk).toBe(nodeReferenceMarkdown(builtinRegistry().list()) + '\n');
  for (const t of builtinRegistry().list()) expect(onDisk).toContain(`\`${t.type}\``);
});

test('docs/configuration.md is the reference generated from the config schema (run `npm run docs`)', () => {
  const onDisk = readFileSync(path.join(__dirname, '../../docs/configuration.md'), 'utf8');
  expect(onDisk).toBe(configReferenceMarkdown() + '\n');
  expect(onDisk).toContain('`SIPFLOW_LOCATION_URL`');
});

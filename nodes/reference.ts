/** The node reference (docs/nodes.md), generated from the node types' own declarations. */
import type { JsonSchema, NodeType } from '../engine/node-type';

function typeOf(s: JsonSchema): string {
  if (s['x-exit']) return 'exit (node id)';
  if (Array.isArray(s.enum)) return (s.enum as unknown[]).map((v) => `\`${String(v)}\``).join(' \\| ');
  const t = Array.isArray(s.type) ? (s.type as string[]).join(' \\| ') : String(s.type ?? 'any');
  if (t === 'array' && s.items && (s.items as JsonSchema).properties) return 'list of objects (below)';
  if (t === 'array' && s.items) return `list of ${typeOf(s.items as JsonSchema)}`;
  return t;
}

function notes(s: JsonSchema): string {
  const parts: string[] = [];
  if (s.description) parts.push(String(s.description));
  if (s['x-writes']) parts.push('names a variable this node writes');
  else if (s['x-var']) parts.push('variable or literal');
  if (s['x-column']) parts.push('`table.column`');
  const secret = s['x-secret'] as true | { when?: string; matches?: string; from?: string } | undefined;
  if (secret === true) parts.push('secret: redacted from API answers');
  else if (secret?.when)
    parts.push(`secret (redacted from API answers) when \`${secret.when}\` matches \`/${String(secret.matches).replace(/\|/g, '\\|')}/i\``);
  else if (secret?.from) parts.push(`secret (redacted from API answers) when \`${secret.from}\` reads a secret`);
  if (s['x-logic']) parts.push('logic id or name');
  return parts.join('; ');
}

function rows(schema: JsonSchema, prefix: string, out: string[]): void {
  const props = (schema.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((schema.required as string[] | undefined) ?? []);
  for (const [name, s] of Object.entries(props)) {
    out.push(`| \`${prefix}${name}\` | ${typeOf(s)} | ${required.has(name) ? 'yes' : ''} | ${notes(s)} |`);
    const items = s.items as JsonSchema | undefined;
    if (items?.properties) rows(items, `${prefix}${name}[].`, out);
  }
}

/**
 * The reference of these node types; `pluginOf` names the plug-in (nodes.plugins entry) a type
 * comes from, for `sipflow docs nodes --config` (built-in types: undefined).
 */
export function nodeReferenceMarkdown(types: NodeType[], pluginOf: (type: string) => string | undefined = () => undefined): string {
  const plugins = types.some((t) => pluginOf(t.type) !== undefined);
  const out = [
    '# Node reference',
    '',
    `Generated from the node modules in \`nodes/\`${plugins ? ' and the plug-ins of `nodes.plugins`' : ''} (\`npm run docs\`); do not edit by hand.`,
    "Every parameter lives in the node's `values`; exits are fields holding the id of the next node.",
    '',
  ];
  for (const t of types) {
    const plugin = pluginOf(t.type);
    out.push(`## ${t.title} — \`${t.type}\``, '', t.description, '', `Category: ${t.category}.${plugin === undefined ? '' : ` Plug-in: \`${plugin}\`.`}`, '');
    out.push('| field | type | required | notes |', '|---|---|---|---|');
    rows(t.valuesSchema, '', out);
    out.push('');
  }
  return out.join('\n');
}

/**
 * The node types, by category, with a search box above them (title, type, category or
 * description; Enter adds the first match). A click adds the type (what a click does is App's
 * `onAdd`); a drag drops it where it lands on the canvas.
 */
import { useMemo, useState } from 'react';
import { NODE_CATEGORIES } from '../../engine/node-type';
import type { NodeTypeInfo } from './api';
import { categoryColor } from './FlowCanvas';
import { CATEGORY_ICON } from './NodeView';

interface Props {
  types: Map<string, NodeTypeInfo>;
  canAdd: boolean;
  onAdd(type: string): void;
}

/** Types matching every word of the query, grouped by category in the palette's order. */
export function paletteGroups(types: Iterable<NodeTypeInfo>, query: string): Array<readonly [string, NodeTypeInfo[]]> {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  const groups = new Map<string, NodeTypeInfo[]>();
  for (const t of types) {
    const text = `${t.title} ${t.type} ${t.category} ${t.description ?? ''}`.toLowerCase();
    if (words.every((w) => text.includes(w))) (groups.get(t.category) ?? groups.set(t.category, []).get(t.category)!).push(t);
  }
  // a title match ranks before a match in the description only
  if (words.length)
    for (const ts of groups.values())
      ts.sort((a, b) => Number(!words.every((w) => b.title.toLowerCase().includes(w))) - Number(!words.every((w) => a.title.toLowerCase().includes(w))));
  return NODE_CATEGORIES.filter((c) => groups.has(c)).map((c) => [c, groups.get(c)!] as const);
}

export function Palette({ types, canAdd, onAdd }: Props) {
  const [query, setQuery] = useState('');
  const groups = useMemo(() => paletteGroups(types.values(), query), [types, query]);
  const first = useMemo(() => {
    const shown = groups.flatMap(([, ts]) => ts);
    const words = query.toLowerCase().split(/\s+/).filter(Boolean);
    return shown.find((t) => words.every((w) => t.title.toLowerCase().includes(w))) ?? shown[0];
  }, [groups, query]);
  return (
    <section className="panel palette" data-testid="palette">
      <div className="panel-title">
        Node types <span className="hint">click or drag onto the canvas</span>
      </div>
      <input
        className="palette-search"
        type="search"
        placeholder="search node types… (Enter adds the first)"
        value={query}
        data-testid="palette-search"
        onChange={(e) => setQuery(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === 'Enter' && first && canAdd) {
            e.preventDefault();
            onAdd(first.type);
          } else if (e.key === 'Escape') setQuery('');
        }}
      />
      {groups.length === 0 && <p className="hint">no node type matches “{query}”</p>}
      {groups.map(([cat, ts]) => (
        <div key={cat} className="palette-group">
          <div className="palette-cat">{cat}</div>
          {ts.map((t) => (
            <div
              key={t.type}
              className={`palette-item${query && t === first ? ' first' : ''}`}
              draggable={canAdd}
              title={`${t.type}\n${t.description}`}
              data-testid={`palette-${t.type}`}
              onDragStart={(e) => {
                e.dataTransfer.setData('application/x-sipflow-node-type', t.type);
                e.dataTransfer.effectAllowed = 'copy';
              }}
              onClick={() => onAdd(t.type)}
            >
              <span className="sip-icon" style={{ background: categoryColor(t.category) }}>
                {CATEGORY_ICON[t.category]}
              </span>
              {t.title}
            </div>
          ))}
        </div>
      ))}
    </section>
  );
}

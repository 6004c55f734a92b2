/**
 * The `.slid` document as exported by the service logic editor. The raw JSON is kept untouched
 * (unknown keys included) so that load → save is lossless; the engine reads through views.
 */

export interface SlidNode {
  id: number | string;
  name: string;
  type: string;
  description?: string;
  values: Record<string, unknown>;
  archived?: boolean;
  x?: number;
  y?: number;
  [unknown: string]: unknown;
}

export interface SlidLogic {
  name: string;
  description?: string;
  /** Keyed by node id (the editor's export), or an array. */
  nodes: Record<string, SlidNode> | SlidNode[];
  [unknown: string]: unknown;
}

/** The type of the node a logic starts at (exactly one live node per logic). */
export const START_TYPE = 'enter.start';

/** Logic id → logic. */
export type SlidDocument = Record<string, SlidLogic>;

/** The nodes of a logic as [key, node] pairs, whichever form the file uses. */
export function nodeEntries(logic: SlidLogic): Array<[string, SlidNode]> {
  if (Array.isArray(logic.nodes)) return logic.nodes.map((n, i) => [String(n?.id ?? i), n]);
  return Object.entries(logic.nodes ?? {});
}

export const nodeKey = (id: unknown): string => String(id);

/** Serializes a document exactly as loaded (plus any edits made to the object). */
export function saveSlid(doc: SlidDocument): string {
  return JSON.stringify(doc, null, 2) + '\n';
}

/** Parses JSON, turning a syntax error into a message with line and column. */
export function parseSlidText(text: string): { doc?: unknown; error?: string } {
  try {
    return { doc: JSON.parse(text) };
  } catch (e) {
    const msg = (e as Error).message;
    const m = /position (\d+)/.exec(msg);
    if (m) {
      const pos = Number(m[1]);
      const before = text.slice(0, pos);
      const line = before.split('\n').length;
      const col = pos - before.lastIndexOf('\n');
      return { error: `invalid JSON at line ${line}, column ${col}: ${msg}` };
    }
    return { error: `invalid JSON: ${msg}` };
  }
}

/**
 * The size of a node box on the canvas, fixed by its number of exits (NodeView sets it as the box's
 * style, styles.css gives each row that height): the auto-layout (./layout.ts) and the shipped
 * flows' no-overlap test (test/unit/flows/layout.test.ts) use the very numbers the canvas draws.
 */
export const NODE_WIDTH = 180;
/** Border (1 + 1), head row, type row, essence (two lines of 15 px and 4 px padding). */
const BODY = 2 + 28 + 16 + 34;
/** One exit row; the exits block adds a dashed border and 2 + 2 px padding. */
export const EXIT_ROW = 18;

export function nodeHeight(exits: number): number {
  return BODY + (exits > 0 ? 5 + EXIT_ROW * exits : 0);
}

export interface Box {
  id: string;
  x: number;
  y: number;
  width: number;
  height: number;
}

/** The boxes of nodes at their positions, at the canvas's size. */
export function boxesOf(items: Array<{ id: string; x: number; y: number; exits: number }>): Box[] {
  return items.map((i) => ({ id: i.id, x: i.x, y: i.y, width: NODE_WIDTH, height: nodeHeight(i.exits) }));
}

/** Pairs of boxes that overlap or touch (`gap` px apart or less). */
export function overlaps(boxes: Box[], gap = 0): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i < boxes.length; i++)
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i];
      const b = boxes[j];
      if (a.x < b.x + b.width + gap && b.x < a.x + a.width + gap && a.y < b.y + b.height + gap && b.y < a.y + a.height + gap) out.push([a.id, b.id]);
    }
  return out;
}

/**
 * A note on the canvas (`logic["x-sipflow"].notes`, model.ts): text the user double-clicks to edit,
 * moved like a node, resized by its corners when selected. Each change is one undoable edit.
 */
import { memo, useEffect, useRef, useState } from 'react';
import { NodeResizer, type Node, type NodeProps } from '@xyflow/react';
import type { CanvasNote } from './model';

export interface NoteData extends Record<string, unknown> {
  note: CanvasNote;
  /** Starts in the editor (a note just added). */
  editing?: boolean;
  onText(id: string, text: string): void;
  onResize(id: string, box: { x: number; y: number; width: number; height: number }): void;
}
export type NoteNode = Node<NoteData, 'note'>;

export const NOTE_SIZE = { width: 220, height: 110 };

function NoteViewImpl({ data, selected }: NodeProps<NoteNode>) {
  const { note, onText, onResize } = data;
  const [editing, setEditing] = useState(!!data.editing);
  const [draft, setDraft] = useState(note.text);
  const area = useRef<HTMLTextAreaElement>(null);
  useEffect(() => {
    if (!editing) setDraft(note.text);
  }, [note.text, editing]);
  useEffect(() => {
    if (editing) area.current?.focus();
  }, [editing]);
  const done = () => {
    setEditing(false);
    if (draft !== note.text) onText(note.id, draft);
  };
  return (
    <div className={`canvas-note${selected ? ' is-selected' : ''}`} data-note-id={note.id} data-testid="note" onDoubleClick={() => setEditing(true)}>
      <NodeResizer
        isVisible={selected && !editing}
        minWidth={120}
        minHeight={50}
        onResizeEnd={(_e, p) => onResize(note.id, { x: Math.round(p.x), y: Math.round(p.y), width: Math.round(p.width), height: Math.round(p.height) })}
      />
      {editing ? (
        <textarea
          ref={area}
          className="nodrag nowheel"
          value={draft}
          data-testid="note-text"
          onChange={(e) => setDraft(e.target.value)}
          onBlur={done}
          onKeyDown={(e) => {
            if (e.key === 'Escape' || (e.key === 'Enter' && (e.ctrlKey || e.metaKey))) {
              e.preventDefault();
              done();
            }
            e.stopPropagation();
          }}
        />
      ) : (
        <div className="canvas-note-text" title="double-click to edit">
          {note.text || <span className="hint">double-click to write</span>}
        </div>
      )}
    </div>
  );
}

export const NoteView = memo(NoteViewImpl);

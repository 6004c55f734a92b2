/**
 * The logic shown on the canvas and the logics of the file: pick one, add one (a start node, a
 * fresh id), rename or delete the current one. Each change is one undoable edit of the document
 * (./logics.ts says what a rename or a delete does to the sub-logic calls).
 */
import { useState, type Dispatch } from 'react';
import type { SlidDoc } from './model';
import type { Action } from './store';

interface Props {
  doc: SlidDoc;
  logicId: string | null;
  dispatch: Dispatch<Action>;
  chooseLogic(id: string): void;
}

export function LogicMenu({ doc, logicId, dispatch, chooseLogic }: Props) {
  const [editing, setEditing] = useState<null | 'add' | 'rename'>(null);
  const [text, setText] = useState('');
  const [menu, setMenu] = useState<{ top: number; right: number } | null>(null);
  const act = (fn: () => void) => {
    setMenu(null);
    fn();
  };
  const current = logicId ? doc[logicId] : undefined;

  const start = (mode: 'add' | 'rename') => {
    setEditing(mode);
    setText(mode === 'rename' ? (current?.name ?? '') : '');
  };
  const commit = () => {
    const name = text.trim();
    if (name) {
      if (editing === 'add') dispatch({ type: 'addLogic', name });
      else if (editing === 'rename' && logicId) dispatch({ type: 'renameLogic', logicId, name });
    }
    setEditing(null);
  };
  const remove = () => {
    if (!logicId) return;
    if (!window.confirm(`Delete logic ${logicId} “${current?.name ?? ''}” from this file? (Ctrl+Z undoes it)`)) return;
    dispatch({ type: 'deleteLogic', logicId });
  };

  if (editing)
    return (
      <span className="logic-menu">
        <input
          autoFocus
          data-testid="logic-name-input"
          placeholder={editing === 'add' ? 'name of the new logic' : 'new name'}
          value={text}
          onChange={(e) => setText(e.target.value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter') commit();
            else if (e.key === 'Escape') setEditing(null);
          }}
        />
        <button className="small" onClick={commit} data-testid="logic-name-ok">
          {editing === 'add' ? 'Add' : 'Rename'}
        </button>
        <button className="small" onClick={() => setEditing(null)}>
          Cancel
        </button>
      </span>
    );

  return (
    <span className="logic-menu">
      {Object.keys(doc).length > 1 ? (
        <select value={logicId ?? ''} onChange={(e) => chooseLogic(e.target.value)} data-testid="logic-select" title="the logic shown on the canvas">
          {Object.entries(doc).map(([id, l]) => (
            <option key={id} value={id}>
              logic {id} “{l?.name}”
            </option>
          ))}
        </select>
      ) : null}
      <button
        className="small"
        onClick={(e) => {
          const r = e.currentTarget.getBoundingClientRect();
          setMenu((m) => (m ? null : { top: r.bottom + 6, right: window.innerWidth - r.right }));
        }}
        data-testid="logic-menu"
        aria-expanded={menu !== null}
        title={`logic ${logicId ?? ''} “${current?.name ?? ''}”: add, rename or delete logics of this file`}
        aria-label="logic actions"
      >
        ⋯
      </button>
      {menu && (
        <div className="logic-actions" role="menu" style={menu} onMouseLeave={() => setMenu(null)}>
          <button role="menuitem" onClick={() => act(() => start('add'))} data-testid="logic-add">
            + Add a logic
          </button>
          <button role="menuitem" onClick={() => act(() => start('rename'))} disabled={!logicId} data-testid="logic-rename">
            ✎ Rename this logic
          </button>
          <button role="menuitem" onClick={() => act(remove)} disabled={!logicId || Object.keys(doc).length < 2} data-testid="logic-delete">
            ✕ Delete this logic
          </button>
        </div>
      )}
    </span>
  );
}

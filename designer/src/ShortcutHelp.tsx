/** The shortcut help panel: every keyboard and mouse shortcut of the editor (`?` or the top bar's `?` button). */
import { useEffect } from 'react';

export const SHORTCUTS: Array<[keys: string, what: string]> = [
  ['Ctrl+S', 'save the development copy (also while typing)'],
  ['Ctrl+Z', 'undo'],
  ['Ctrl+Y, Ctrl+Shift+Z', 'redo'],
  ['Ctrl+D', 'duplicate the selected nodes'],
  ['Ctrl+C / Ctrl+V', 'copy the selected nodes / paste them (also into another flow)'],
  ['Delete, Backspace', 'delete the selected nodes and edges'],
  ['Shift+drag', 'select with a box'],
  ['Shift+click, Ctrl+click', 'add a node to the selection'],
  ['drag an exit handle', 'connect it: drop on a node'],
  ['drag an edge end', 'reconnect it; drop on the background to clear the exit'],
  ['Enter (in the palette search)', 'add the first matching node type'],
  ['?', 'show or hide this help'],
  ['Escape', 'close this help'],
];

export function ShortcutHelp({ onClose }: { onClose(): void }) {
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') onClose();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [onClose]);
  return (
    <div className="modal-back" onClick={onClose}>
      <div className="modal shortcut-help" role="dialog" aria-label="Keyboard shortcuts" data-testid="shortcut-help" onClick={(e) => e.stopPropagation()}>
        <div className="modal-head">
          <strong>Keyboard shortcuts</strong>
          <button className="small" onClick={onClose} data-testid="shortcut-help-close">
            Close
          </button>
        </div>
        <table>
          <tbody>
            {SHORTCUTS.map(([keys, what]) => (
              <tr key={keys}>
                <td>
                  {keys.split(', ').map((k, i) => (
                    <span key={k}>
                      {i > 0 && ' or '}
                      <kbd>{k}</kbd>
                    </span>
                  ))}
                </td>
                <td>{what}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}

/**
 * Keyboard: Ctrl+S saves (even while typing); Ctrl+Z/Y (Shift+Z) undo and redo, Ctrl+D duplicates,
 * `?` shows the shortcut help (not while typing). The list the help shows: ../ShortcutHelp.tsx.
 */
import { useEffect } from 'react';

export function useShortcuts(k: { save(): void; undo(): void; redo(): void; duplicate(): void; help?(): void }): void {
  const { save, undo, redo, duplicate, help } = k;
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const t = e.target as HTMLElement;
      const typing = t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT' || t.isContentEditable);
      const mod = e.ctrlKey || e.metaKey;
      if (!mod) {
        if (e.key === '?' && !typing && !e.altKey && help) {
          e.preventDefault();
          help();
        }
        return;
      }
      const key = e.key.toLowerCase();
      if (key === 's') {
        e.preventDefault();
        save();
        return;
      }
      if (typing) return;
      if (key === 'z' && !e.shiftKey) {
        e.preventDefault();
        undo();
      } else if (key === 'y' || (key === 'z' && e.shiftKey)) {
        e.preventDefault();
        redo();
      } else if (key === 'd') {
        e.preventDefault();
        duplicate();
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [save, undo, redo, duplicate, help]);
}

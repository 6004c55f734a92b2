/**
 * Edits of the open document and the selection, as stable callbacks: each dispatches an action
 * the reducer applies to the present document (./store.ts), so none reads a stale copy.
 */
import { useMemo, type Dispatch, type RefObject } from 'react';
import type { CanvasHandle } from '../FlowCanvas';
import type { CanvasNote, SlidNode } from '../model';
import type { Action } from '../store';

export interface Editing {
  undo(): void;
  redo(): void;
  /**
   * Adds a node of `type` at `at` and selects it. Without `at` (a palette click): right of the
   * selected node, connected from its first unconnected exit, else at the centre of the canvas.
   */
  addNode(type: string, at?: { x: number; y: number }): void;
  duplicate(): void;
  deleteSelection(nodes: string[], edges: Array<{ source: string; pointer: string }>): void;
  setExit(source: string, pointer: string, target: string | null): void;
  move(moves: Array<{ id: string; x: number; y: number }>): void;
  editNode(logicId: string, id: string, fn: (n: SlidNode) => SlidNode): void;
  /** Edits the canvas notes of the logic shown (one undoable edit). */
  notes(fn: (notes: CanvasNote[]) => CanvasNote[]): void;
  select(ids: string[]): void;
  /** Selects a node, shows its properties and centres the canvas on it. */
  focusNode(id: string): void;
  chooseLogic(logicId: string): void;
}

export function useEditing(dispatch: Dispatch<Action>, canvas: RefObject<CanvasHandle | null>): Editing {
  return useMemo(
    () => ({
      undo: () => dispatch({ type: 'undo' }),
      redo: () => dispatch({ type: 'redo' }),
      addNode: (type, at) => dispatch({ type: 'addNode', nodeType: type, at: at ?? canvas.current?.center() ?? { x: 100, y: 100 }, chain: at === undefined }),
      duplicate: () => dispatch({ type: 'duplicate' }),
      deleteSelection: (nodes, edges) => dispatch({ type: 'delete', nodes, edges }),
      setExit: (source, pointer, target) => dispatch({ type: 'setExit', source, pointer, target }),
      move: (moves) => dispatch({ type: 'move', moves }),
      editNode: (logicId, id, fn) => dispatch({ type: 'editNode', logicId, id, fn }),
      notes: (fn) => dispatch({ type: 'notes', fn }),
      select: (ids) => dispatch({ type: 'select', ids }),
      focusNode: (id) => {
        dispatch({ type: 'focusNode', id });
        canvas.current?.focusNode(id);
      },
      chooseLogic: (logicId) => {
        dispatch({ type: 'logicChosen', logicId });
        setTimeout(() => canvas.current?.fit(), 50);
      },
    }),
    [dispatch, canvas],
  );
}

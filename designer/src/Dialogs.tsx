/**
 * Modal choices asked from async code: `choose(spec)` shows a dialog and resolves with the value of
 * the button pressed (null on Cancel or Escape). Used by the flow actions for save conflicts, an
 * import over an existing flow, activation and the release diff.
 */
import { useCallback, useEffect, useMemo, useRef, useState, type ReactNode } from 'react';

export interface Choice<T extends string> {
  value: T;
  label: string;
  primary?: boolean;
  danger?: boolean;
}

export interface ChoiceSpec<T extends string> {
  title: string;
  body?: ReactNode;
  choices: Array<Choice<T>>;
  /** data-testid of the dialog. */
  testId: string;
  /** Wide dialog (diffs). */
  wide?: boolean;
  /** Label of the button that answers null (default "Cancel"). */
  cancel?: string;
}

export type Choose = <T extends string>(spec: ChoiceSpec<T>) => Promise<T | null>;

interface Pending {
  spec: ChoiceSpec<string>;
  resolve(v: string | null): void;
}

export function useChoice(): { dialog: ReactNode; choose: Choose } {
  const [pending, setPending] = useState<Pending | null>(null);
  const current = useRef<Pending | null>(null);
  const choose = useCallback(
    <T extends string>(spec: ChoiceSpec<T>) =>
      new Promise<T | null>((resolve) => {
        current.current?.resolve(null);
        const p: Pending = {
          spec: spec as ChoiceSpec<string>,
          resolve: (v) => {
            if (current.current === p) current.current = null;
            setPending((x) => (x === p ? null : x));
            resolve(v as T | null);
          },
        };
        current.current = p;
        setPending(p);
      }),
    [],
  );
  useEffect(() => {
    if (!pending) return;
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') pending.resolve(null);
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [pending]);
  const dialog = useMemo(() => {
    if (!pending) return null;
    const { spec } = pending;
    return (
      <div className="modal-back">
        <div className={`modal safe-dialog${spec.wide ? ' wide' : ''}`} role="dialog" aria-label={spec.title} data-testid={spec.testId}>
          <h3>{spec.title}</h3>
          <div className="safe-dialog-body">{spec.body}</div>
          <div className="row safe-dialog-buttons">
            {spec.choices.map((c) => (
              <button
                key={c.value}
                className={c.primary ? 'primary' : c.danger ? 'danger' : ''}
                onClick={() => pending.resolve(c.value)}
                data-testid={`choice-${c.value}`}
              >
                {c.label}
              </button>
            ))}
            <button onClick={() => pending.resolve(null)} data-testid="choice-cancel" autoFocus>
              {spec.cancel ?? 'Cancel'}
            </button>
          </div>
        </div>
      </div>
    );
  }, [pending]);
  return { dialog, choose };
}

/** Which side panels are collapsed to a thin bar, kept in localStorage (per browser, all flows). */
import { useCallback, useState } from 'react';

export interface Panels {
  left: boolean;
  right: boolean;
}

const KEY = 'sipflow.designer.panels';

function load(): Panels {
  try {
    const v = JSON.parse(localStorage.getItem(KEY) ?? '{}') as Partial<Panels>;
    return { left: v.left === true, right: v.right === true };
  } catch {
    return { left: false, right: false };
  }
}

export function usePanels(): [Panels, (side: keyof Panels) => void] {
  const [panels, setPanels] = useState<Panels>(load);
  const toggle = useCallback((side: keyof Panels) => {
    setPanels((p) => {
      const next = { ...p, [side]: !p[side] };
      try {
        localStorage.setItem(KEY, JSON.stringify(next));
      } catch {
        // private mode: the state lasts this session only
      }
      return next;
    });
  }, []);
  return [panels, toggle];
}

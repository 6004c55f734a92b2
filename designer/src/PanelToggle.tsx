/** The button that collapses a side panel to a thin bar and opens it again (./hooks/usePanels.ts keeps the state). */
export function PanelToggle({ side, collapsed, onToggle }: { side: 'left' | 'right'; collapsed: boolean; onToggle(side: 'left' | 'right'): void }) {
  const arrow = (side === 'left') === collapsed ? '»' : '«';
  return (
    <button
      className="panel-toggle"
      onClick={() => onToggle(side)}
      data-testid={`collapse-${side}`}
      aria-expanded={!collapsed}
      title={`${collapsed ? 'Show' : 'Hide'} the ${side === 'left' ? 'flows and node types' : 'properties and simulation'} panel`}
    >
      {arrow}
    </button>
  );
}

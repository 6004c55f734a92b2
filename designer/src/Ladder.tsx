/**
 * The ladder diagram of a recorded call, drawn as plain SVG from ./ladder.ts: a column (lifeline)
 * per host, an arrow per message labelled with its method or status and its time offset;
 * retransmissions dashed and marked. Each arrow is a button (Tab to reach, Enter or Space to open,
 * Up/Down to move along the call); every text is React text, never HTML.
 */
import { useMemo, useRef } from 'react';
import type { HistoryMessage } from './api';
import { buildLadder, formatOffset } from './ladder';

const COL = 250;
const LEFT = 80;
const TOP = 48;
const ROW = 36;

interface Props {
  messages: HistoryMessage[];
  selected: number | null;
  onSelect(index: number): void;
}

export function Ladder({ messages, selected, onSelect }: Props) {
  const { columns, arrows } = useMemo(() => buildLadder(messages), [messages]);
  const svg = useRef<SVGSVGElement>(null);
  const x = (c: number) => LEFT + COL / 2 + c * COL;
  const width = LEFT + Math.max(columns.length, 2) * COL;
  const height = TOP + arrows.length * ROW + 16;

  const focusArrow = (i: number) => {
    const el = svg.current?.querySelector<SVGGElement>(`[data-index="${i}"]`);
    el?.focus();
    onSelect(i);
  };

  return (
    <div className="ladder-wrap">
      <svg ref={svg} className="ladder" width={width} height={height} role="group" aria-label="SIP messages of the call" data-testid="ladder">
        <defs>
          <marker id="ladder-head" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse">
            <path d="M0,0 L10,5 L0,10 z" className="ladder-head" />
          </marker>
        </defs>
        {columns.map((c, i) => (
          <g key={c.address} className={`ladder-col${c.ours ? ' ours' : ''}`} data-testid="ladder-column">
            <text x={x(i)} y={16} textAnchor="middle" className="ladder-host">
              {c.label}
            </text>
            {c.ours && (
              <text x={x(i)} y={30} textAnchor="middle" className="ladder-addr">
                {c.address}
              </text>
            )}
            <line x1={x(i)} x2={x(i)} y1={TOP - 10} y2={height - 4} className="ladder-life" />
          </g>
        ))}
        {arrows.map((a) => {
          const y = TOP + a.index * ROW + ROW / 2;
          const self = a.from === a.to;
          const x1 = x(a.from);
          const x2 = self ? x1 + 40 : x(a.to);
          const label = `${a.label}${a.retransmission ? ' (retransmission)' : ''}`;
          const m = messages[a.index];
          return (
            <g
              key={a.index}
              data-index={a.index}
              data-testid="ladder-arrow"
              data-label={a.label}
              data-retransmission={a.retransmission ? 'true' : undefined}
              className={`ladder-arrow${a.request ? ' request' : ' response'}${a.retransmission ? ' retrans' : ''}${selected === a.index ? ' on' : ''}`}
              role="button"
              tabIndex={0}
              aria-pressed={selected === a.index}
              aria-label={`${formatOffset(a.offsetMs)} ${label}, ${m.src} to ${m.dst}`}
              onClick={() => onSelect(a.index)}
              onKeyDown={(e) => {
                if (e.key === 'Enter' || e.key === ' ') {
                  e.preventDefault();
                  onSelect(a.index);
                } else if (e.key === 'ArrowDown' && a.index + 1 < arrows.length) {
                  e.preventDefault();
                  focusArrow(a.index + 1);
                } else if (e.key === 'ArrowUp' && a.index > 0) {
                  e.preventDefault();
                  focusArrow(a.index - 1);
                }
              }}
            >
              {/* a transparent band from the time offset to the arrow's far end: easy to hit, and the whole of the row's box */}
              <rect x={0} y={y - ROW / 2} width={Math.max(x1, x2) + 6} height={ROW} className="ladder-hit" />
              <text x={4} y={y + 4} className="ladder-time">
                {formatOffset(a.offsetMs)}
              </text>
              {self ? (
                <path d={`M${x1},${y - 6} h40 v12 h-40`} className="ladder-line" markerEnd="url(#ladder-head)" fill="none" />
              ) : (
                <line x1={x1} x2={x2} y1={y + 2} y2={y + 2} className="ladder-line" markerEnd="url(#ladder-head)" />
              )}
              <text x={(x1 + x2) / 2} y={y - 4} textAnchor="middle" className="ladder-label">
                {label}
              </text>
            </g>
          );
        })}
      </svg>
    </div>
  );
}

/**
 * One node on the canvas: category colour and icon, name, type, what it does (its essence,
 * ./essence.ts), a target handle and one named source handle per exit, labelled by meaning (an
 * exit dropped anywhere on the body connects too: FlowCanvas's onConnectEnd). Its size is fixed by
 * its exit count (./nodeSize.ts), so the auto-layout knows it before anything is drawn.
 */
import { memo } from 'react';
import { Handle, Position, type Node, type NodeProps } from '@xyflow/react';
import type { NodeCategory } from '../../engine/node-type';
import { START_TYPE } from '../../engine/slid';
import type { NodeTypeInfo } from './api';
import { truncate } from './essence';
import type { ExitField, SlidNode } from './model';
import { NODE_WIDTH, nodeHeight } from './nodeSize';

export interface SipNodeData extends Record<string, unknown> {
  node: SlidNode;
  info: NodeTypeInfo | undefined;
  exits: ExitField[];
  /** What the node does, one line (./essence.ts). */
  essence: string;
  /** Meaning of each exit, by pointer. */
  exitLabels: Record<string, string>;
  errors: number;
  warnings: number;
  highlighted: boolean;
  step?: number[];
}
export type SipNode = Node<SipNodeData, 'sip'>;

export const CATEGORY_ICON: Record<NodeCategory | 'unknown', string> = {
  start: '▶',
  analysis: '◆',
  time: '◷',
  query: '⛃',
  cache: '⚡',
  registrar: '☎',
  manipulation: '✎',
  list: '☰',
  action: '⚙',
  output: '⇥',
  flow: '↪',
  unknown: '?',
};

function NodeViewImpl({ data, selected }: NodeProps<SipNode>) {
  const { node, info, exits, errors, warnings, essence, exitLabels } = data;
  const cat = info?.category ?? 'unknown';
  const isStart = node.type === START_TYPE;
  return (
    <div
      className={`sip-node cat-${cat}${node.archived ? ' archived' : ''}${errors ? ' has-errors' : ''}${selected ? ' is-selected' : ''}`}
      data-node-id={String(node.id)}
      style={{ width: NODE_WIDTH, height: nodeHeight(exits.length) }}
    >
      {!isStart && <Handle type="target" position={Position.Left} className="in-handle" />}
      <div className="sip-node-head">
        <span className="sip-icon" aria-hidden>
          {CATEGORY_ICON[cat] ?? '?'}
        </span>
        <span className="sip-name" title={node.name}>
          {node.name || '(unnamed)'}
        </span>
        {errors > 0 && (
          <span className="badge error-badge" data-testid="error-badge" title={`${errors} error(s)`}>
            {errors}
          </span>
        )}
        {errors === 0 && warnings > 0 && (
          <span className="badge warning-badge" title={`${warnings} warning(s)`}>
            !
          </span>
        )}
      </div>
      <div className="sip-type">
        {info?.title ?? node.type}
        {node.archived ? ' · archived' : ''}
      </div>
      <div className="sip-essence" data-testid="essence" title={essence}>
        {truncate(essence, 80)}
      </div>
      {exits.length > 0 && (
        <div className="sip-exits">
          {exits.map((e) => {
            const label = exitLabels[e.pointer] ?? e.pointer;
            return (
              <div className="sip-exit" key={e.pointer} data-exit={e.pointer} title={`${label} (${e.pointer})`}>
                <span>{label}</span>
                <Handle type="source" position={Position.Right} id={e.pointer} className="out-handle" />
              </div>
            );
          })}
        </div>
      )}
    </div>
  );
}

export const NodeView = memo(NodeViewImpl);

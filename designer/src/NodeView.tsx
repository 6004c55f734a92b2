/** One node on the canvas: category colour and icon, name, type, a target handle and one named source handle per exit. */
import { memo } from 'react';
import { Handle, Position, type Node, type NodeProps } from '@xyflow/react';
import type { NodeCategory } from '../../engine/node-type';
import { START_TYPE } from '../../engine/slid';
import type { NodeTypeInfo } from './api';
import { exitLabel, type ExitField, type SlidNode } from './model';

export interface SipNodeData extends Record<string, unknown> {
  node: SlidNode;
  info: NodeTypeInfo | undefined;
  exits: ExitField[];
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
  const { node, info, exits, errors, warnings } = data;
  const cat = info?.category ?? 'unknown';
  const isStart = node.type === START_TYPE;
  return (
    <div
      className={`sip-node cat-${cat}${node.archived ? ' archived' : ''}${errors ? ' has-errors' : ''}${selected ? ' is-selected' : ''}`}
      data-node-id={String(node.id)}
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
      {exits.length > 0 && (
        <div className="sip-exits">
          {exits.map((e) => (
            <div className="sip-exit" key={e.pointer} data-exit={e.pointer}>
              <span>{exitLabel(e.pointer)}</span>
              <Handle type="source" position={Position.Right} id={e.pointer} className="out-handle" />
            </div>
          ))}
        </div>
      )}
    </div>
  );
}

export const NodeView = memo(NodeViewImpl);

/** The selected node: name, description, archived, and a form generated from its type's valuesSchema. */
import { memo, useMemo } from 'react';
import Form from '@rjsf/core';
import type { IChangeEvent } from '@rjsf/core';
import validator from '@rjsf/validator-ajv8';
import type { NodeTypeInfo, Problem } from './api';
import { formSchema, mergeChanged, type Pickers } from './formSchema';
import { exitsOf, exitLabel, nodeKey, type Json, type SlidNode } from './model';

interface Props {
  node: SlidNode;
  type: NodeTypeInfo | undefined;
  pickers: Pickers;
  problems: Problem[];
  onChange: (fn: (n: SlidNode) => SlidNode) => void;
}

const uiSchema = { 'ui:submitButtonOptions': { norender: true }, 'ui:options': { label: false } };
/** One object for "no values", so the form schema below is not recomputed on every render. */
const NO_VALUES: Record<string, Json> = {};

function InspectorImpl({ node, type, pickers, problems, onChange }: Props) {
  const values = node.values ?? NO_VALUES;
  const schema = useMemo(() => (type ? formSchema(type.valuesSchema, values, pickers) : null), [type, values, pickers]);
  const exits = type ? exitsOf(type, values) : [];
  const set = (key: string, v: unknown) => onChange((n) => (n[key] === v ? n : { ...n, [key]: v }));
  const onForm = (e: IChangeEvent) =>
    onChange((n) => {
      const merged = mergeChanged(n.values ?? {}, e.formData ?? {});
      return merged === n.values ? n : { ...n, values: merged };
    });
  return (
    <div className="inspector" data-testid="inspector">
      <div className="insp-head">
        <span className={`cat-dot cat-${type?.category ?? 'unknown'}`} />
        <div>
          <div className="insp-title">{type?.title ?? 'Unknown type'}</div>
          <div className="insp-type">
            {node.type} · id {nodeKey(node.id)}
          </div>
        </div>
      </div>
      {problems.length > 0 && (
        <ul className="insp-problems">
          {problems.map((p, i) => (
            <li key={i} className={p.severity}>
              {p.pointer ? <code>{p.pointer}</code> : null} {p.message}
            </li>
          ))}
        </ul>
      )}
      <label className="field">
        name
        <input data-testid="node-name" value={node.name ?? ''} onChange={(e) => set('name', e.target.value)} />
      </label>
      <label className="field">
        description
        <textarea rows={2} value={node.description ?? ''} onChange={(e) => set('description', e.target.value)} />
      </label>
      <label className="check">
        <input type="checkbox" checked={node.archived === true} onChange={(e) => set('archived', e.target.checked)} /> archived (never executed)
      </label>
      {type?.description && <p className="hint">{type.description}</p>}
      {schema && Object.keys(schema.properties ?? {}).length > 0 && (
        <div className="rjsf-wrap">
          <Form
            key={`${nodeKey(node.id)}:${node.type}`}
            schema={schema}
            uiSchema={uiSchema}
            formData={values}
            validator={validator}
            onChange={onForm}
            noHtml5Validate
            liveValidate={false}
            showErrorList={false}
            experimental_defaultFormStateBehavior={{ arrayMinItems: { populate: 'never' }, emptyObjectFields: 'skipDefaults' }}
          />
        </div>
      )}
      {exits.length > 0 && (
        <div className="insp-exits">
          <div className="section">
            exits <span className="hint">(drag from the node's handles)</span>
          </div>
          {exits.map((e) => (
            <div key={e.pointer} className="insp-exit">
              <code>{exitLabel(e.pointer)}</code> →{' '}
              {e.target === null || e.target === undefined || e.target === '' ? <em>unset</em> : `node ${String(e.target)}`}
            </div>
          ))}
        </div>
      )}
    </div>
  );
}

export const Inspector = memo(InspectorImpl);

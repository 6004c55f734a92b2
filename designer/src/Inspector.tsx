/** The selected node: name, description, archived, and a form generated from its type's valuesSchema. */
import { memo, useMemo } from 'react';
import Form from '@rjsf/core';
import type { IChangeEvent } from '@rjsf/core';
import validator from '@rjsf/validator-ajv8';
import type { NodeTypeInfo, Problem } from './api';
import { formSchema, formUiSchema, isFormField, mergeChanged, nodePickers, pointerOfId, type Pickers } from './formSchema';
import { assistValues } from './formAssist';
import { exitsOf, exitLabel, nodeKey, type Json, type SlidNode } from './model';
import { FieldTemplate, TitleFieldTemplate, VarWidget, type FormContext } from './VarWidget';

interface Props {
  node: SlidNode;
  type: NodeTypeInfo | undefined;
  pickers: Pickers;
  problems: Problem[];
  onChange: (fn: (n: SlidNode) => SlidNode) => void;
}

const ROOT_UI = { 'ui:submitButtonOptions': { norender: true }, 'ui:options': { label: false } };
const widgets = { VarWidget };
const templates = { FieldTemplate, TitleFieldTemplate };
/** One object for "no values", so the form schema below is not recomputed on every render. */
const NO_VALUES: Record<string, Json> = {};

const markList = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

/** The node with `pointer` marked var or literal in `x-sipflow` (the contract of docs/designer.md). */
export function withMark(n: SlidNode, pointer: string, mode: 'var' | 'literal'): SlidNode {
  const meta = n['x-sipflow'] && typeof n['x-sipflow'] === 'object' && !Array.isArray(n['x-sipflow']) ? (n['x-sipflow'] as Record<string, Json>) : {};
  const vars = markList(meta.vars).filter((p) => p !== pointer);
  const literals = markList(meta.literals).filter((p) => p !== pointer);
  (mode === 'var' ? vars : literals).push(pointer);
  const next: Record<string, Json> = { ...meta };
  delete next.vars;
  delete next.literals;
  if (vars.length) next.vars = vars;
  if (literals.length) next.literals = literals;
  return { ...n, 'x-sipflow': next };
}

function InspectorImpl({ node, type, pickers, problems, onChange }: Props) {
  const values = node.values ?? NO_VALUES;
  const own = useMemo(() => nodePickers(pickers, values), [pickers, values]);
  const schema = useMemo(() => (type ? formSchema(type.valuesSchema, values, own) : null), [type, values, own]);
  const uiSchema = useMemo(() => ({ ...(schema && type ? formUiSchema(type.valuesSchema, schema) : {}), ...ROOT_UI }), [schema, type]);
  const meta = node['x-sipflow'] as Record<string, Json> | undefined;
  const formContext: FormContext = useMemo(
    () => ({
      variables: pickers.variables,
      known: new Set(pickers.variables),
      vars: new Set(markList(meta?.vars)),
      literals: new Set(markList(meta?.literals)),
      problems,
      pointerOf: (id: string) => (schema ? pointerOfId(schema, id) : undefined),
      problemsAt: (pointer: string) => problems.filter((p) => p.pointer === `values/${pointer}`),
      setMark: (pointer: string, mode: 'var' | 'literal') => onChange((n) => withMark(n, pointer, mode)),
    }),
    [pickers.variables, meta, schema, problems, onChange],
  );
  const exits = type ? exitsOf(type, values) : [];
  // problems of a form field or an exit show under it; the list at the top keeps the others
  const general = problems.filter((p) => {
    const at = p.pointer?.startsWith('values/') ? p.pointer.slice(7) : undefined;
    return at === undefined || !(exits.some((e) => e.pointer === at) || (schema && isFormField(schema, at)));
  });
  const set = (key: string, v: unknown) => onChange((n) => (n[key] === v ? n : { ...n, [key]: v }));
  const onForm = (e: IChangeEvent) =>
    onChange((n) => {
      const before = n.values ?? {};
      const merged = mergeChanged(before, e.formData ?? {});
      if (merged === n.values) return n;
      return { ...n, values: type ? assistValues(type.valuesSchema, before, merged, pickers.foreignKeys ?? []) : merged };
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
      {general.length > 0 && (
        <ul className="insp-problems">
          {general.map((p, i) => (
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
            formContext={formContext}
            widgets={widgets}
            templates={templates}
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
              {formContext.problemsAt(e.pointer).map((p, i) => (
                <div key={i} className={`field-problem ${p.severity}`} data-testid="field-problem" data-pointer={e.pointer}>
                  {p.message}
                </div>
              ))}
            </div>
          ))}
        </div>
      )}
    </div>
  );
}

export const Inspector = memo(InspectorImpl);

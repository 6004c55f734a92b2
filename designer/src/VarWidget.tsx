/**
 * The property form's own pieces (rjsf): the var/abc widget of value fields (`x-var`), a field
 * template that shows the validation problems of a field under it, and item titles numbered from 1
 * ("Condition 1", not `conditions-1`).
 *
 * A value field is read by the engine as a variable when it names a known one, else as literal
 * text (docs/semantics.md). The widget makes the choice visible: `var` (the picker offers the
 * variables) or `abc` (no picker). Its initial state is the explicit mark of the node
 * (`node["x-sipflow"].vars / .literals`), else `var` when the value names a known variable. Only
 * a click on the toggle writes a mark (an unedited document stays byte-identical).
 */
import { getDefaultRegistry } from '@rjsf/core';
import type { FieldTemplateProps, TitleFieldProps, WidgetProps } from '@rjsf/utils';
import type { Problem } from './api';
import { itemLabel } from './formSchema';

export interface FormContext {
  /** Variables known to the file (predefined and written by a live node). */
  variables: string[];
  known: ReadonlySet<string>;
  vars: ReadonlySet<string>;
  literals: ReadonlySet<string>;
  /** The node's problems: data, so that the form (which compares its props ignoring functions) re-renders when they change. */
  problems: Problem[];
  pointerOf(id: string): string | undefined;
  /** Problems located at `values/<pointer>`. */
  problemsAt(pointer: string): Problem[];
  setMark(pointer: string, mode: 'var' | 'literal'): void;
}

const defaults = getDefaultRegistry().templates;

/** A `variable` field (conditions, digits, regex extraction) is always read as a variable. */
export const alwaysVariable = (pointer: string) => pointer.slice(pointer.lastIndexOf('/') + 1) === 'variable';

export function modeOf(ctx: FormContext, pointer: string, value: unknown): 'var' | 'literal' {
  if (alwaysVariable(pointer)) return 'var';
  if (ctx.vars.has(pointer)) return 'var';
  if (ctx.literals.has(pointer)) return 'literal';
  return typeof value === 'string' && ctx.known.has(value) ? 'var' : 'literal';
}

export function VarWidget(props: WidgetProps) {
  const { id, value, onChange, onBlur, onFocus, options, disabled, readonly, registry, placeholder } = props;
  const ctx = registry.formContext as FormContext;
  const pointer = ctx.pointerOf(id) ?? id;
  const mode = modeOf(ctx, pointer, value);
  const fixed = alwaysVariable(pointer);
  const listId = `${id}__examples`;
  const text = value === undefined || value === null ? '' : String(value);
  return (
    <div className={`var-field mode-${mode}`}>
      <input
        id={id}
        name={id}
        className="form-control"
        value={text}
        placeholder={placeholder}
        disabled={disabled || readonly}
        list={mode === 'var' ? listId : undefined}
        onChange={(e) => onChange(e.target.value === '' ? options.emptyValue : e.target.value)}
        onBlur={(e) => onBlur(id, e.target.value)}
        onFocus={(e) => onFocus(id, e.target.value)}
      />
      <button
        type="button"
        className={`var-toggle ${mode}`}
        data-testid={`var-toggle-${pointer}`}
        disabled={fixed || disabled || readonly}
        aria-pressed={mode === 'var'}
        title={
          fixed
            ? 'always read as a variable'
            : mode === 'var'
              ? 'read as a variable: click to make it literal text'
              : 'read as literal text: click to make it a variable'
        }
        onClick={() => ctx.setMark(pointer, mode === 'var' ? 'literal' : 'var')}
      >
        {mode === 'var' ? 'var' : 'abc'}
      </button>
      {mode === 'var' && (
        <datalist id={listId}>
          {ctx.variables.map((v) => (
            <option key={v} value={v} />
          ))}
        </datalist>
      )}
    </div>
  );
}

/** The default field template, with array item labels numbered and the field's problems under it. */
export function FieldTemplate(props: FieldTemplateProps) {
  const ctx = props.registry.formContext as FormContext | undefined;
  const pointer = ctx?.pointerOf(props.id);
  const problems = pointer && ctx ? ctx.problemsAt(pointer) : [];
  const Default = defaults.FieldTemplate;
  const isContainer = props.schema.type === 'object' || props.schema.type === 'array';
  return (
    <>
      <Default {...props} label={itemLabel(props.label)} />
      {!isContainer &&
        problems.map((p, i) => (
          <div key={i} className={`field-problem ${p.severity}`} data-testid="field-problem" data-pointer={pointer}>
            {p.message}
          </div>
        ))}
    </>
  );
}

export function TitleFieldTemplate(props: TitleFieldProps) {
  const Default = defaults.TitleFieldTemplate;
  return <Default {...props} title={itemLabel(props.title)} />;
}

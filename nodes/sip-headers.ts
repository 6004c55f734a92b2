/**
 * SIP headers (action.sipHeaders): adds, replaces or removes headers of the request the logic will
 * relay (output.relay, output.nit.registrar.lookupLocationService) and of the response it sends (output.reply,
 * output.redirect). The node only records its edits, in order, on the call descriptor
 * (CallDescriptor.headerEdits, not a variable): the SIP front end applies them to the outgoing
 * message (sip/header-edits.ts). Responses sipflow makes without the logic (100 Trying,
 * challenges, errors, the proxy's 408/480/503) and responses relayed from downstream are untouched.
 *
 * Protected headers are refused at load (engine/header-edits.ts says which and why). A value is
 * checked after its placeholders are filled: a control character (CR, LF, …) from a sender's
 * header, or a value over 1024 characters, refuses the node's edits (all of them, none recorded)
 * and takes `ifRefused`. Limits: 32 operations per node, 64 edits per message.
 */
import type { NodeType } from '../engine/node-type';
import { normalizeHeaderName } from '../engine/cd';
import {
  HEADER_NAME_PATTERN,
  MAX_HEADER_EDITS_PER_MESSAGE,
  MAX_HEADER_OPERATIONS,
  MAX_HEADER_VALUE_CHARS,
  headerNameProblem,
  headerValueProblem,
} from '../engine/header-edits';
import type { HeaderEdit } from '../engine/types';
import { toText } from '../engine/values';
import { finish, nodeRef, writesVariable } from './common';

type Op = HeaderEdit['op'];

interface Operation {
  op: Op;
  header: string;
  value?: string;
}
interface Values {
  operations: Operation[];
  statusVariable?: string;
  next?: number | string;
  ifRefused?: number | string;
}

const DEFAULT_STATUS_VARIABLE = 'sipHeadersStatus';

export const sipHeadersNode: NodeType<Values> = {
  type: 'action.sipHeaders',
  title: 'SIP headers',
  summary: '{each operations ", "}{op} {header}{end}',
  category: 'action',
  description:
    'Adds, replaces or removes headers of the request the logic relays and of the reply or redirect it sends; Via, Call-ID, CSeq, From, To, Contact, routing, length and credentials headers are protected.',
  valuesSchema: {
    type: 'object',
    required: ['operations'],
    properties: {
      operations: {
        type: 'array',
        minItems: 1,
        maxItems: MAX_HEADER_OPERATIONS,
        description: `edits in order, e.g. remove P-Preferred-Identity then add P-Asserted-Identity (at most ${MAX_HEADER_OPERATIONS}; ${MAX_HEADER_EDITS_PER_MESSAGE} per message)`,
        items: {
          type: 'object',
          required: ['op', 'header'],
          properties: {
            op: {
              type: 'string',
              enum: ['add', 'replace', 'remove'],
              default: 'add',
              description: 'add: one more header line; replace: every line of the header becomes this one (added when absent); remove: every line goes',
            },
            header: {
              type: 'string',
              pattern: HEADER_NAME_PATTERN,
              description: 'header name, e.g. X-Customer (an RFC 3261 token; compact forms are their full names)',
            },
            value: {
              type: 'string',
              maxLength: MAX_HEADER_VALUE_CHARS,
              default: '',
              description: `value with [name] placeholders, e.g. <sip:[calling]@example.com> (add and replace; one line of at most ${MAX_HEADER_VALUE_CHARS} characters)`,
            },
          },
        },
      },
      statusVariable: {
        ...writesVariable,
        default: DEFAULT_STATUS_VARIABLE,
        description: `receives "ok", or why the edits were refused (default ${DEFAULT_STATUS_VARIABLE})`,
      },
      next: nodeRef,
      ifRefused: {
        ...nodeRef,
        'x-optional': true,
        description:
          'taken when a value holds a control character (CR, LF, …) or is too long, or the message has too many edits; none of the node’s edits is kept (unset: the run ends with 500)',
      },
    },
  },
  writes: (v) => [v.statusVariable || DEFAULT_STATUS_VARIABLE],
  check(v) {
    const problems: Array<[string, string]> = [];
    (v.operations ?? []).forEach((o, i) => {
      if (typeof o?.header !== 'string') return;
      const nameProblem = headerNameProblem(o.header);
      if (nameProblem) problems.push([`operations/${i}/header`, nameProblem]);
      const op = o.op ?? 'add';
      const valueProblem = op !== 'remove' && typeof o.value === 'string' ? headerValueProblem(o.value) : null;
      if (valueProblem) problems.push([`operations/${i}/value`, valueProblem]);
      if (op === 'remove' && o.value) problems.push([`operations/${i}/value`, 'a removal takes no value']);
    });
    return problems;
  },
  compile(values, c) {
    const ops = values.operations.map((o) => ({
      op: o.op ?? 'add',
      name: normalizeHeaderName(o.header),
      header: o.header,
      value: (o.op ?? 'add') === 'remove' ? null : c.value(o.value ?? ''),
    }));
    const status = values.statusVariable || DEFAULT_STATUS_VARIABLE;
    const next = c.exit('next');
    const refused = c.exit('ifRefused');
    const where = c.where;
    return (s) => {
      const edits: HeaderEdit[] = [];
      let problem: string | null = null;
      for (const o of ops) {
        if (o.value === null) {
          edits.push({ op: o.op, name: o.name });
          continue;
        }
        const value = toText(o.value(s.cd.vars)).trim();
        const p = headerValueProblem(value);
        if (p) {
          problem = `refused: the value of ${o.header} ${p}`;
          break;
        }
        edits.push({ op: o.op, name: o.name, value });
      }
      const held = s.cd.headerEdits?.length ?? 0;
      if (!problem && held + edits.length > MAX_HEADER_EDITS_PER_MESSAGE)
        problem = `refused: more than ${MAX_HEADER_EDITS_PER_MESSAGE} header edits for one message`;
      s.set(status, problem ?? 'ok');
      if (problem) return refused.node ? refused : finish({ kind: 'error', status: 500, reason: `Server Internal Error (header edit ${problem})`, where });
      s.cd.headerEdits = held ? [...s.cd.headerEdits!, ...edits] : edits;
      return next;
    };
  },
};

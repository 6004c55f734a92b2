import type { NodeType } from '../engine/node-type';
import { isCanonicalNumber, toText } from '../engine/values';
import type { Scalar } from '../engine/types';
import { nodeRef, writesVariable } from './common';
import { cellOf, columnName, listVariable, readList } from './list';

type Operation = 'count' | 'sum' | 'min' | 'max' | 'join';

interface Values {
  list: string;
  column: string;
  operation: Operation;
  separator?: string;
  storeInto: string;
  next?: number | string;
}

const numeric = (v: Scalar): boolean => isCanonicalNumber(v);

/**
 * Aggregate column: one value from a column of a list. Null and missing cells are skipped by
 * every operation. count = cells with a value; sum = the numeric cells added (text cells skipped;
 * 0 for none); min/max compare as numbers when every cell is numeric, else as text (the ordering
 * operators' rule), null for none; join = the cells' text joined with `separator`.
 */
export const aggregateColumnNode: NodeType<Values> = {
  type: 'action.aggregateColumn',
  title: 'Aggregate column',
  summary: '{operation} of {list}.{column} → {storeInto}',
  category: 'list',
  description:
    'Counts, sums, joins or takes the min / max of a column of a list into a variable (null cells skipped; sum skips text; min/max compare numerically when every cell is a number).',
  valuesSchema: {
    type: 'object',
    required: ['list', 'column', 'operation', 'storeInto'],
    properties: {
      list: listVariable,
      column: { ...columnName, description: 'column aggregated' },
      operation: { type: 'string', enum: ['count', 'sum', 'min', 'max', 'join'], default: 'count', description: 'what to compute' },
      separator: { type: 'string', maxLength: 64, default: ',', description: 'join: text between the values' },
      storeInto: { ...writesVariable, description: 'variable the result is written to' },
      next: nodeRef,
    },
  },
  compile(values, c) {
    const { list: name, column, operation, storeInto } = values;
    const separator = values.separator ?? ',';
    const next = c.exit('next');
    return (s) => {
      const cells: Scalar[] = [];
      for (const row of readList(s.cd.vars, name)) {
        const v = cellOf(row, column);
        if (v !== null) cells.push(v);
      }
      s.set(storeInto, aggregate(operation, cells, separator));
      return next;
    };
  },
};

function aggregate(operation: Operation, cells: Scalar[], separator: string): Scalar {
  switch (operation) {
    case 'count':
      return cells.length;
    case 'sum': {
      let sum = 0;
      for (const v of cells) if (numeric(v)) sum += Number(v);
      return sum;
    }
    case 'join':
      return cells.map((v) => toText(v)).join(separator);
    case 'min':
    case 'max': {
      if (cells.length === 0) return null;
      const asNumbers = cells.every(numeric);
      const sign = operation === 'min' ? -1 : 1;
      let best = cells[0];
      for (const v of cells) {
        const d = asNumbers ? Number(v) - Number(best) : toText(v) < toText(best) ? -1 : toText(v) > toText(best) ? 1 : 0;
        if (d * sign > 0) best = v;
      }
      return best;
    }
  }
}

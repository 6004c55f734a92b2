/**
 * Designer-only data under `"x-sipflow"` (canvas notes at logic level, variable/literal marks at
 * node level: docs/flows.md) is ignored by the engine: such a flow loads with no problem, runs as
 * the same flow without it, and saves back with the data intact.
 */
import { readFileSync } from 'fs';
import path from 'path';
import { loadSlidText } from '../../../engine/load';
import { runLogic } from '../../../engine/run';
import { saveSlid } from '../../../engine/slid';
import { testContext } from '../../support/context';
import { cdOf, registry } from './helpers';

const INCOMING = path.join(__dirname, '../../../flows/incoming-call.slid');

test('a logic with x-sipflow notes (and a node with x-sipflow marks) loads, runs and saves unchanged', async () => {
  const plain = JSON.parse(readFileSync(INCOMING, 'utf8'));
  const withNotes = structuredClone(plain);
  const logic = withNotes['31'];
  logic['x-sipflow'] = {
    notes: [
      { id: 'note1', text: 'numbers: exact first, then the longest prefix', x: 40, y: 300, width: 240, height: 90 },
      { id: 'note2', text: 'nobody registered → 480', x: 900, y: 20 },
    ],
  };
  logic.nodes['4']['x-sipflow'] = { literals: ['reason'] };
  const text = JSON.stringify(withNotes, null, 2);
  const a = loadSlidText(text, 'incoming-call.slid', registry);
  const b = loadSlidText(JSON.stringify(plain), 'incoming-call.slid', registry);
  expect(a.problems).toEqual([]);
  expect(JSON.parse(saveSlid(a.doc!))).toEqual(withNotes);
  // the same outcome as without the designer's data (no directory row: the query finds nothing → 404)
  const cd = { requestMethod: 'INVITE', requestURIUser: '000112233', calledNumber: '000112233' };
  const ra = await runLogic(a.service!, '31', cdOf(cd), testContext());
  const rb = await runLogic(b.service!, '31', cdOf(cd), testContext());
  expect(ra.outcome).toEqual(rb.outcome);
  expect(ra.outcome.kind).not.toBe('error');
});

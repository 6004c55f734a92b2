/**
 * The designer's pure views of a recorded call: the ladder's columns and arrows (designer/src/ladder.ts),
 * the call descriptor a run is replayed with, and the CD after each step shared by the simulator and
 * a recorded run (designer/src/trace.ts).
 */
import { buildLadder, formatOffset, parseHeaders, replayDescriptor, requestOf } from '../../../designer/src/ladder';
import { cdAfterSteps, pathHighlight, splitPasses } from '../../../designer/src/trace';
import type { HistoryMessage, HistoryRun } from '../../../services/history/record';
import type { TraceStep } from '../../../engine/types';

const UA = '127.0.0.1:40000';
const US = '127.0.0.1:5060';
const GW = '127.0.0.2:5080';

let t = 1_700_000_000_000;
function msg(direction: 'in' | 'out', src: string, dst: string, firstLine: string, extra = '', dt = 5): HistoryMessage {
  t += dt;
  const status = /^SIP\/2\.0 (\d{3})/.exec(firstLine);
  const method = status ? 'INVITE' : firstLine.split(' ')[0];
  return {
    at: t,
    direction,
    transport: 'udp',
    src,
    dst,
    method,
    status: status ? Number(status[1]) : null,
    firstLine,
    text: `${firstLine}\r\nVia: SIP/2.0/UDP ${src};branch=z9hG4bK1\r\nCSeq: 1 ${method}\r\n${extra}Content-Length: 0\r\n\r\n`,
  };
}

describe('buildLadder', () => {
  const invite = msg('in', UA, US, 'INVITE sip:bob@example.test SIP/2.0');
  const messages = [
    invite,
    msg('out', US, UA, 'SIP/2.0 100 Trying'),
    msg('out', US, GW, 'INVITE sip:bob@127.0.0.2:5080 SIP/2.0', '', 2),
    { ...invite, at: invite.at + 500 },
    msg('in', GW, US, 'SIP/2.0 486 Busy Here', '', 600),
    msg('out', US, UA, 'SIP/2.0 486 Busy Here'),
  ];
  const ladder = buildLadder(messages);

  test('columns: the caller, sipflow, then the hosts it relays to', () => {
    expect(ladder.columns).toEqual([
      { address: UA, ours: false, label: UA },
      { address: US, ours: true, label: 'sipflow' },
      { address: GW, ours: false, label: GW },
    ]);
  });

  test('one arrow per message, from its sender column to its receiver column, labelled with the method or status and reason', () => {
    expect(ladder.arrows.map((a) => [a.from, a.to, a.label])).toEqual([
      [0, 1, 'INVITE'],
      [1, 0, '100 Trying'],
      [1, 2, 'INVITE'],
      [0, 1, 'INVITE'],
      [2, 1, '486 Busy Here'],
      [1, 0, '486 Busy Here'],
    ]);
    expect(ladder.arrows[0].offsetMs).toBe(0);
    expect(ladder.arrows[2].offsetMs).toBe(messages[2].at - messages[0].at);
  });

  test('the same bytes again between the same hosts are a retransmission; the relayed copy is not', () => {
    expect(ladder.arrows.map((a) => a.retransmission)).toEqual([false, false, false, true, false, false]);
  });

  test('offsets: ms, then seconds', () => {
    expect(formatOffset(12.4)).toBe('+12 ms');
    expect(formatOffset(12_345)).toBe('+12.35 s');
  });
});

describe('replay', () => {
  const register = msg(
    'in',
    UA,
    US,
    'REGISTER sip:example.test SIP/2.0',
    'Authorization: Digest username="alice", response="[redacted]"\r\nContact: <sip:alice@127.0.0.1:40000>\r\n Folded;expires=60\r\nRoute: <sip:a>\r\nRoute: <sip:b>\r\n',
  );
  const run: HistoryRun = {
    at: register.at + 1,
    durationMs: 1,
    method: 'REGISTER',
    logicId: '24',
    logic: 'registration',
    flow: 'registration',
    input: { requestMethod: 'REGISTER', fromUsername: 'alice' },
    path: [],
    outcome: 'register',
    status: 200,
    where: null,
  };

  test('headers parsed: folded lines joined, repeated names a list', () => {
    const { headers } = parseHeaders(register.text);
    expect(headers.Contact).toBe('<sip:alice@127.0.0.1:40000> Folded;expires=60');
    expect(headers.Route).toEqual(['<sip:a>', '<sip:b>']);
  });

  test('the CD: the run input and its request headers, a redacted credentials header left out', () => {
    const earlier = msg('in', UA, US, 'REGISTER sip:other SIP/2.0', '', -100);
    expect(requestOf([earlier, register], run)).toBe(register);
    const { cd, dropped } = replayDescriptor([register], run);
    expect(dropped).toEqual(['Authorization']);
    expect(cd).toMatchObject({ requestMethod: 'REGISTER', fromUsername: 'alice', headers: { CSeq: '1 REGISTER' } });
    expect((cd.headers as Record<string, unknown>).Authorization).toBeUndefined();
  });
});

describe('trace: passes, CD after each step, highlight', () => {
  const trace: TraceStep[] = [
    { step: 1, logic: '24', nodeId: '0', nodeName: 'Start', type: 'enter.start', exit: 'next' },
    {
      step: 2,
      logic: '24',
      nodeId: '5',
      nodeName: 'retrieve password',
      type: 'query.database',
      exit: 'ifRecordFound',
      set: { customer_password: '[redacted]' },
    },
    { step: 3, logic: '24', nodeId: '3', nodeName: 'auth', type: 'registrar.authenticate', exit: 'restart', set: { authStatus: 1 } },
    { step: 4, logic: '24', nodeId: '2', nodeName: 'save', type: 'registrar.saveLocation', exit: 'register' },
  ];
  const req = { input: { requestMethod: 'REGISTER', authStatus: 0, headers: { x: 'y' } }, trace, outcome: { kind: 'register', status: 200 } };

  test('the CD after each step: the input, updated by every set', () => {
    const cds = cdAfterSteps(req);
    expect(cds[0]).toEqual({ requestMethod: 'REGISTER', authStatus: 0 });
    expect(cds[1]).toEqual({ requestMethod: 'REGISTER', authStatus: 0, customer_password: '[redacted]' });
    expect(cds[3]).toEqual({ requestMethod: 'REGISTER', authStatus: 1, customer_password: '[redacted]' });
  });

  test('a restart ends a pass; the path lights nodes and the exits taken', () => {
    const passes = splitPasses([req]);
    expect(passes.map((p) => [p.label, p.steps.length, p.outcome?.kind])).toEqual([
      ['Pass 1', 3, undefined],
      ['Pass 2', 1, 'register'],
    ]);
    const h = pathHighlight(passes, '24');
    expect([...h.nodes]).toEqual(['0', '5', '3', '2']);
    expect(h.edges.has('5:ifRecordFound')).toBe(true);
    expect(pathHighlight(passes, 'other').nodes.size).toBe(0);
  });
});

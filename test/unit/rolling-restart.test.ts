/**
 * bench/rolling-restart's verdicts (classifyCall, lostBindingsOf) on hand-made evidence: what
 * counts as a call failed after reaching a live instance, and as a lost binding.
 */
import { classifyCall, lostBindingsOf } from '../../bench/rolling-restart/run';

const T = 1_800_000_000_000;
const down: Array<[number, number]> = [[T, T + 4000]];

describe('classifyCall', () => {
  test('completed, refused (503), failed after a 100 or a lost BYE', () => {
    expect(
      classifyCall(
        [
          { event: 'reached', at: T },
          { event: 'done', at: T + 200 },
        ],
        undefined,
        [],
      ),
    ).toBe('completed');
    expect(classifyCall([{ event: '503', at: T }], undefined, down)).toBe('refused');
    expect(
      classifyCall(
        [
          { event: 'reached', at: T },
          { event: 'noanswer', at: T + 8000 },
        ],
        undefined,
        down,
      ),
    ).toBe('failed');
    expect(
      classifyCall(
        [
          { event: 'reached', at: T },
          { event: 'byelost', at: T + 9000 },
        ],
        undefined,
        [],
      ),
    ).toBe('failed');
  });

  test('silence: not reached while the instance was down, failed while it was up', () => {
    expect(classifyCall([{ event: 'noanswer', at: T + 2000 + 8000 }], undefined, down)).toBe('notReached');
    expect(classifyCall([{ event: 'noanswer', at: T + 60_000 }], undefined, down)).toBe('failed');
    expect(classifyCall([{ event: 'noanswer', at: T + 2000 + 8000 }], undefined, [])).toBe('failed');
  });

  test('aborted by SIPp: on a response (404 of a BYE) failed; on a send error or on silence, not reached only while the instance was down', () => {
    const on404 = {
      reason: "Aborting call on unexpected message for Call-Id '1-2@x': while expecting '200' (index 8), received 'SIP/2.0 404 Not Here",
      at: T + 1000,
    };
    expect(classifyCall([{ event: 'reached', at: T }], on404, down)).toBe('failed');
    expect(classifyCall([], on404, down)).toBe('failed');
    expect(classifyCall([], { reason: 'Unable to send UDP message: Connection refused', at: T + 1000 }, down)).toBe('notReached');
    expect(classifyCall([], { reason: 'Unable to send UDP message: Connection refused', at: T + 60_000 }, down)).toBe('failed');
    // SIPp's -recv_timeout (20 s) fired: the INVITE went out 20 s before, while the instance was down
    const silence = {
      reason: 'Call-Id: 1-2@x, receive timeout on message caller:1 without label to jump to (ontimeout attribute): aborting call',
      at: T + 22_000,
    };
    expect(classifyCall([], silence, down)).toBe('notReached');
    expect(classifyCall([], { ...silence, at: T + 60_000 }, down)).toBe('failed');
  });
});

describe('lostBindingsOf', () => {
  const contactOf = (u: string) => `sip:${u}@127.0.0.3:5099`;
  const lastOk = new Map([
    ['pbx0001', { at: T, granted: 60 }],
    ['pbx0002', { at: T, granted: 60 }],
    ['pbx0003', { at: T, granted: 60 }],
  ]);

  test('a binding stored with the granted expiry (or a later one) is kept; a missing or older one is lost', () => {
    const stored = new Map<string, Date[]>([
      ['pbx0001 sip:pbx0001@127.0.0.3:5099', [new Date(T + 60_000)]],
      // an older refresh's row only: the acknowledged one never reached the database
      ['pbx0002 sip:pbx0002@127.0.0.3:5099', [new Date(T + 50_000)]],
      // pbx0003: no row at all
    ]);
    const lost = lostBindingsOf(lastOk, stored, contactOf);
    expect(lost).toHaveLength(2);
    expect(lost[0]).toMatch(/^pbx0002: 200 at .* for 60 s; stored: /);
    expect(lost[1]).toMatch(/^pbx0003: .*stored: nothing$/);
  });

  test('within the clock slack (2 s) is kept', () => {
    const stored = new Map([[`pbx0001 ${contactOf('pbx0001')}`, [new Date(T + 58_500)]]]);
    expect(lostBindingsOf(new Map([['pbx0001', { at: T, granted: 60 }]]), stored, contactOf)).toEqual([]);
  });
});

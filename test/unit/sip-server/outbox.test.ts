import { Outbox } from '../../../server/sip-threads/protocol';

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Outbox: hot-path messages between SIP threads', () => {
  test('messages pushed within the hold go out as one batch, in order', async () => {
    const posted: unknown[][] = [];
    const out = new Outbox<number>({ postMessage: (m) => posted.push(m as number[]) }, 5);
    out.push(1);
    out.push(2);
    out.push(3);
    expect(posted).toEqual([]);
    await tick(30);
    expect(posted).toEqual([[1, 2, 3]]);
  });

  test('a full batch goes out at once, without waiting for the hold', () => {
    const posted: unknown[][] = [];
    const out = new Outbox<number>({ postMessage: (m) => posted.push(m as number[]) }, 1000, 3);
    out.push(1);
    out.push(2);
    expect(posted).toEqual([]);
    out.push(3);
    expect(posted).toEqual([[1, 2, 3]]);
    out.flush();
    expect(posted).toHaveLength(1); // nothing queued: nothing posted
  });

  test('the timer re-arms after it fired: nothing is left behind', async () => {
    const posted: unknown[][] = [];
    const out = new Outbox<string>({ postMessage: (m) => posted.push(m as string[]) }, 2);
    out.push('a');
    await tick(20);
    out.push('b');
    await tick(20);
    out.push('c');
    out.push('d');
    await tick(20);
    expect(posted).toEqual([['a'], ['b'], ['c', 'd']]);
  });
});

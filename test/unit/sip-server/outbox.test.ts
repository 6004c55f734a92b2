import { Outbox } from '../../../server/sip-threads/protocol';

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Outbox: hot-path messages between SIP threads', () => {
  test('messages pushed within the hold go out as one batch, in order', async () => {
    const posted: unknown[][] = [];
    const out = new Outbox<number>({ postMessage: (m) => posted.push(m as number[]) }, 5);
    out.push(0);
    await new Promise((r) => setImmediate(r)); // idle: the first goes out at the end of the turn
    expect(posted).toEqual([[0]]);
    out.push(1);
    out.push(2);
    out.push(3);
    expect(posted).toEqual([[0]]);
    await tick(30);
    expect(posted).toEqual([[0], [1, 2, 3]]);
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

  test('idle, the first message is not held: it goes out when this turn ends, with all the turn pushed', async () => {
    const posted: unknown[][] = [];
    const out = new Outbox<string>({ postMessage: (m) => posted.push(m as string[]) }, 1000);
    out.push('a');
    out.push('b'); // the same turn (one poll's datagrams)
    expect(posted).toEqual([]);
    await new Promise((r) => setImmediate(r));
    expect(posted).toEqual([['a', 'b']]);
    // just posted: the next waits for the hold (1 s here), as under load
    out.push('c');
    await new Promise((r) => setTimeout(r, 30));
    expect(posted).toEqual([['a', 'b']]);
    out.flush();
    expect(posted).toEqual([['a', 'b'], ['c']]);
  });

  test('a hold of 0 (the inline front end, host.ts): every batch goes out at the end of its turn, never on a timer', async () => {
    const posted: unknown[][] = [];
    const out = new Outbox<string>({ postMessage: (m) => posted.push(m as string[]) }, 0);
    const timers = jest.spyOn(global, 'setTimeout');
    try {
      for (const turn of [['a', 'b'], ['c'], ['d', 'e']]) {
        for (const m of turn) out.push(m);
        expect(posted.at(-1)).not.toEqual(turn); // held until the turn ends…
        await new Promise((r) => setImmediate(r));
        expect(posted.at(-1)).toEqual(turn); // …and no longer, though the last post was just now
      }
      expect(timers).not.toHaveBeenCalled();
    } finally {
      timers.mockRestore();
    }
    expect(posted).toEqual([['a', 'b'], ['c'], ['d', 'e']]);
  });
});

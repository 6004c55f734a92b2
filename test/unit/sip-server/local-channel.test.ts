import { localChannel } from '../../../server/sip-threads/local-channel';

describe('localChannel', () => {
  test('a post reaches the other end as a copy, after the posting turn, in order; close ends both and delivers nothing more', async () => {
    const { port1, port2 } = localChannel();
    const got: unknown[] = [];
    port2.on('message', (m) => got.push(m));
    const sent = { n: 1, bytes: new Uint8Array([1, 2]) };
    port1.postMessage(sent);
    port1.postMessage([2]);
    expect(got).toEqual([]); // not within the posting code
    sent.n = 99;
    await Promise.resolve();
    await Promise.resolve();
    expect(got).toEqual([{ n: 1, bytes: new Uint8Array([1, 2]) }, [2]]);
    expect(got[0]).not.toBe(sent);

    let closes = 0;
    port1.on('close', () => closes++);
    port2.on('close', () => closes++);
    port2.postMessage('in flight');
    const back: unknown[] = [];
    port1.on('message', (m) => back.push(m));
    port2.close();
    port1.close();
    port1.postMessage('after');
    await new Promise((r) => setImmediate(r));
    expect(back).toEqual([]);
    expect(got).toHaveLength(2);
    expect(closes).toBe(2);
  });
});

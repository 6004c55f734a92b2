import path from 'path';
import { parseMessage } from '../../../sip/parser';
import type { SipRequest } from '../../../sip/message';
import { serverTxKey, ServerTransactions, TxState } from '../../../sip/transactions';
import type { SipTransports } from '../../../sip/transport';
import { loadFlows } from '../../../server/sip-server';
import { blocksAlive } from '../../support/retention';

function req(text: string): SipRequest {
  const r = parseMessage(text.replace(/\n/g, '\r\n'));
  if (!r.ok) throw new Error(r.error);
  return r.message as SipRequest;
}

const invite = (branch: string, extra = '') =>
  req(`INVITE sip:bob@example.test SIP/2.0
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=${branch}
From: <sip:alice@example.test>;tag=a1
To: <sip:bob@example.test>${extra}
Call-ID: c1
CSeq: 1 INVITE
Content-Length: 0

`);

describe('serverTxKey', () => {
  test('RFC 3261: branch + sent-by + method; ACK and INVITE share it, CANCEL does not', () => {
    const r = invite('z9hG4bKabc');
    expect(serverTxKey(r, 'z9hG4bKabc', '10.0.0.1:5060', 'ACK')).toBe(serverTxKey(r, 'z9hG4bKabc', '10.0.0.1:5060', 'INVITE'));
    expect(serverTxKey(r, 'z9hG4bKabc', '10.0.0.1:5060', 'CANCEL')).not.toBe(serverTxKey(r, 'z9hG4bKabc', '10.0.0.1:5060', 'INVITE'));
    expect(serverTxKey(r, 'z9hG4bKabc', '10.0.0.2:5060', 'INVITE')).not.toBe(serverTxKey(r, 'z9hG4bKabc', '10.0.0.1:5060', 'INVITE'));
  });

  test('RFC 2543 fallback: the ACK (with our To tag) matches its INVITE', () => {
    const inv = invite('old1');
    const ack = req(`ACK sip:bob@example.test SIP/2.0
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=old1
From: <sip:alice@example.test>;tag=a1
To: <sip:bob@example.test>;tag=ours
Call-ID: c1
CSeq: 1 ACK
Content-Length: 0

`);
    expect(serverTxKey(ack, 'old1', '10.0.0.1:5060', 'ACK')).toBe(serverTxKey(inv, 'old1', '10.0.0.1:5060', 'INVITE'));
  });
});

describe('ServerTransactions', () => {
  const sent: Buffer[] = [];
  const transports = {
    send: (b: Buffer) => {
      sent.push(b);
    },
  } as unknown as SipTransports;

  test('a completed non-INVITE keeps only what absorbing retransmissions needs: its response, not its request', () => {
    const txs = new ServerTransactions(transports);
    const peer = { proto: 'udp' as const, address: '10.0.0.1', port: 5060 };
    const r = invite('z9hG4bKkeep');
    const tx = txs.create('keep', r, 'REGISTER', peer);
    expect(tx.request).toBe(r);
    txs.respond(tx, Buffer.from('SIP/2.0 200 OK'), 200);
    expect(txs.get('keep')).toBe(tx);
    expect(txs.resendable(tx)?.toString()).toBe('SIP/2.0 200 OK');
    expect(tx.lastResponse).toBeNull(); // kept in the ring: see the slab test below
    expect(tx.request).not.toBe(r);
    expect(tx.request.headers).toEqual({});
    // an INVITE keeps its request (ACK, CANCEL and the relay need it)
    const inv = invite('z9hG4bKinv');
    const itx = txs.create('inv', inv, 'INVITE', peer);
    txs.respond(itx, Buffer.from('SIP/2.0 486 Busy Here'), 486);
    expect(itx.request).toBe(inv);
    txs.close();
  });

  test('a final response completes a non-INVITE transaction; it is remembered, then forgotten past maxCompleted', () => {
    const txs = new ServerTransactions(transports, { maxCompleted: 2 });
    const peer = { proto: 'udp' as const, address: '10.0.0.1', port: 5060 };
    const made = [1, 2, 3].map((i) => {
      const tx = txs.create(`k${i}`, invite('z9hG4bK' + i), 'REGISTER', peer);
      txs.respond(tx, Buffer.from(`r${i}`), 200);
      return tx;
    });
    expect(made.map((t) => t.state)).toEqual([TxState.Terminated, TxState.Completed, TxState.Completed]);
    expect(txs.get('k1')).toBeUndefined(); // evicted: bounded memory
    expect(txs.resendable(txs.get('k3')!)?.toString()).toBe('r3');
    expect(txs.inFlight).toBe(0);
    txs.close();
  });

  test('a completed transaction resends every byte value exactly, and a completed INVITE keeps its Buffer (Timer G resends it)', () => {
    const txs = new ServerTransactions(transports);
    const peer = { proto: 'udp' as const, address: '10.0.0.1', port: 5060 };
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => 255 - i));
    const tx = txs.create('all', invite('z9hG4bKall'), 'REGISTER', peer);
    txs.respond(tx, all, 200);
    expect([...txs.resendable(txs.get('all')!)!]).toEqual([...all]);
    const itx = txs.create('inv', invite('z9hG4bKinv2'), 'INVITE', peer);
    const busy = Buffer.from('SIP/2.0 486 Busy Here');
    txs.respond(itx, busy, 486);
    expect(itx.lastResponse).toBe(busy);
    expect(txs.resendable(itx)).toBe(busy);
    txs.close();
  });

  test('completed transactions keep none of the memory blocks their responses were cut from', async () => {
    const N = 2000;
    const peer = { proto: 'udp' as const, address: '10.0.0.1', port: 5060 };
    const response = (i: number) => Buffer.from(`SIP/2.0 200 OK\r\nCall-ID: ${i}\r\n\r\n`);
    // a sender that keeps nothing (the suite's keeps what it sent)
    const wire = { send: () => undefined } as unknown as SipTransports;
    // the control: INVITE transactions keep their responses as they are (Timer G), and so their blocks
    const invites = new ServerTransactions(wire);
    expect(await blocksAlive(N, response, (b, i) => invites.respond(invites.create(`i${i}`, invite(`z9hG4bKi${i}`), 'INVITE', peer), b, 486))).toBe(N);
    invites.close();
    const txs = new ServerTransactions(wire);
    expect(await blocksAlive(N, response, (b, i) => txs.respond(txs.create(`r${i}`, invite(`z9hG4bKr${i}`), 'REGISTER', peer), b, 200))).toBe(0);
    expect(txs.size).toBe(N);
    expect(txs.resendable(txs.get('r7')!)!.equals(response(7))).toBe(true);
    txs.close();
  });

  test('a transaction is found while under way, after it completed, and not after it was forgotten; a key is counted once', () => {
    const txs = new ServerTransactions(transports, { maxCompleted: 10 });
    const peer = { proto: 'udp' as const, address: '10.0.0.1', port: 5060 };
    const a = txs.create('a', invite('z9hG4bKa'), 'REGISTER', peer);
    const b = txs.create('b', invite('z9hG4bKb'), 'REGISTER', peer);
    expect(txs.get('a')).toBe(a);
    expect(txs.size).toBe(2);
    txs.respond(a, Buffer.from('SIP/2.0 200 OK'), 200); // completed: absorbs for Timer J
    expect(txs.get('a')).toBe(a);
    expect(txs.size).toBe(2);
    txs.forget(b); // a challenge sent statelessly (sip/front-end.ts respondOnce)
    expect(txs.get('b')).toBeUndefined();
    expect(txs.size).toBe(1);
    expect(txs.inFlight).toBe(0);
    txs.forget(a); // a completed one can be forgotten too
    expect(txs.get('a')).toBeUndefined();
    expect(txs.size).toBe(0);
    txs.close();
  });

  test('past maxCompletedBytes the oldest completed transactions are forgotten first; a response larger than the ring is sent, not kept', () => {
    const wire = { send: () => undefined } as unknown as SipTransports;
    const txs = new ServerTransactions(wire, { maxCompletedBytes: 65_536 });
    const peer = { proto: 'udp' as const, address: '10.0.0.1', port: 5060 };
    const complete = (key: string, bytes: Buffer) => {
      const tx = txs.create(key, invite(`z9hG4bK${key}`), 'REGISTER', peer);
      txs.respond(tx, bytes, 200);
      return tx;
    };
    const response = (i: number) => Buffer.from(`SIP/2.0 200 OK\r\nCall-ID: ${i}\r\n`.padEnd(1000, 'x'));
    for (let i = 0; i < 200; i++) complete(`k${i}`, response(i));
    // 65 responses of 1,000 bytes fit in 64 KiB: the newest are there, byte for byte, the oldest forgotten
    expect(txs.size).toBe(65);
    expect(txs.get('k134')).toBeUndefined();
    for (const i of [135, 170, 199]) expect(txs.resendable(txs.get(`k${i}`)!)!.equals(response(i))).toBe(true);
    // a response the ring cannot hold leaves the others where they are
    const huge = complete('huge', Buffer.alloc(70_000, 0x41));
    expect(txs.get('huge')).toBe(huge);
    expect(txs.resendable(huge)).toBeNull();
    expect(txs.resendable(txs.get('k199')!)!.equals(response(199))).toBe(true);
    expect(txs.size).toBe(66);
    txs.close();
  });

  test('reliable transport: Timer J = 0', () => {
    const txs = new ServerTransactions(transports);
    const tx = txs.create('t', invite('z9hG4bKt'), 'OPTIONS', { proto: 'tcp', address: '10.0.0.1', port: 5060 });
    txs.respond(tx, Buffer.from('x'), 200);
    expect(txs.get('t')).toBeUndefined();
    txs.close();
  });

  test("a final response's onFinal runs before the response is sent (a freed call slot is on its way first); a provisional does not call it", () => {
    const order: string[] = [];
    const txs = new ServerTransactions({ send: (b: Buffer) => order.push(`sent ${b.toString()}`) } as unknown as SipTransports);
    const tx = txs.create('f', invite('z9hG4bKf'), 'INVITE', { proto: 'udp', address: '10.0.0.1', port: 5060 });
    tx.onFinal = (status, reason) => order.push(`final ${status} ${reason}`);
    txs.respond(tx, Buffer.from('180'), 180);
    txs.respond(tx, Buffer.from('487'), 487);
    txs.respond(tx, Buffer.from('487 again'), 487);
    expect(order).toEqual(['sent 180', 'final 487 ', 'sent 487']);
    txs.close();
  });
});

describe('loadFlows', () => {
  test('every file is its own service; a ref names the first file having it; file:ref names one file', () => {
    const f = loadFlows(path.resolve(__dirname, '../../integration/sip/fixtures'));
    expect(f.files.map((x) => x.file)).toEqual(['test-flows.slid']);
    expect(f.resolve('proxy-test')?.logic).toBe('100');
    expect(f.resolve('test-flows.slid:101')?.logic).toBe('101');
    expect(f.resolve('nope')).toBeUndefined();
  });
});

/**
 * Two connected ports in one thread, for the dispatcher and its inline front end (host.ts,
 * sip-thread.ts): the shape of a MessageChannel's, without its cost. A MessagePort in the same
 * thread still serializes, signals the event loop through a file descriptor and wakes it for
 * every post: 0.63 ms of CPU per REGISTER at 500 calls/s against 0.48 ms with direct calls
 * (docs/performance.md, "Low rates").
 *
 * Contract: `postMessage(m)` hands the other port a structured clone of `m` (no object is shared,
 * as between threads) in a microtask: after the posting code's turn, in posting order, never
 * re-entering it. `close()` closes both ends: nothing more is delivered, each end's 'close'
 * listeners run once.
 */
import { EventEmitter } from 'node:events';

export class LocalPort extends EventEmitter {
  peer: LocalPort | null = null;
  private closed = false;

  postMessage(m: unknown): void {
    const peer = this.peer;
    if (this.closed || peer === null) return;
    const copy = structuredClone(m);
    queueMicrotask(() => {
      if (!peer.closed) peer.emit('message', copy);
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.peer?.close();
    this.emit('close');
  }
}

export function localChannel(): { port1: LocalPort; port2: LocalPort } {
  const port1 = new LocalPort();
  const port2 = new LocalPort();
  port1.peer = port2;
  port2.peer = port1;
  return { port1, port2 };
}

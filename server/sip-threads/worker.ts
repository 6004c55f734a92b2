/** A SIP worker thread's entry (server/sip-threads/host.ts starts it): the SIP thread of sip-thread.ts on the thread's port. */
import { parentPort, workerData } from 'node:worker_threads';
import type { WorkerInit } from './protocol';
import { runSipThread } from './sip-thread';

runSipThread(workerData as WorkerInit, parentPort!);

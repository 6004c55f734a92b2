/**
 * The MongoDB location change feed (services/location/changes.ts): a change stream on the
 * location collection where the server has them (a replica set, MongoDB ≥ 4.0), else a full
 * reload every `refreshMs`.
 *
 * Change stream: `watch()` with `fullDocument: 'updateLookup'`; an insert, replace or update
 * names its AoR from the document. A delete carries only the document's `_id`, so the feed keeps
 * `_id → AoR` for the collection (filled by one projection scan when it starts and by every event
 * after; about 100 bytes a binding). A delete of an `_id` it does not know, an `invalidate`, or
 * anything unreadable is `{ all: true }`. Events of this instance's own writes come back too
 * (MongoDB does not say who wrote): the write-through store re-reads those AoRs, one find each.
 * When the stream fails, the sink hears `lost`, and the feed reopens it (resuming after the last
 * event seen when the server still can) after 0.5 s, doubling to 5 s, then `restored`.
 *
 * Fallback: a server without change streams (FerretDB answers `watch` with an error) is said once
 * in the log, and the feed announces `{ all: true }` every `refreshMs`: the write-through store
 * reloads every binding, so another instance's change is seen within `refreshMs` plus a reload.
 * That costs a full read of the collection per interval: with many bindings on such a server,
 * raise `location.refreshSec` or run `location.mode: db-only`.
 */
import { MongoClient, type ChangeStream, type ChangeStreamDocument, type Document, type ResumeToken } from 'mongodb';
import { createRefreshFeed, reconnect, type ChangedAor, type LocationChange, type LocationChangeFeed, type LocationChangeSink } from './changes';
import { normalizeMongoUrl } from './mongo';

export interface MongoChangeFeedOptions {
  url: string;
  database: string;
  collection: string;
  /** The fallback's reload interval (ms). */
  refreshMs: number;
  /** Said once: the server has no change streams, and what is done instead. */
  onNote?: (message: string) => void;
}

/** The AoR of a location document (username, domain null when absent), or null when it has no username. */
function aorOf(doc: Document | null | undefined): ChangedAor | null {
  if (!doc || typeof doc.username !== 'string') return null;
  return { username: doc.username, domain: typeof doc.domain === 'string' ? doc.domain : null };
}

/**
 * One change-stream event → the change it announces; `ids` (`_id` as a string → AoR) is kept
 * current. Pure but for `ids`: tested without a server (test/unit/location/mongo-changes.test.ts).
 */
export function changeOfEvent(event: ChangeStreamDocument, ids: Map<string, ChangedAor>): LocationChange {
  const key = 'documentKey' in event ? String((event.documentKey as { _id?: unknown })._id) : null;
  switch (event.operationType) {
    case 'insert':
    case 'replace':
    case 'update': {
      const aor = aorOf(event.fullDocument) ?? (key === null ? null : (ids.get(key) ?? null));
      if (!aor) return { all: true };
      const before = key === null ? undefined : ids.get(key);
      if (key !== null) ids.set(key, aor);
      // a binding moved to another AoR: both changed
      return before && (before.username !== aor.username || before.domain !== aor.domain) ? { aors: [before, aor] } : { aors: [aor] };
    }
    case 'delete': {
      const aor = key === null ? undefined : ids.get(key);
      if (key !== null) ids.delete(key);
      return aor ? { aors: [aor] } : { all: true };
    }
    default:
      // drop, rename, dropDatabase, invalidate: the collection as a whole changed
      return { all: true };
  }
}

/** True for the server's "no change streams here" answers (not a replica set, not implemented). */
function unsupported(e: unknown): boolean {
  const err = e as { code?: unknown; codeName?: unknown; message?: unknown };
  const code = Number(err?.code);
  // 40573: "The $changeStream stage is only supported on replica sets"; 115 CommandNotSupported; 59 CommandNotFound; 238 NotImplemented
  if ([40573, 115, 59, 238].includes(code)) return true;
  return /changeStream|not (implemented|supported)|unknown (stage|pipeline)/i.test(String(err?.message ?? '')) && code !== 280;
}

export function createMongoChangeFeed(o: MongoChangeFeedOptions): LocationChangeFeed {
  const norm = normalizeMongoUrl(o.url);
  let client: MongoClient | null = null;
  let stream: ChangeStream | null = null;
  let resumeAfter: ResumeToken | undefined;
  let closed = false;
  /** The refresh feed used instead when the server has no change streams. */
  let fallback: LocationChangeFeed | null = null;
  let stopReopening = (): void => undefined;
  let sink: LocationChangeSink | null = null;
  const ids = new Map<string, ChangedAor>();

  async function collection() {
    client ??= await new MongoClient(norm.url, { serverSelectionTimeoutMS: 2000, connectTimeoutMS: 2000 }).connect();
    return client.db(o.database).collection(o.collection);
  }

  /** Opens the stream; resolves once the server accepted it ('init'), rejects with the server's answer. */
  async function open(): Promise<ChangeStream> {
    const coll = await collection();
    if (ids.size === 0) {
      for await (const d of coll.find({}, { projection: { username: 1, domain: 1 } })) {
        const aor = aorOf(d);
        if (aor) ids.set(String(d._id), aor);
      }
    }
    const s = coll.watch([], { fullDocument: 'updateLookup', ...(resumeAfter ? { resumeAfter } : {}) });
    // listening for 'change' sends the aggregate; 'init' is the server's yes, 'error' its no
    await new Promise<void>((resolve, reject) => {
      s.on('change', (event: ChangeStreamDocument) => {
        resumeAfter = event._id;
        sink?.changed(changeOfEvent(event, ids));
      });
      s.once('init', () => resolve());
      s.once('error', (e) => {
        if (stream === s && !closed) {
          stream = null;
          sink?.lost(`the MongoDB change stream on the location failed: ${e.message}`);
          reopen();
        }
        void s.close().catch(() => undefined);
        reject(e);
      });
    });
    return s;
  }

  function reopen(): void {
    stopReopening = reconnect({
      connect: open,
      connected: (s) => {
        stream = s;
        sink?.restored();
      },
      discard: (s) => void s.close().catch(() => undefined),
      closed: () => closed,
      // the server may no longer have the resume point: start afresh (the sink reloads anyway)
      failed: () => {
        resumeAfter = undefined;
      },
    });
  }

  return {
    describe: () => fallback?.describe() ?? 'MongoDB change stream',
    async start(s) {
      sink = s;
      try {
        stream = await open();
      } catch (e) {
        if (!unsupported(e)) throw e;
        fallback = createRefreshFeed(o.refreshMs, 'no change streams on this server');
        await client?.close().catch(() => undefined);
        client = null;
        o.onNote?.(
          `the MongoDB server has no change streams (${(e as Error).message.split('\n')[0]}): bindings other instances write are picked up by a full reload every ${o.refreshMs / 1000} s (location.refreshSec)`,
        );
        await fallback.start(s);
      }
    },
    async close() {
      closed = true;
      stopReopening();
      await fallback?.close();
      await stream?.close().catch(() => undefined);
      await client?.close().catch(() => undefined);
    },
  };
}

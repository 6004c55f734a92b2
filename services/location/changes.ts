/**
 * Location change feeds: how a write-through instance (services/location/write-through.ts) hears
 * of the bindings OTHER writers change in the shared location, so that its in-memory copy stays
 * current (Kamailio's db_mode 1 instances never learn of each other's changes; ours do).
 *
 *   - PostgreSQL: LISTEN/NOTIFY, one notification per statement that changed `location`, naming
 *     the AoRs it touched and the writer's application_name (services/location/sql-changes.ts);
 *   - MongoDB: a change stream on the collection where the server has them (a replica set,
 *     MongoDB ≥ 4.0); where it does not (FerretDB), a full reload every `refreshMs`
 *     (services/location/mongo-changes.ts).
 *
 * Contract: `start(sink)` resolves once the feed listens (or has fallen back to refreshing) and
 * throws only when it cannot start at all. From then on it calls `sink.changed` with what another
 * writer changed, `sink.lost` when changes may be missed from that moment (a dropped connection)
 * and `sink.restored` once it listens again; the sink treats what happened in between as unknown
 * (it resynchronises everything). A feed never throws into the sink's caller and reconnects by
 * itself until `close()`.
 */

/** An AoR as the location keys it (domain null: single-domain bindings). */
export interface ChangedAor {
  username: string;
  domain: string | null;
}

/** What another writer changed: these AoRs, or anything (`all`: too many to name, or unknown). */
export type LocationChange = { aors: ChangedAor[] } | { all: true };

export interface LocationChangeSink {
  changed(change: LocationChange): void;
  /** Changes may be missed from now on (`reason` for the log). */
  lost(reason: string): void;
  /** Listening again after `lost`: anything may have changed meanwhile. */
  restored(): void;
}

export interface LocationChangeFeed {
  /** What the feed is, for the start log line ("PostgreSQL LISTEN sipflow_location", "refresh every 2 s …"). */
  readonly describe: () => string;
  start(sink: LocationChangeSink): Promise<void>;
  close(): Promise<void>;
}

/** Reconnection delays of the feeds: 0.5 s doubling to 5 s. */
const reconnectDelayMs = (attempt: number): number => Math.min(5000, 500 * 2 ** Math.min(attempt, 4));

/**
 * A feed's reconnection: tries `connect` after 0.5 s, then doubling to 5 s, until it succeeds;
 * hands the connection to `connected`, or to `discard` when the feed was closed meanwhile;
 * `failed` hears each failed try. Returns the function that stops trying.
 */
export function reconnect<C>(o: { connect(): Promise<C>; connected(c: C): void; discard(c: C): void; closed(): boolean; failed?(): void }): () => void {
  let timer: NodeJS.Timeout | null = null;
  const attempt = (n: number): void => {
    if (o.closed()) return;
    timer = setTimeout(() => {
      timer = null;
      o.connect().then(
        (c) => (o.closed() ? o.discard(c) : o.connected(c)),
        () => {
          o.failed?.();
          attempt(n + 1);
        },
      );
    }, reconnectDelayMs(n));
    timer.unref();
  };
  attempt(0);
  return () => {
    if (timer) clearTimeout(timer);
  };
}

/** The fallback feed: "anything may have changed" every `ms` (the sink reloads every binding). */
export function createRefreshFeed(ms: number, why: string): LocationChangeFeed {
  let timer: NodeJS.Timeout | null = null;
  return {
    describe: () => `a full reload every ${ms / 1000} s (${why})`,
    async start(sink) {
      timer = setInterval(() => sink.changed({ all: true }), ms);
      timer.unref();
    },
    async close() {
      if (timer) clearInterval(timer);
    },
  };
}

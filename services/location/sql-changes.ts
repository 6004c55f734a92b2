/**
 * The PostgreSQL location change feed (services/location/changes.ts): LISTEN/NOTIFY.
 *
 * Why triggers rather than a NOTIFY sent by sipflow's writer: every writer of the `location` table
 * is then heard — other sipflow instances, Kamailio sharing the table, an operator's DELETE —
 * and a change is announced in the transaction that makes it (delivered at its COMMIT, never for
 * a rolled-back one).
 *
 * Layout: three statement-level AFTER triggers on `location` (INSERT, UPDATE, DELETE) with
 * transition tables call `sipflow_location_notify()`, which sends ONE notification per statement
 * on channel `sipflow_location`: `{"o": <the writer's application_name>, "a": [[username,
 * domain], …]}` with the AoRs the statement touched (a batched upsert of 500 rows: one
 * notification), or `"a": "*"` when the list would pass PostgreSQL's 8000-byte payload limit.
 * A sipflow pool's application_name is unique per pool (services/directory/connect.ts), so an
 * instance skips the notifications of its own writes (its memory already has them).
 *
 * The listener is one `pg` Client of its own, outside the pool (LISTEN belongs to a session).
 * When it fails or ends, the sink hears `lost`, and the client is replaced after 0.5 s, doubling
 * to 5 s; once it listens again, `restored`.
 *
 * Limits: the triggers are created when absent (`ensureChangeNotifications`, under an advisory
 * lock) by an instance running `location.mode: write-through`; db-only instances and Kamailio
 * then notify too, at the cost of one trigger call per statement. Creating them needs the
 * table's owner, as `ensureSchema` (sql.ts) already does.
 */
import { Client } from 'pg';
import type { Knex } from 'knex';
import { reconnect, type ChangedAor, type LocationChange, type LocationChangeFeed, type LocationChangeSink } from './changes';

export const LOCATION_CHANNEL = 'sipflow_location';
/** Arbitrary constant naming the advisory lock that serialises the triggers' creation. */
const TRIGGER_LOCK = 0x5f10d;

const FUNCTION_DDL = `CREATE OR REPLACE FUNCTION sipflow_location_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  aors jsonb;
  payload text;
BEGIN
  IF TG_OP = 'INSERT' THEN
    SELECT jsonb_agg(DISTINCT jsonb_build_array(username, domain)) INTO aors FROM sipflow_new;
  ELSIF TG_OP = 'DELETE' THEN
    SELECT jsonb_agg(DISTINCT jsonb_build_array(username, domain)) INTO aors FROM sipflow_old;
  ELSE
    SELECT jsonb_agg(DISTINCT a) INTO aors FROM (
      SELECT jsonb_build_array(username, domain) AS a FROM sipflow_new
      UNION SELECT jsonb_build_array(username, domain) FROM sipflow_old) touched;
  END IF;
  IF aors IS NULL THEN RETURN NULL; END IF;
  payload := jsonb_build_object('o', current_setting('application_name'), 'a', aors)::text;
  IF octet_length(payload) > 7900 THEN
    payload := jsonb_build_object('o', current_setting('application_name'), 'a', '*')::text;
  END IF;
  PERFORM pg_notify('${LOCATION_CHANNEL}', payload);
  RETURN NULL;
END $$`;

const TRIGGERS: Array<[name: string, ddl: string]> = [
  ['sipflow_location_notify_insert', 'AFTER INSERT ON location REFERENCING NEW TABLE AS sipflow_new'],
  ['sipflow_location_notify_update', 'AFTER UPDATE ON location REFERENCING OLD TABLE AS sipflow_old NEW TABLE AS sipflow_new'],
  ['sipflow_location_notify_delete', 'AFTER DELETE ON location REFERENCING OLD TABLE AS sipflow_old'],
];

/** Creates the notify function and the three triggers on `location` when absent (concurrency-safe). */
export async function ensureChangeNotifications(knex: Knex): Promise<void> {
  await knex.transaction(async (trx) => {
    await trx.raw('SELECT pg_advisory_xact_lock(?)', [TRIGGER_LOCK]);
    const present = await trx.raw<{ rows: Array<{ tgname: string }> }>(
      "SELECT tgname FROM pg_trigger WHERE tgrelid = 'location'::regclass AND tgname LIKE 'sipflow_location_notify_%'",
    );
    const have = new Set(present.rows.map((r) => r.tgname));
    if (have.size === TRIGGERS.length) return;
    await trx.raw(FUNCTION_DDL);
    for (const [name, when] of TRIGGERS) {
      if (!have.has(name)) await trx.raw(`CREATE TRIGGER ${name} ${when} FOR EACH STATEMENT EXECUTE FUNCTION sipflow_location_notify()`);
    }
  });
}

/** A notification's payload → the change it announces, or null when it is this writer's own or unreadable. */
export function parseNotification(payload: string, ownOrigin: string | null): LocationChange | null {
  let msg: { o?: unknown; a?: unknown };
  try {
    msg = JSON.parse(payload) as { o?: unknown; a?: unknown };
  } catch {
    return { all: true }; // not ours to read: assume anything changed
  }
  if (ownOrigin !== null && msg.o === ownOrigin) return null;
  if (!Array.isArray(msg.a)) return { all: true };
  const aors: ChangedAor[] = [];
  for (const a of msg.a as unknown[]) {
    if (!Array.isArray(a) || typeof a[0] !== 'string') return { all: true };
    aors.push({ username: a[0], domain: typeof a[1] === 'string' ? a[1] : null });
  }
  return { aors };
}

export interface SqlChangeFeedOptions {
  /** The location database (postgres://…), with credentials. */
  url: string;
  /** The application_name of this instance's location pool: its own notifications are skipped. */
  ownOrigin: string | null;
}

export function createSqlChangeFeed(o: SqlChangeFeedOptions): LocationChangeFeed {
  let client: Client | null = null;
  let closed = false;
  let stopRetrying = (): void => undefined;
  let sink: LocationChangeSink | null = null;

  async function listen(): Promise<Client> {
    const c = new Client({ connectionString: o.url, application_name: `${o.ownOrigin ?? 'sipflow'}/listen`, keepAlive: true });
    c.on('error', () => undefined); // reported through 'end' below
    await c.connect();
    try {
      await c.query(`LISTEN ${LOCATION_CHANNEL}`);
    } catch (e) {
      await c.end().catch(() => undefined);
      throw e;
    }
    c.on('notification', (n) => {
      if (n.channel !== LOCATION_CHANNEL) return;
      const change = parseNotification(n.payload ?? '', o.ownOrigin);
      if (change) sink?.changed(change);
    });
    c.once('end', () => {
      if (closed || client !== c) return;
      client = null;
      sink?.lost('the connection listening for location changes ended');
      retry();
    });
    return c;
  }

  function retry(): void {
    stopRetrying = reconnect({
      connect: listen,
      connected: (c) => {
        client = c;
        sink?.restored();
      },
      discard: (c) => void c.end().catch(() => undefined),
      closed: () => closed,
    });
  }

  return {
    describe: () => `PostgreSQL LISTEN ${LOCATION_CHANNEL}`,
    async start(s) {
      sink = s;
      client = await listen();
    },
    async close() {
      closed = true;
      stopRetrying();
      const c = client;
      client = null;
      await c?.end().catch(() => undefined);
    },
  };
}

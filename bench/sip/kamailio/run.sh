#!/usr/bin/env bash
# Vendored from the project's reference kit (/work/shared/bench/kamailio/run.sh) for sipflow's
# bench/sip. Changes against the kit, nothing else:
#   - users come from bench/sip/gen-users.ts (dist/bench/sip/gen-users.js; same files as the
#     kit's gen_users.py, plus customers.csv for `sipflow import`); GEN_USERS overrides the command.
#   - SERVER=external with AUTH=pgsql also starts/reuses the throwaway PostgreSQL cluster (and
#     empties location before the run), and reports db_cpu_pct and location_rows, so a registrar
#     on the same cluster (sipflow) is measured exactly like Kamailio.
#   - PG_ONLY=1 (with AUTH=pgsql): start or reuse the cluster, provision it, empty location, and
#     exit (no SIPp run); combine with PG_KEEP=1.
#   - Kamailio listens on TARGET (kamailio.cfg takes -A SIPLISTEN=udp:IP:PORT), not always on 5070.
#   - TRANSPORT=udp|tcp|tls (default udp). tcp: Kamailio with TCP on, and LOAD=driver (default):
#     bench/sip/tls-register.ts over CONNECTIONS persistent TCP connections, or LOAD=sipp: SIPp
#     -t tn (SIPP_MODE, one connection per call).
#     tls: the load comes from bench/sip/tls-register.ts (SIPp 3.6 as Debian builds it has no TLS)
#     over CONNECTIONS persistent TLS connections (default 1000), Kamailio with the tls module and
#     TLS_CFG (a tls.cfg naming the certificate; run.sh of bench/sip writes it), TLS_CA for the
#     driver. The summary line keeps its keys (sipp_cpu_pct = the driver's CPU; retrans is 0, the
#     driver adds latency percentiles rt_p50_ms … and conn_setup_s).
#   - USRLOC_MONGO=mongodb://127.0.0.1:PORT/db (with AUTH=pgsql): Kamailio's usrloc on db_mongodb
#     (kamailio.cfg -A USRLOC_MONGO, db_mode 1, package kamailio-mongodb-modules) while auth_db
#     stays on PostgreSQL; before Kamailio starts, the database's `location` collection gets the
#     `version` documents and indexes Kamailio needs (written by sipflow's own MongoDB location
#     store, dist/services/location/mongo.js) and is emptied (with SERVER=external too, as the
#     location table is with AUTH=pgsql; not with KEEP_RUNNING=1, below); location_rows then counts its
#     documents. FERRET_PID=PID (the MongoDB-protocol server, FerretDB, one process): its CPU over the
#     run as ferret_cpu_pct.
#   - KEEP_RUNNING=1: the registrar and its bindings carry over from one run to the next, as sipflow
#     does when bench/sip/run.sh measures it as SERVER=external. With SERVER=kamailio, the Kamailio a
#     run starts keeps running when the run ends, and a later KEEP_RUNNING=1 run measures that one
#     (its PID in $WORK/kamailio.pid, and listening) instead of starting another; the caller stops it
#     by that PID. With USRLOC_MONGO, the collection is not emptied. Restarting is not an option for
#     the mongodb pairing: Kamailio 5.6's db_mongodb writes a new binding without its NULL columns, and
#     a restarted usrloc refuses those documents at preload ("field [received] not found in result
#     iterator") and does not start.
# Kamailio anchor: SIP REGISTER with HTTP digest auth (MD5, qop=auth), driven by SIPp.
#
# usage: run.sh [RATE] [CALLS]
#   RATE   sipp target call rate (-r, calls/s)                      default 1000
#   CALLS  total calls (-m)                                           default RATE*20 (~20 s of load)
#   One "call" = REGISTER -> 401 -> REGISTER(+Authorization) -> 200, i.e. 2 REGISTER transactions.
#
# environment:
#   AUTH=db|sqlite|pv|pgsql
#                     db: auth_db + db_text subscriber table (default; db_text scans
#                         the whole table under a lock on every lookup -> cost grows with NUSERS)
#                     sqlite: auth_db + db_sqlite (indexed lookup; needs kamailio-sqlite-modules)
#                     pv: pv_auth_check, password derived from the username in the script
#                     pgsql: auth_db AND usrloc on PostgreSQL; usrloc write-through (db_mode=1,
#                         every binding change is an autocommitted INSERT/UPDATE on 'location').
#                         run.sh runs its own throwaway PostgreSQL cluster (see PG_* below).
#                     The other modes keep usrloc in memory (db_mode=0).
#   CHILDREN=2        Kamailio UDP worker processes (children=)
#   NUSERS=10000      users generated (user00001..), injected into sipp and provisioned in db_text
#   WORK=/tmp/kamailio-bench   runtime dir (db_text dir, CSV, logs, sipp stats)
#   SERVER=kamailio   start/stop Kamailio here (default). SERVER=external: do not start anything,
#                     just load TARGET (e.g. another registrar on 127.0.0.1:5070); its CPU is
#                     sampled if SERVER_PIDS="pid1 pid2 ..." is given.
#   TARGET=127.0.0.1:5070      SIP target for sipp (loopback only)
#   SIPP_PORT=5071    sipp local UDP port
#   SIPP_EXTRA=""     extra sipp arguments (e.g. "-l 5000", "-trace_err")
#   SIPP_BUFF=4194304 sipp -buff_size (socket send/receive buffer)
#   SIPP_AUTH_URI=example.test   sipp -auth_uri (digest uri="sip:example.test" = Request-URI)
#   WARMUP_CALLS=1000 WARMUP_RATE=500   unmeasured warm-up run before the measured one (0 = off)
#
# AUTH=pgsql only (needs kamailio-postgres-modules and PostgreSQL 15; installed if missing):
#   PG_BIN=/usr/lib/postgresql/15/bin
#   PGROOT=$WORK/pg   cluster directory (data/, run/ = socket dir, postgres.log), owned by the
#                     postgres user; initdb -A trust on first use. Listens on 127.0.0.1 only.
#   PG_PORT=55432     first TCP port tried; the next free one is used if it is taken
#   PG_OPTS=""        extra postgres options, e.g. "-c synchronous_commit=off" (default: stock
#                     settings, fsync=on and synchronous_commit=on, so every commit waits
#                     for the WAL flush)
#   PG_KEEP=0         1 = leave the cluster running after the run (the next run reuses it);
#                     by default it is stopped with "pg_ctl stop -m fast" when run.sh exits.
#   Each run provisions the NUSERS subscribers if the table does not already hold exactly
#   NUSERS rows, and empties location/location_attrs before Kamailio starts, so every run
#   begins with no bindings, as in the in-memory modes.
#
# achieved_cps = successful calls / whole sipp run time (start to last call done);
# steady_cps   = median per-second successful-call rate, ramp-up/tail periods excluded;
# retrans      = sipp retransmissions (no answer within 500 ms, doubling); failed = calls that
#                got an unexpected reply or ran out of retransmissions;
# udp_rcvbuf_drops = host-wide UDP receive-buffer drops during the run (/proc/net/snmp);
# srv_sock_drops   = of those, drops on the server's socket (/proc/net/udp "drops" column);
# rt_avg_ms    = mean time from first REGISTER sent to 200 OK (sipp, ms resolution);
# slow         = calls whose 200 OK came 500 ms or more after the first REGISTER (SIPp's response
#                time repartition): over TCP and TLS nothing is retransmitted, so a step that only
#                queues shows here instead of in retrans (UDP's timer T1 is 500 ms).
# Prints one summary line:
#   rate_target=R achieved_cps=X failed=F retrans=T steady_cps=M successful=S calls=N elapsed_s=E
#   srv_cpu_pct=K sipp_cpu_pct=P rt_avg_ms=A udp_rcvbuf_drops=D srv_sock_drops=Z server=... auth=... users=... registered_users=... sipp_rc=...
#   children=C [db_cpu_pct=Q location_rows=L] [ferret_cpu_pct=G]
# (db_cpu_pct: PostgreSQL postmaster + all its processes, incl. exited ones via cutime/cstime;
#  location_rows: SELECT count(*) FROM location right after the sipp run. AUTH=pgsql only.)
# (srv/sipp CPU in % of one core, averaged over the sipp run; 200 = both cores of a 2-core box.
#  Taken from /proc/PID/stat utime+stime, which the kernel scales to the precise scheduler
#  runtime. /proc/stat's machine-wide counters are tick-sampled and badly under-count this
#  bursty load on this VM, so they are not used.)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
GEN_USERS=${GEN_USERS:-node $REPO/dist/bench/sip/gen-users.js}
RATE=${1:-1000}
CALLS=${2:-$((RATE * 20))}
AUTH=${AUTH:-db}
NUSERS=${NUSERS:-10000}
WORK=${WORK:-/tmp/kamailio-bench}
SERVER=${SERVER:-kamailio}
TARGET=${TARGET:-127.0.0.1:5070}
SIPP_PORT=${SIPP_PORT:-5071}
SIPP_EXTRA=${SIPP_EXTRA:-}
TRANSPORT=${TRANSPORT:-udp}
case "$TRANSPORT" in
  udp) SIPP_MODE=${SIPP_MODE:-u1} ;;
  tcp) SIPP_MODE=${SIPP_MODE:-tn} LOAD=${LOAD:-driver} CONNECTIONS=${CONNECTIONS:-1000}
       # SIPp refuses to start when -max_socket (default 50000) exceeds the open-file limit;
       # calls are short, so few of these connections are open at once
       SIPP_MODE="$SIPP_MODE -max_socket $(( $(ulimit -n) * 3 / 4 ))" ;;
  tls) CONNECTIONS=${CONNECTIONS:-1000} LOAD=driver
       [ -f "${TLS_CFG:-}" ] && [ -f "${TLS_CA:-}" ] || { echo "TRANSPORT=tls needs TLS_CFG and TLS_CA files" >&2; exit 2; } ;;
  *) echo "unknown TRANSPORT=$TRANSPORT" >&2; exit 2 ;;
esac
LOAD=${LOAD:-sipp}
DRIVER=${DRIVER:-node $REPO/dist/bench/sip/tls-register.js}
DRIVER_ARGS=(--transport "$TRANSPORT" --connections "${CONNECTIONS:-1000}")
[ "$TRANSPORT" != tls ] || DRIVER_ARGS+=(--ca "$TLS_CA")
# sipp socket buffer (SO_SNDBUF/SO_RCVBUF; sipp's default is 65535). A larger one keeps reply
# bursts from a briefly stalled server from being dropped at the client (kernel caps it at
# net.core.rmem_max / wmem_max, 4 MiB here).
SIPP_BUFF=${SIPP_BUFF:-4194304}
# digest-uri that sipp puts in Authorization (and hashes into HA2). Without -auth_uri sipp
# uses "sip:<remote_ip>:<remote_port>" (sip:127.0.0.1:5070), which differs from the
# Request-URI sip:example.test; with it the two match.
SIPP_AUTH_URI=${SIPP_AUTH_URI:-example.test}
CHILDREN=${CHILDREN:-2}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PGROOT=${PGROOT:-$WORK/pg}
PG_PORT=${PG_PORT:-55432}
PG_OPTS=${PG_OPTS:-}
PG_KEEP=${PG_KEEP:-0}
PG_SCHEMA_DIR=${PG_SCHEMA_DIR:-/usr/share/kamailio/postgres}

case "$TARGET" in
  127.0.0.1:*) ;;
  *) echo "refusing non-loopback TARGET=$TARGET" >&2; exit 2 ;;
esac

# ---------------------------------------------------------------- install if missing
need=()
command -v sipp >/dev/null 2>&1 || need+=(sip-tester)
if [ "$SERVER" = kamailio ]; then
  command -v kamailio >/dev/null 2>&1 || need+=(kamailio)
  if [ "$AUTH" = sqlite ] && [ ! -e /usr/lib/x86_64-linux-gnu/kamailio/modules/db_sqlite.so ]; then
    need+=(kamailio-sqlite-modules)
  fi
  if [ "$AUTH" = pgsql ]; then
    [ -e /usr/lib/x86_64-linux-gnu/kamailio/modules/db_postgres.so ] || need+=(kamailio-postgres-modules)
    # NB: installing postgresql-15 also makes Debian create and start its default cluster
    [ -x "$PG_BIN/postgres" ] || need+=(postgresql-15)
    [ -z "${USRLOC_MONGO:-}" ] || [ -e /usr/lib/x86_64-linux-gnu/kamailio/modules/db_mongodb.so ] || need+=(kamailio-mongodb-modules)
  fi
fi
if [ ${#need[@]} -gt 0 ]; then
  apt-get update >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}" >/dev/null
fi

# ---------------------------------------------------------------- users (CSV + db_text)
mkdir -p "$WORK"
if [ ! -f "$WORK/users.csv" ] || [ ! -f "$WORK/kamailio.sqlite" ] || [ "$(cat "$WORK/users.n" 2>/dev/null)" != "$NUSERS" ]; then
  $GEN_USERS "$NUSERS" "$WORK"
  echo "$NUSERS" > "$WORK/users.n"
fi

CLK_TCK=$(getconf CLK_TCK)
# sum of utime+stime (ticks) of the given pids
cpu_ticks() {
  local t=0 p f
  for p in "$@"; do
    [ -r "/proc/$p/stat" ] || continue
    f=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null) || continue
    set -- $f
    t=$((t + ${12} + ${13}))   # fields 14,15 (utime, stime) after stripping "pid (comm) "
  done
  echo "$t"
}

# utime+stime+cutime+cstime of PID (cutime/cstime: its exited, reaped children) plus
# utime+stime of its current children. The difference of two samples covers children that
# were started or exited in between (e.g. PostgreSQL autovacuum workers).
tree_ticks() {
  local p=$1 f t
  [ -r "/proc/$p/stat" ] || { echo 0; return; }
  f=$(sed 's/^.*) //' "/proc/$p/stat")
  set -- $f
  t=$((${12} + ${13} + ${14} + ${15}))
  echo $((t + $(cpu_ticks $(ps -o pid= --ppid "$p"))))
}

# ---------------------------------------------------------------- PostgreSQL (AUTH=pgsql)
PG_USED=0
PG_PID=""
pg_ctl_() { (cd / && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PGROOT/data" "$@"); }
psql_() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" "$@"; }
tcp_listening() {  # is anything listening on TCP port $1 (any address)?
  awk -v h="$(printf ':%04X' "$1")" 'FNR > 1 && $4 == "0A" && substr($2, length($2) - 4) == h { f = 1 }
    END { exit !f }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}
pg_start() {
  PG_USED=1
  mkdir -p "$PGROOT"
  chown postgres: "$PGROOT"
  chmod 700 "$PGROOT"
  if [ ! -f "$PGROOT/data/PG_VERSION" ]; then
    (cd / && runuser -u postgres -- "$PG_BIN/initdb" -D "$PGROOT/data" -A trust -U postgres \
      -E UTF8 --no-locale) > "$PGROOT/initdb.log" 2>&1 || { cat "$PGROOT/initdb.log" >&2; exit 1; }
  fi
  if pg_ctl_ status > /dev/null 2>&1; then
    # left running by an earlier PG_KEEP=1 run: reuse it
    PG_PORT=$(sed -n 4p "$PGROOT/data/postmaster.pid")
  else
    while tcp_listening "$PG_PORT"; do PG_PORT=$((PG_PORT + 1)); done
    mkdir -p "$PGROOT/run"
    chown postgres: "$PGROOT/run"
    pg_ctl_ -w -t 60 -l "$PGROOT/postgres.log" \
      -o "-p $PG_PORT -k $PGROOT/run -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on $PG_OPTS" \
      start > /dev/null || { tail -20 "$PGROOT/postgres.log" >&2; exit 1; }
  fi
  PG_PID=$(sed -n 1p "$PGROOT/data/postmaster.pid")
  local n
  n=$(psql_ -U postgres -d kamailio -Atc "SELECT count(*) FROM subscriber" 2>/dev/null || echo none)
  if [ "$n" != "$NUSERS" ]; then
    # (re)create the database from Kamailio's own schema files and load the same users
    # as the other modes (gen_users.py's db_text file: id:username:domain:password:ha1:ha1b)
    psql_ -U postgres -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS kamailio" \
      -c "DO \$\$ BEGIN CREATE ROLE kamailio LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END \$\$" \
      -c "CREATE DATABASE kamailio OWNER kamailio"
    psql_ -U kamailio -d kamailio -f "$PG_SCHEMA_DIR/standard-create.sql" \
      -f "$PG_SCHEMA_DIR/auth_db-create.sql" -f "$PG_SCHEMA_DIR/usrloc-create.sql"
    psql_ -U kamailio -d kamailio \
      -c "\\copy subscriber (id, username, domain, password, ha1, ha1b) FROM pstdin WITH (FORMAT csv, DELIMITER ':', HEADER true)" \
      < "$WORK/dbtext/subscriber"
    psql_ -U kamailio -d kamailio -c "SELECT setval('subscriber_id_seq', (SELECT max(id) FROM subscriber))" \
      -c "ANALYZE subscriber" > /dev/null
  fi
  # no bindings at start (usrloc db_mode=1 loads the location table at startup)
  # (and a checkpoint now rather than during the measured run)
  psql_ -U kamailio -d kamailio -c "TRUNCATE location, location_attrs RESTART IDENTITY"
  # Kamailio is measured alone: the change-notification triggers a sipflow write-through run of
  # bench/sip/run.sh leaves on the shared table (services/location/sql-changes.ts) go
  psql_ -U kamailio -d kamailio -c "SET client_min_messages = warning" \
    -c "DROP TRIGGER IF EXISTS sipflow_location_notify_insert ON location" \
    -c "DROP TRIGGER IF EXISTS sipflow_location_notify_update ON location" \
    -c "DROP TRIGGER IF EXISTS sipflow_location_notify_delete ON location"
  psql_ -U postgres -d kamailio -c "CHECKPOINT"
}
# mongo_loc prepare|count URL: prepare = the version documents and indexes Kamailio's db_mongodb
# needs (sipflow's MongoDB location store writes them on first use), then the collection emptied;
# count = the documents in `location` of the URL's database
mongo_loc() {
  timeout 30 node -e '
    const [op, url, repo] = process.argv.slice(1);
    const { MongoClient } = require(repo + "/node_modules/mongodb");
    (async () => {
      if (op === "prepare") {
        const { createMongoLocationStore } = require(repo + "/dist/services/location/mongo.js");
        const store = createMongoLocationStore({ url });
        await store.count(new Date());
        await store.close();
      }
      const client = new MongoClient(url, { serverSelectionTimeoutMS: 5000 });
      try {
        const location = client.db().collection("location");
        if (op === "prepare") await location.deleteMany({});
        else console.log(await location.countDocuments({}));
      } finally {
        await client.close();
      }
    })().catch((e) => { console.error("mongo_loc " + op + ": " + e.message); process.exit(1); });
  ' "$1" "$2" "$REPO"
}
pg_stop() {
  [ "$PG_USED" = 1 ] && [ "$PG_KEEP" != 1 ] || return 0
  PG_USED=0
  pg_ctl_ -m fast -w -t 60 stop > /dev/null 2>&1 || true
}

KPID=""
KPIDS=""
stop_kamailio() {
  [ -n "$KPID" ] || return 0
  [ "$KEEP_RUNNING" != 1 ] || { KPID=""; return 0; }   # left running for the next run (see the header)
  if kill -0 "$KPID" 2>/dev/null; then
    kill -TERM "$KPID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$KPID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$KPID" 2>/dev/null; then
      for p in $KPIDS; do kill -KILL "$p" 2>/dev/null || true; done
    fi
  fi
  wait "$KPID" 2>/dev/null || true
  KPID=""
}
cleanup() { stop_kamailio; pg_stop; }
trap cleanup EXIT

port_hex=$(printf '%04X' "${TARGET##*:}")
# the server's socket is there: UDP bound, or TCP/TLS listening (state 0A)
udp_bound() {
  if [ "$TRANSPORT" = udp ]; then grep -q " 0100007F:$port_hex " /proc/net/udp
  else grep -q " 0100007F:$port_hex 00000000:0000 0A " /proc/net/tcp; fi
}

# ---------------------------------------------------------------- start kamailio
KEEP_RUNNING=${KEEP_RUNNING:-0}
KEPT=""
[ "$KEEP_RUNNING" != 1 ] || KEPT=$(cat "$WORK/kamailio.pid" 2>/dev/null || true)
{ [ -n "$KEPT" ] && kill -0 "$KEPT" 2>/dev/null && udp_bound; } || KEPT=""
if [ "$SERVER" = kamailio ]; then
  if [ -z "$KEPT" ] && udp_bound; then echo "something already listens on $TARGET" >&2; exit 1; fi
  defs=(-A "CTLSOCK=\"unix:$WORK/kamailio_ctl\"" -A "KCHILDREN=$CHILDREN" -A "SIPLISTEN=$TRANSPORT:$TARGET")
  case "$TRANSPORT" in
    tcp) defs+=(-A WITH_TCP -A "TCPMAX=20000") ;;
    tls) defs+=(-A WITH_TLS -A "TCPMAX=20000" -A "TLSCFG=\"$TLS_CFG\"") ;;
  esac
  case "$AUTH" in
    db)     defs+=(-A "DBURL=\"text://$WORK/dbtext\"") ;;
    sqlite) defs+=(-A WITH_SQLITE -A "DBURL=\"sqlite:///$WORK/kamailio.sqlite\"") ;;
    pv)     defs+=(-A WITH_PVAUTH) ;;
    pgsql)  pg_start
            defs+=(-A WITH_PGSQL -A "DBURL=\"postgres://kamailio@127.0.0.1:$PG_PORT/kamailio\"")
            if [ -n "${USRLOC_MONGO:-}" ]; then
              [ -n "$KEPT" ] || mongo_loc prepare "$USRLOC_MONGO"
              defs+=(-A "USRLOC_MONGO=\"$USRLOC_MONGO\"")
            fi ;;
    *) echo "unknown AUTH=$AUTH" >&2; exit 2 ;;
  esac
  if [ -n "$KEPT" ]; then KPID=$KEPT; else
  rm -f "$WORK/kamailio_ctl"
  kamailio -f "$HERE/kamailio.cfg" -DD -E -m 256 -M 16 -w "$WORK" -P "$WORK/kamailio.pid" \
    "${defs[@]}" > "$WORK/kamailio.log" 2>&1 &
  KPID=$!
  for _ in $(seq 1 100); do
    udp_bound && [ -S "$WORK/kamailio_ctl" ] && break
    kill -0 "$KPID" 2>/dev/null || { echo "kamailio died, see $WORK/kamailio.log" >&2; exit 1; }
    sleep 0.1
  done
  sleep 0.5
  fi
  KPIDS="$KPID $(ps -o pid= --ppid "$KPID" | tr '\n' ' ')"
  SRV_PIDS=$KPIDS
else
  SRV_PIDS=${SERVER_PIDS:-}
  [ "$AUTH" != pgsql ] || pg_start
  # as location above: every step starts on an empty collection (unless KEEP_RUNNING=1), for the
  # external registrar too
  [ -z "${USRLOC_MONGO:-}" ] || [ "$KEEP_RUNNING" = 1 ] || mongo_loc prepare "$USRLOC_MONGO"
fi
[ "${PG_ONLY:-0}" != 1 ] || exit 0

# ---------------------------------------------------------------- warm-up (not measured)
# A short low-rate run first, so one-time costs (e.g. db_text loading the subscriber
# table on first query, first-touch of memory) do not land in the measured run as a
# burst of UDP drops/retransmissions. WARMUP_CALLS=0 disables it.
WARMUP_CALLS=${WARMUP_CALLS:-1000}
WARMUP_RATE=${WARMUP_RATE:-500}
if [ "$WARMUP_CALLS" -gt 0 ] && [ "$LOAD" = driver ]; then
  $DRIVER --target "$TARGET" --users "$WORK/users.csv" "${DRIVER_ARGS[@]}" \
    --rate "$WARMUP_RATE" --calls "$WARMUP_CALLS" > "$WORK/warmup.out" 2>&1 || echo "warning: warm-up run had failures (see $WORK/warmup.out)" >&2
  sleep 1
elif [ "$WARMUP_CALLS" -gt 0 ]; then
  sipp "$TARGET" -sf "$HERE/register_auth.xml" -inf "$WORK/users.csv" \
    -i 127.0.0.1 -p "$SIPP_PORT" -t $SIPP_MODE -r "$WARMUP_RATE" -m "$WARMUP_CALLS" -nostdin -buff_size "$SIPP_BUFF" -auth_uri "$SIPP_AUTH_URI" \
    > "$WORK/warmup.out" 2>&1 || echo "warning: warm-up run had failures (see $WORK/warmup.out)" >&2
  sleep 1
fi

# ---------------------------------------------------------------- run sipp
rm -f "$WORK/stat.csv" "$WORK/screen.log" "$WORK/sipp.out" "$WORK/sipp.time"
udp_drops() { awk '/^Udp:/ { if (!h) { for (i = 1; i <= NF; i++) c[$i] = i; h = 1 } else print $c["RcvbufErrors"] }' /proc/net/snmp; }
# drops counted on the server's own UDP socket (last column "drops" of /proc/net/udp)
srv_sock_drops() { [ "$TRANSPORT" != udp ] || awk -v p=" 0100007F:$port_hex " 'index($0, p) { print $NF; exit }' /proc/net/udp; }
drops0=$(udp_drops)
sdrops0=$(srv_sock_drops)
srv0=$(cpu_ticks $SRV_PIDS)
[ -z "$PG_PID" ] || db0=$(tree_ticks "$PG_PID")
[ -z "${FERRET_PID:-}" ] || fdb0=$(cpu_ticks "$FERRET_PID")
t0=$(date +%s.%N)
set +e
TIMEFORMAT='%R %U %S'
if [ "$LOAD" = driver ]; then
  # the driver samples the server's CPU and its own over the load only (not the handshakes)
  $DRIVER --target "$TARGET" --users "$WORK/users.csv" "${DRIVER_ARGS[@]}" \
    --rate "$RATE" --calls "$CALLS" ${RUN_TIMEOUT_S:+--max-s "$RUN_TIMEOUT_S"} --server-pids "$SRV_PIDS" \
    > "$WORK/driver.out" 2> "$WORK/driver.err"
  sipp_rc=$?
else
{ time sipp "$TARGET" -sf "$HERE/register_auth.xml" -inf "$WORK/users.csv" \
    -i 127.0.0.1 -p "$SIPP_PORT" -t $SIPP_MODE -r "$RATE" -m "$CALLS" -nostdin -buff_size "$SIPP_BUFF" -auth_uri "$SIPP_AUTH_URI" \
    -trace_stat -stf "$WORK/stat.csv" -fd 1 -trace_screen -screen_file "$WORK/screen.log" \
    $SIPP_EXTRA > "$WORK/sipp.out" 2>&1 ; } 2> "$WORK/sipp.time"
sipp_rc=$?
fi
set -e
t1=$(date +%s.%N)
srv1=$(cpu_ticks $SRV_PIDS)
[ -z "$PG_PID" ] || db1=$(tree_ticks "$PG_PID")
[ -z "${FERRET_PID:-}" ] || fdb1=$(cpu_ticks "$FERRET_PID")
drops1=$(udp_drops)
sdrops1=$(srv_sock_drops)

# ---------------------------------------------------------------- collect
ul_users=""
if [ -n "${USRLOC_MONGO:-}" ]; then
  loc_rows=$(mongo_loc count "$USRLOC_MONGO" 2>/dev/null || echo NA)
elif [ -n "$PG_PID" ]; then
  loc_rows=$(psql_ -U kamailio -d kamailio -Atc "SELECT count(*) FROM location" 2>/dev/null || echo NA)
fi
if [ "$SERVER" = kamailio ]; then
  ul_users=$(kamcmd -s "unix:$WORK/kamailio_ctl" stats.get_statistics registered_users 2>/dev/null | awk '{print $3}')
  stop_kamailio
fi

if [ "$LOAD" = driver ]; then
  dline=$(grep '^rate_target=' "$WORK/driver.out" | tail -1)
  if [ -z "$dline" ]; then
    echo "the TLS driver printed no summary (rc=$sipp_rc); $WORK/driver.err:" >&2
    tail -20 "$WORK/driver.err" >&2
    exit 1
  fi
  [ "$SERVER" = kamailio ] || { AUTH=external; CHILDREN=NA; }
  line="$dline server=$SERVER auth=$AUTH users=$NUSERS registered_users=${ul_users:-NA} sipp_rc=$sipp_rc children=$CHILDREN transport=$TRANSPORT load=driver"
  echo "$line"
  echo "$(date -u +%FT%TZ) $line" >> "$WORK/results.log"
  exit 0
fi
if [ ! -s "$WORK/stat.csv" ] || [ "$(wc -l < "$WORK/stat.csv")" -lt 2 ]; then
  echo "sipp produced no statistics (rc=$sipp_rc); tail of $WORK/sipp.out:" >&2
  tail -20 "$WORK/sipp.out" >&2
  exit 1
fi
read -r s_real s_user s_sys < "$WORK/sipp.time"
# last line of the stat file; columns looked up by header name
summary=$(awk -F';' '
  NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
  { last = $0 }
  END {
    n = split(last, v, ";")
    # StartTime / CurrentTime look like "YYYY-MM-DD<TAB>HH:MM:SS.uuuuuu<TAB>epoch.uuuuuu"
    split(v[col["StartTime"]], st, "\t"); split(v[col["CurrentTime"]], ct, "\t")
    el = ct[3] - st[3]
    rt = v[col["ResponseTime1(C)"]]; split(rt, r, ":")
    rtms = (r[1] * 3600 + r[2] * 60 + r[3]) * 1000 + r[4] / 1000
    slow = v[col["ResponseTimeRepartition1_<1000"]] + v[col["ResponseTimeRepartition1_>=1000"]]
    printf "%s %s %s %s %s %.3f %.2f %d", v[col["SuccessfulCall(C)"]], v[col["FailedCall(C)"]],
      v[col["Retransmissions(C)"]], v[col["OutgoingCall(C)"]], v[col["TotalCallCreated"]], el, rtms, slow
  }' "$WORK/stat.csv")
read -r succ failed retrans outgoing created elapsed rtms slow <<< "$summary"
# steady-state rate: median over the per-second stat periods (first and last period dropped)
# of SuccessfulCall(P) / period length
steady=$(awk -F';' '
  NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
  { split($col["CurrentTime"], ct, "\t"); t[NR] = ct[3]; sc[NR] = $col["SuccessfulCall(P)"]; n = NR }
  END {
    m = 0
    for (i = 4; i < n; i++) { dt = t[i] - t[i-1]; if (dt > 0.2) r[++m] = sc[i] / dt }
    if (m == 0) { print "NA"; exit }
    for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (r[j] < r[i]) { x = r[i]; r[i] = r[j]; r[j] = x }
    printf "%.1f", (m % 2) ? r[(m + 1) / 2] : (r[m / 2] + r[m / 2 + 1]) / 2
  }' "$WORK/stat.csv")

wall=$(echo "$t1 - $t0" | bc -l)
achieved=$(echo "scale=1; $succ / $elapsed" | bc -l)
sipp_cpu=$(echo "scale=1; 100 * ($s_user + $s_sys) / $s_real" | bc -l)
if [ -n "$SRV_PIDS" ]; then
  srv_cpu=$(echo "scale=1; 100 * ($srv1 - $srv0) / $CLK_TCK / $wall" | bc -l)
else
  srv_cpu=NA
fi

[ "$SERVER" = kamailio ] || { AUTH=external${PG_PID:+-pgsql}; CHILDREN=NA; }
line="rate_target=$RATE achieved_cps=$achieved failed=$failed retrans=$retrans steady_cps=$steady successful=$succ calls=$created elapsed_s=$elapsed srv_cpu_pct=$srv_cpu sipp_cpu_pct=$sipp_cpu rt_avg_ms=$rtms slow=$slow udp_rcvbuf_drops=$((drops1 - drops0)) srv_sock_drops=$(( ${sdrops1:-0} - ${sdrops0:-0} )) server=$SERVER auth=$AUTH users=$NUSERS registered_users=${ul_users:-NA} sipp_rc=$sipp_rc children=$CHILDREN transport=$TRANSPORT"
if [ -n "$PG_PID" ]; then
  db_cpu=$(echo "scale=1; 100 * ($db1 - $db0) / $CLK_TCK / $wall" | bc -l)
  line="$line db_cpu_pct=$db_cpu location_rows=${loc_rows:-NA}"
fi
if [ -n "${FERRET_PID:-}" ]; then
  line="$line ferret_cpu_pct=$(echo "scale=1; 100 * ($fdb1 - $fdb0) / $CLK_TCK / $wall" | bc -l)"
fi
echo "$line"
echo "$(date -u +%FT%TZ) $line" >> "$WORK/results.log"

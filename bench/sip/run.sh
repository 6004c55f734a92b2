#!/usr/bin/env bash
# sipflow vs Kamailio: SIP REGISTER with digest authentication (MD5, qop=auth), driven by SIPp with
# the same scenario and the same 10,000 users, one registrar after the other in the same run.
# A "call" = REGISTER -> 401 -> REGISTER with credentials -> 200 (two transactions).
# The invite pairing relays calls instead (INVITE/180/200/ACK/BYE, SIPp UAC -> proxy -> SIPp UAS)
# with accounting on both sides (see --pairing invite).
#
# usage: bash bench/sip/run.sh [options]       (npm run bench:sip -- [options])
#   --transport udp|tcp|tls   default udp
#       udp: SIPp -t u1 (one socket, as an SBC or a trunk).
#       tcp: bench/sip/tls-register.ts over --connections persistent TCP connections (as tls below),
#            or with --tcp-load sipp SIPp -t tn: one TCP connection per call (connect, REGISTER, 401,
#            REGISTER, 200, close). SIPp 3.6's t1 sends every call over ONE connection (an SBC trunk),
#            which Kamailio reads in one TCP worker process; tn is SIPp's mode closest to phones,
#            but every call pays a TCP setup and close, and on a 2-core machine SIPp itself stalls
#            near 700 calls/s (calls take seconds while both registrars idle below 20 % CPU), so
#            the default is the driver.
#       tls: SIPp 3.6 as Debian builds it has no TLS ("sipp -t l1": "To use a TLS transport you must
#            compile SIPp with OpenSSL"): bench/sip/tls-register.ts plays the same scenario over
#            --connections persistent TLS connections (handshakes before the clock starts; user u
#            always on connection u mod N, as phones), against Kamailio's tls module and sipflow's
#            TLS listener with the same certificate (openssl, EC P-256, generated into $WORK/tls).
#   --connections N     TCP/TLS connections of the driver (default 1000)
#   --tcp-load driver|sipp   load for --transport tcp (default driver)
#   --pairing persistent|memory|floor|mongodb|embedded|invite|both|all   default all (every pairing, in that
#                       order; both = persistent and memory); or a comma-separated list, run in its order
#                       (e.g. persistent,embedded: the embedded ratio needs sipflow-pgsql in the same run)
#   --only P            the same as --pairing P (e.g. --only invite --quick)
#       persistent: Kamailio auth_db + usrloc db_mode 1 on PostgreSQL (kit AUTH=pgsql, CHILDREN=8)
#                   vs sipflow with directory AND location on the same PostgreSQL server
#                   (directory in database "sipflow", bindings in Kamailio's own "location" table of
#                   database "kamailio", written before the 200 OK) in location mode write-through
#                   (Kamailio's db_mode 1: bindings read from memory, every change written to the
#                   database before the answer), `--workers auto`; sipflow is warmed 10 s at 1000/s
#                   first (unmeasured: V8 compiling its hot paths is not the rate).
#       memory:     Kamailio usrloc in memory + auth_db on SQLite (kit AUTH=sqlite, CHILDREN=2)
#                   vs sipflow with location.url=memory and the embedded PGlite directory, run twice:
#                   with cached directory reads (directory.cacheSec 3600): the shipped logic (query node
#                   caching 0) and a copy with caching on the query node. Each sipflow variant is
#                   primed first (every user registers twice at 1000/s, unmeasured): the ladder
#                   measures the cached steady state.
#       mongodb:    the note's production setup: Kamailio auth_db on PostgreSQL + usrloc on db_mongodb in
#                   db_mode 1 (kit AUTH=pgsql USRLOC_MONGO=…, CHILDREN=8) vs sipflow with its directory on
#                   the same PostgreSQL (database "sipflow", as persistent) and location.url = the same
#                   MongoDB-protocol server in location.mode write-through (`--workers`). That server is
#                   FerretDB (scripts/test-servers/ferretdb.sh, v1.24.2) started by this script on its
#                   PostgreSQL backend (--handler=postgresql) against the bench's own cluster (database
#                   "ferretdb"), on FERRET_PORT (default SIP_PORT + 22000, the next free one if taken),
#                   stopped by its PID at the end. Kamailio writes collection location of database
#                   "kamailio", sipflow of database "sipflow" (Kamailio's layout: sipflow's store writes
#                   the version documents and indexes of both); each is emptied once, before its
#                   registrar starts, and both registrars run through their whole ladder as one
#                   process (the kit's KEEP_RUNNING=1: Kamailio is not restarted per step here): an
#                   unmeasured fill step registers every user, and every step after it measures
#                   REGISTERs that refresh bindings the registrar and the collection both hold, as a
#                   registrar mostly sees. Emptied before every step with Kamailio restarted, as in the
#                   persistent pairing, the two would not start alike: Kamailio inserts into an empty
#                   collection, while sipflow's write-through memory still holds what the kit deleted,
#                   so it refreshes bindings the collection lacks (an upsert: FerretDB's query, then
#                   its insert; docs/benchmarks.md "What each registrar writes"). CPU: db_cpu =
#                   PostgreSQL (all its processes, FerretDB's sessions included), fdb_cpu = the FerretDB
#                   process (ferret_cpu_pct in the step lines), reported apart, never summed. FerretDB is
#                   stopped at the end of the pairing; no profiling run for it.
#                   FerretDB 1.24's PostgreSQL backend pushes an equality filter on a field other than _id
#                   down as `_jsonb->'field' @> $1` (containment, for MongoDB's array semantics), which the
#                   btree expression indexes it creates for createIndexes cannot serve: every find, update
#                   or replace by ruid or username is a sequential scan of the collection (6.7 ms at 5,800
#                   documents, EXPLAIN ANALYZE). The script adds GIN (jsonb_path_ops) expression indexes
#                   on ruid and username to both backing tables (FERRET_GIN=0: not), which turn them into
#                   index scans as MongoDB's indexes would; what remains is FerretDB's own cost per
#                   operation (0.4-0.7 ms of its CPU for a find or an update, measured with a bare driver).
#                   Its update command (internal/handler/msg_update.go) runs its statements one after
#                   another, each a query then its own write transaction, and closes each statement's
#                   query only when the whole command returns (`defer` in the loop): a statement that
#                   matched a document keeps one pooled PostgreSQL connection until then, and the next one
#                   needs a new one. sipflow's write-through sends its concurrent upserts as one unordered
#                   bulkWrite of up to 500 replaceOne (services/location/mongo.ts: maxBatch 500, 4 in
#                   flight); with FerretDB's default pool (pool_max_conns 50) the commands in flight soon
#                   hold every connection while each waits for one more: FerretDB deadlocks (goroutine dump:
#                   every request in pgxpool Acquire, 50 connections idle in PostgreSQL), sipflow answers
#                   503 after its 5 s socket timeout, and every later step fails. So the cluster is started
#                   with max_connections 2100 when this pairing runs and FerretDB's pool is max_connections
#                   - 50 (FERRET_POOL overrides; a warning below 2,010 = 4 × 501 + Kamailio's 8), and a
#                   command of k such statements opens up to k PostgreSQL backends (about 22 ms each when
#                   the pool grows). Once every step refreshes bindings (above), batches of refreshes grew
#                   FerretDB to the whole pool within a step and it stopped answering: so sipflow's
#                   location tells FerretDB by its buildInfo and sends it one write a command, 16 at
#                   once (location.writeBatch and writesInFlight "auto", docs/operations.md "MongoDB
#                   location on FerretDB"; MONGO_WRITE_BATCH and MONGO_WRITES_IN_FLIGHT set them, as a
#                   --control-dist build older than "auto" needs: 1 and 16), as Kamailio's are.
#                   Kamailio sends one statement per REGISTER from each of its 8 children.
#                   And a batch costs its size: a bulkWrite of k upserts took 1.4-1.9 ms per statement in
#                   series (182 ms for 100), 4 at once 700-900 statements/s in all, while every REGISTER of
#                   a batch waits for all of it (sipflow_location_seconds: 2.0 s on average at 500 calls/s,
#                   0.37 s at 300); Kamailio's children wait for their own statement only (insertOne 8 at a
#                   time: 1,223/s). And an upsert is a query plus a transaction where an insert is a
#                   transaction: a bare driver held 800/s of insertOne (p50 2 ms) but not of replaceOne with
#                   upsert (p50 0.5 s); Kamailio inserts its new contacts, sipflow upserts every binding.
#                   So the pairing measures FerretDB's update command more than sipflow;
#                   docs/benchmarks.md "The mongodb pairing" has the figures.
#                   FerretDB has no change streams, so a write-through sipflow would reload every binding
#                   every location.refreshSec (2 s) to follow other instances; against the note's replica
#                   set it follows them by change stream and never reloads, and Kamailio's db_mode 1 does
#                   not follow them at all: the bench sets refreshSec 3600 (MONGO_REFRESH_SEC overrides).
#       embedded:   sipflow as `npm start` ships it (`sipflow serve` on the configuration defaults: the
#                   shipped flows, the embedded PGlite directory in dataDir, location.url sql, and
#                   whatever else the build's defaults are), with only what the bench needs set: the
#                   listener (UDP and TCP on SIP_PORT as shipped; over --transport tcp|tls that one),
#                   security.trustedSources, log.level warn, dataDir and http.port (its own
#                   directory; SIP_PORT + 10, not 8080); the users imported into the embedded directory
#                   (`sipflow import`), a fresh copy of it per run, primed as the memory pairing (every user
#                   registers twice at 1000/s, unmeasured). No Kamailio counterpart: its ratio is
#                   embedded / sipflow-pgsql (the persistent pairing's sipflow, same run), target >= 1.0.
#                   --workers does not apply (the default is used).
#       floor:      the platform's floor, UDP only: bench/sip/floor.ts, a Node 20 digest registrar with
#                   nothing of sipflow in it (header lines split, a stateless HMAC nonce, the MD5 digest
#                   checked, the binding in a Map; one thread, no grammar, transactions or logic), laddered
#                   like the registrars (--rates-floor). Its row sits under the memory pairing's, its ratio
#                   against that pairing's Kamailio, and the summary gives sipflow's CPU per call (memory
#                   pairing) over the floor's: what sipflow's code costs beyond what the platform must.
#       invite:     a call relay with call records, UDP only: SIPp UAC (bench/sip/invite/uac.xml) -> proxy
#                   -> SIPp UAS (uas.xml) on UAS_PORT: INVITE -> 100/180/200 -> ACK -> --hold-ms -> BYE -> 200,
#                   one call per SIPp call. Kamailio (bench/sip/invite/kamailio.cfg, 8 children):
#                   record_route + t_relay to the UAS, acc to table acc of database kamailio on the
#                   bench's PostgreSQL (a row for the INVITE's and one for the BYE's final answer)
#                   vs sipflow (bench/sip/invite/relay.slid, sip.recordRoute on, `--workers`) with CDRs on
#                   (accounting.enabled + accounting.database: table cdrs of its directory database
#                   "sipflow" on the same server), when this build has the accounting keys; else it
#                   runs without and says "CDRs: off (accounting not built)". Each step counts the
#                   records written for its measured calls (cdr_rows). A step passes as a REGISTER
#                   step does, UAC and UAS together (0 failed, 0 retransmitted, 0 slow: the 200 after
#                   500 ms or more).
#   --hold-ms MS        invite pairing: time between ACK and BYE (default 100)
#   --invite-control    invite pairing: also ladder Kamailio without acc (-A WITHOUT_ACC), a row that
#                       says what accounting costs Kamailio (and compares with sipflow when its CDRs are off)
#   --rates-invite R,R,…  explicit rates for the invite pairing
#   --quick             shorter steps (5 s of load), one bisection step, no retries
#   --rates R,R,…       explicit rates for every ladder (instead of the automatic ladder)
#   --rates-persistent R,R,…  --rates-memory R,R,…  --rates-floor R,R,…  --rates-mongodb R,R,…  --rates-embedded R,R,…
#                       explicit rates per pairing
#   --duration S        seconds of load per step (default 10; calls = rate × S)
#   --users N           users (default 10000)
#   --workers N|auto    sipflow SIP worker threads in both pairings (default auto = one per core)
#   --location-mode M   sipflow location.mode in the persistent pairing (default write-through; db-only =
#                       read the bindings from PostgreSQL on every REGISTER, Kamailio's db_mode 3)
#   --cache-seconds S   caching value of the query node in the cached variant (default 3600)
#   --retry N           rerun a marginally failing step up to N times before calling it failed (default 1:
#                       the machine is shared, a neighbour's burst can cost one step)
#   --no-profile        skip the profiling runs (node --cpu-prof at each sipflow variant's best rate)
#   --alloc-profile     also say where a call's memory goes, for each sipflow variant of the run: the
#                       variant's configuration with sip.workers 1 (every message in the main thread),
#                       started with --inspect on INSPECT_PORT, primed as its CPU profile, then one step
#                       of 2 × --duration at min(best, ALLOC_RATE) calls/s (default 2000) sampled by
#                       bench/sip/alloc-profile.ts (V8's sampling heap profiler, collected objects
#                       included): bytes per call by allocating function and by nearest sipflow frame
#   --no-build          do not run `npm run build` first
#   --skip-kamailio     measure sipflow only (no ratio)
#   --history off|all|both   memory pairing: the call history (history.mode) of sipflow. off (default): as
#                       shipped; all: every call recorded (full path and messages, to the PGlite directory)
#                       in both variants; both: the uncached variant twice in the same run, recording off
#                       and all, and the ratio all/off in the final table (issue 16: at most 15 % drop);
#                       the recording runs' `history:` YAML is $SF_HISTORY (default `{ mode: all }`, e.g.
#                       SF_HISTORY='{ mode: all, maxWriteShare: 0.5 }')
#   --control-dist F    memory, persistent, mongodb and embedded pairings: also ladder another build first (F =
#                       its dist/cli/main.js, e.g. a worktree of the commit before a change); memory: uncached, on
#                       its own copy of the directory; persistent: on the same databases; mongodb: on the same
#                       collection, emptied and filled for each; embedded: as that build ships, on a directory it
#                       imported; the final table gives this build's rate / the control's for each
#   --overload          REGISTER pairings only (persistent, memory, mongodb, embedded; the invite pairing is
#                       skipped); on by default with --pairing all (`npm run bench:sip`), off otherwise: after
#                       each registrar's ladder (every sipflow variant too), one step per factor f at
#                       round(f × best) calls/s for --overload-seconds, through the same `step` (same scenario,
#                       same kit arguments: Kamailio started fresh per step as in its ladder, sipflow still the
#                       ladder's process), no retry, its pass/fail ignored. A step stops by itself: rate × S calls
#                       (SIPp -m) and SIPp's -timeout 1.5 × S + 5 s. The final table gets an overload section,
#                       per registrar and factor: goodput = the step's achieved_cps (successful calls / elapsed_s,
#                       elapsed_s = the whole measured SIPp run, first call to last answer or the timeout; the
#                       TCP/TLS driver computes it the same way), goodput / best, and SIPp's retransmissions
#                       (always 0 over TCP/TLS). Target (issue): sipflow keeps >= 0.90 of best at 1.5× and 2×.
#   --overload-factors F,F,…  multiples of best (default 1.5,2); implies --overload
#   --overload-seconds S      seconds of load per overload step (default 30, 10 with --quick); implies --overload
#   --no-overload       no overload steps (also with --pairing all)
# sipflow runs with its security defences on (docs/security.md); SIPp's 10,000 users all come from
# 127.0.0.1, as they would through an SBC, so that address is a trusted source (no per-source rate
# limit or ban), which is how an operator configures an SBC in front of sipflow.
# environment: WORK (default /tmp/sipflow-bench-sip), SIP_PORT (5170), SIPP_PORT (5171): not the kit's 5070/5071, which other benches on this machine use;
#   UAS_PORT (SIP_PORT + 2): the invite pairing's UAS; FERRET_PORT (SIP_PORT + 22000): the mongodb pairing's
#   FerretDB; FERRET_BIN: its binary (default: built or found by scripts/test-servers/ferretdb.sh);
#   FERRET_GIN=0: no GIN indexes on its backing tables, FERRET_POOL: its pool_max_conns (default the
#   cluster's max_connections - 50), MONGO_REFRESH_SEC, MONGO_WRITE_BATCH, MONGO_WRITES_IN_FLIGHT: sipflow's location.refreshSec (3600),
#   writeBatch and writesInFlight there (default: not set, "auto"; see mongodb above);
#   LOW_RATE (500): the low-rate step (0 = none), see Ladder; LOW_SETTLE_S (20): seconds at LOW_RATE before
#   it is measured (steady state); ALLOC_RATE (2000), INSPECT_PORT (SIP_PORT + 23):
#   --alloc-profile's rate and inspector port.
#
# Ladder: without explicit rates each registrar starts at a per-pairing rate and multiplies it by
# 1.5 while a step passes (0 failed calls, 0 retransmissions, 0 calls answered in 500 ms or more —
# over TCP and TLS nothing is retransmitted —, every call successful), then bisects
# between the best pass and the first failure (2 steps; 1 with --quick). Each step runs one SIPp
# load after an unmeasured warm-up (1000 calls at 500/s; LOW_SETTLE_S seconds before the LOW_RATE
# step), through the kit's run.sh. A registrar whose
# ladder had no passed step at LOW_RATE (Kamailio's start higher) then runs one: the summary's
# low/best compares the CPU per call there with the best step's, for both registrars of a pairing.
#
# Output: one summary line per step (the kit's format), the profile summaries, and one summary block:
# a table with every registrar that ran (every pairing), its best rate, its ratio and the issue's
# target, the CPU at the best step in % of a core and per call (core-ms: registrar, PostgreSQL,
# FerretDB), its CPU per call at LOW_RATE over that at the best step, and its overload goodput / best
# at each factor; beneath it the overload steps in detail (offered, goodput, SIPp's retransmissions,
# and the CPU of the registrar and of SIPp over the step) and the invite pairing's records.
# Everything is also written to $WORK/report-<time>.txt.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
KIT=$HERE/kamailio
export WORK=${WORK:-/tmp/sipflow-bench-sip}
SIP_PORT=${SIP_PORT:-5170}
export SIPP_PORT=${SIPP_PORT:-5171}
export UAS_PORT=${UAS_PORT:-$((SIP_PORT + 2))}
export TARGET=127.0.0.1:$SIP_PORT
export NUSERS=10000

PAIRING=all
TRANSPORT=udp
CONNECTIONS=1000
LOAD=
QUICK=0
RATES=""
RATES_PERSISTENT=""
RATES_MEMORY=""
RATES_INVITE=""
RATES_MONGODB=""
RATES_FLOOR=""
RATES_EMBEDDED=""
HOLD_MS=100
INVITE_CONTROL=0
DUR=""
WORKERS=auto
LOC_MODE=write-through
CACHE_S=3600
PROFILE=1
ALLOC=0
RETRY=""
BUILD=1
SKIP_KAM=0
HISTORY=off
CONTROL_MAIN=""
OVERLOAD=""
OVERLOAD_FACTORS=1.5,2
OVERLOAD_S=""
while [ $# -gt 0 ]; do
  case "$1" in
    --pairing) PAIRING=$2; shift ;;
    --pairing=*) PAIRING=${1#*=} ;;
    --only) PAIRING=$2; shift ;;
    --only=*) PAIRING=${1#*=} ;;
    --rates-invite) RATES_INVITE=$2; shift ;;
    --hold-ms) HOLD_MS=$2; shift ;;
    --invite-control) INVITE_CONTROL=1 ;;
    --transport) TRANSPORT=$2; shift ;;
    --transport=*) TRANSPORT=${1#*=} ;;
    --connections) CONNECTIONS=$2; shift ;;
    --tcp-load) LOAD=$2; shift ;;
    --quick) QUICK=1 ;;
    --rates) RATES=$2; shift ;;
    --rates=*) RATES=${1#*=} ;;
    --rates-persistent) RATES_PERSISTENT=$2; shift ;;
    --rates-memory) RATES_MEMORY=$2; shift ;;
    --rates-mongodb) RATES_MONGODB=$2; shift ;;
    --rates-floor) RATES_FLOOR=$2; shift ;;
    --rates-embedded) RATES_EMBEDDED=$2; shift ;;
    --duration) DUR=$2; shift ;;
    --users) NUSERS=$2; shift ;;
    --workers) WORKERS=$2; shift ;;
    --location-mode) LOC_MODE=$2; shift ;;
    --cache-seconds) CACHE_S=$2; shift ;;
    --no-profile) PROFILE=0 ;;
    --alloc-profile) ALLOC=1 ;;
    --retry) RETRY=$2; shift ;;
    --no-build) BUILD=0 ;;
    --skip-kamailio) SKIP_KAM=1 ;;
    --history) HISTORY=$2; shift ;;
    --control-dist) CONTROL_MAIN=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift ;;
    --overload) OVERLOAD=1 ;;
    --overload-factors) OVERLOAD=1; OVERLOAD_FACTORS=$2; shift ;;
    --overload-seconds) OVERLOAD=1; OVERLOAD_S=$2; shift ;;
    --no-overload) OVERLOAD=0 ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
case "$PAIRING" in all) PAIRINGS="persistent memory floor mongodb embedded invite" ;; both) PAIRINGS="persistent memory" ;;
  *) PAIRINGS=${PAIRING//,/ }
     for p in $PAIRINGS; do case $p in persistent|memory|floor|mongodb|embedded|invite) ;;
       *) echo "--pairing must be persistent, memory, floor, mongodb, embedded, invite (or several, comma-separated), both or all" >&2; exit 2 ;; esac; done ;; esac
# the overload steps: part of the full run (npm run bench:sip), asked for otherwise
[ -n "$OVERLOAD" ] || OVERLOAD=$([ "$PAIRING" = all ] && echo 1 || echo 0)
if [ "$TRANSPORT" != udp ]; then
  # SIPp 3.6 has no TLS and the UAS/UAC scenarios are written for UDP; the floor listens on UDP only
  case "$PAIRING" in invite|floor) echo "--pairing $PAIRING runs over UDP only" >&2; exit 2 ;; esac
  PAIRINGS=$(echo " $PAIRINGS " | sed "s/ invite / /; s/ floor / /; s/^ *//; s/ *$//")
fi
case "$TRANSPORT" in udp|tcp|tls) ;; *) echo "--transport must be udp, tcp or tls" >&2; exit 2 ;; esac
case "$HISTORY" in off|all|both) ;; *) echo "--history must be off, all or both" >&2; exit 2 ;; esac
HISTORY_YAML=${SF_HISTORY:-"{ mode: all }"}
[ -z "$CONTROL_MAIN" ] || [ -f "$CONTROL_MAIN" ] || { echo "--control-dist: no such file" >&2; exit 2; }
[[ $OVERLOAD_FACTORS =~ ^[0-9]+(\.[0-9]+)?(,[0-9]+(\.[0-9]+)?)*$ ]] || { echo "--overload-factors: numbers separated by commas (e.g. 1.5,2)" >&2; exit 2; }
[ -z "$OVERLOAD_S" ] || [[ $OVERLOAD_S =~ ^[1-9][0-9]*$ ]] || { echo "--overload-seconds: a whole number of seconds" >&2; exit 2; }
[ "$TRANSPORT" = tcp ] && LOAD=${LOAD:-driver}
[ "$TRANSPORT" = tls ] && LOAD=driver
export TRANSPORT CONNECTIONS LOAD
if [ -z "$DUR" ]; then DUR=$([ "$QUICK" = 1 ] && echo 5 || echo 10); fi
if [ -z "$OVERLOAD_S" ]; then OVERLOAD_S=$([ "$QUICK" = 1 ] && echo 10 || echo 30); fi
REFINE=$([ "$QUICK" = 1 ] && echo 1 || echo 2)
[ -n "$RETRY" ] || RETRY=$([ "$QUICK" = 1 ] && echo 0 || echo 1)
STEP=1.5
[ -n "$RATES" ] && { RATES_PERSISTENT=${RATES_PERSISTENT:-$RATES}; RATES_MEMORY=${RATES_MEMORY:-$RATES}; RATES_INVITE=${RATES_INVITE:-$RATES}
  RATES_MONGODB=${RATES_MONGODB:-$RATES}; RATES_EMBEDDED=${RATES_EMBEDDED:-$RATES}; RATES_FLOOR=${RATES_FLOOR:-$RATES}; }

# the mongodb pairing's FerretDB holds many PostgreSQL connections (see mongodb in the header): the
# cluster, when this run starts it, allows 2100 (PG_OPTS is the kit's: extra postgres options)
case " $PAIRINGS " in *" mongodb "*) export PG_OPTS="-c max_connections=2100 ${PG_OPTS:-}" ;; esac
mkdir -p "$WORK"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
REPORT=$WORK/report-$STAMP.txt
STEPS_LOG=$WORK/steps-$STAMP.log
: > "$REPORT"
log() { echo "$*" | tee -a "$REPORT" >&2; }
T_START=$(date +%s)

# ---------------------------------------------------------------- prerequisites
need=()
command -v sipp >/dev/null 2>&1 || need+=(sip-tester)
command -v kamailio >/dev/null 2>&1 || need+=(kamailio)
command -v sqlite3 >/dev/null 2>&1 || need+=(sqlite3)
[ -e /usr/lib/x86_64-linux-gnu/kamailio/modules/db_sqlite.so ] || need+=(kamailio-sqlite-modules)
[ -e /usr/lib/x86_64-linux-gnu/kamailio/modules/db_postgres.so ] || need+=(kamailio-postgres-modules)
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
[ -x "$PG_BIN/postgres" ] || need+=(postgresql-15)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]} (apt)"
  apt-get update >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}" >/dev/null
fi
if [ "$BUILD" = 1 ]; then
  log "building (npm run build)"
  # tsc emits even with type errors elsewhere in the tree; go on when dist/ is there
  (cd "$REPO" && npm run build --silent) >&2 || log "warning: npm run build reported errors; using what it emitted"
fi
SIPFLOW=(node "$REPO/dist/cli/main.js")
[ -f "$REPO/dist/cli/main.js" ] && [ -f "$REPO/dist/bench/sip/gen-users.js" ] || { echo "dist/ is missing: run npm run build" >&2; exit 1; }

# ---------------------------------------------------------------- users (once per N)
if [ ! -f "$WORK/users.csv" ] || [ ! -f "$WORK/customers.csv" ] || [ ! -f "$WORK/kamailio.sqlite" ] \
   || [ "$(cat "$WORK/users.n" 2>/dev/null)" != "$NUSERS" ]; then
  node "$REPO/dist/bench/sip/gen-users.js" "$NUSERS" "$WORK"
  echo "$NUSERS" > "$WORK/users.n"
  rm -rf "$WORK/sipflow-mem"   # PGlite directory holds the previous user set
fi

# ---------------------------------------------------------------- TLS certificate (--transport tls)
# One self-signed EC P-256 certificate for both registrars (CN and SAN example.test, localhost,
# 127.0.0.1); the driver trusts it as its CA. Kamailio reads it through a tls.cfg, sipflow through
# sip.tls.certFile/keyFile ($SF_TLS, added to every sipflow config below).
SF_TLS=""
SF_REG=""
KAM_START=8000
# Over TCP (SIPp tn) every call's connection closes right after its 200 OK: sipflow would then
# remove the binding just written (registrar.connections.removeOnClose, default on), Kamailio
# keeps it (usrloc handle_lost_tcp = 0, its default). The bench keeps them in both.
[ "$TRANSPORT" = udp ] || SF_REG="registrar: { connections: { removeOnClose: false } }"
if [ "$TRANSPORT" = tcp ]; then KAM_START=4000; fi
if [ "$TRANSPORT" = tls ]; then
  KAM_START=2000
  command -v openssl > /dev/null || { echo "--transport tls needs openssl" >&2; exit 1; }
  [ -e /usr/lib/x86_64-linux-gnu/kamailio/modules/tls.so ] || { apt-get update > /dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y kamailio-tls-modules > /dev/null; }
  TLS_DIR=$WORK/tls
  mkdir -p "$TLS_DIR"
  if [ ! -s "$TLS_DIR/cert.pem" ] || [ ! -s "$TLS_DIR/key.pem" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 -subj "/CN=example.test" \
      -addext "subjectAltName=DNS:example.test,DNS:localhost,IP:127.0.0.1" \
      -keyout "$TLS_DIR/key.pem" -out "$TLS_DIR/cert.pem" 2> "$TLS_DIR/openssl.log" || { cat "$TLS_DIR/openssl.log" >&2; exit 1; }
    chmod 600 "$TLS_DIR/key.pem"
  fi
  cat > "$TLS_DIR/tls.cfg" <<EOF
[server:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
private_key = $TLS_DIR/key.pem
certificate = $TLS_DIR/cert.pem

[client:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
EOF
  export TLS_CFG=$TLS_DIR/tls.cfg TLS_CA=$TLS_DIR/cert.pem
  SF_TLS="  tls: { certFile: $TLS_DIR/cert.pem, keyFile: $TLS_DIR/key.pem }"$'\n'
fi

# ---------------------------------------------------------------- sipflow process
SF_PID=""
SF_PIDS=""
sf_pids() { echo "$SF_PID $(ps -o pid= --ppid "$SF_PID" 2>/dev/null | tr '\n' ' ')"; }
# sf_config FILE DATA_DIR FLOWS DIRECTORY LOCATION [HTTP] [EXTRA]: a sipflow configuration as every REGISTER
# pairing runs it (this run's listener, workers, TLS and registrar keys); DIRECTORY and LOCATION are YAML
# flow mappings, HTTP is off unless given
sf_config() {
  cat > "$1" <<EOF
dataDir: $2
flows: $3
sip:
  listeners: [{ transport: $TRANSPORT, host: 127.0.0.1, port: $SIP_PORT }]
$SF_TLS  domain: example.test
  workers: $WORKERS
directory: $4
location: $5
${6:-"http: { enabled: false }"}
log: { level: warn }
security: { trustedSources: [127.0.0.1] }
$SF_REG
${7:-}
EOF
}
start_sipflow() {  # start_sipflow CONFIG LOGFILE [node flags…]
  local cfg=$1 logf=$2; shift 2
  if grep -q " 0100007F:$(printf '%04X' "$SIP_PORT") " /proc/net/udp \
     || grep -q " 0100007F:$(printf '%04X' "$SIP_PORT") 00000000:0000 0A " /proc/net/tcp; then
    echo "something already listens on $TARGET" >&2; return 1
  fi
  node "$@" "${SF_MAIN:-$REPO/dist/cli/main.js}" serve --config "$cfg" > "$logf" 2>&1 &
  SF_PID=$!
  for _ in $(seq 1 600); do
    grep -q "sipflow: SIP .* listening" "$logf" 2>/dev/null && break
    kill -0 "$SF_PID" 2>/dev/null || { echo "sipflow died at start, see $logf:" >&2; tail -20 "$logf" >&2; SF_PID=""; return 1; }
    sleep 0.2
  done
  grep -q "sipflow: SIP .* listening" "$logf" || { echo "sipflow did not start in 120 s ($logf)" >&2; return 1; }
  sleep 0.5
  SF_PIDS=$(sf_pids)
}
stop_sipflow() {
  [ -n "$SF_PID" ] || return 0
  local all
  all=$(sf_pids)
  kill -TERM "$SF_PID" 2>/dev/null || true
  for _ in $(seq 1 150); do kill -0 "$SF_PID" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$SF_PID" 2>/dev/null; then
    echo "sipflow did not exit within 15 s of SIGTERM; killing $all" >&2
    for p in $all; do kill -KILL "$p" 2>/dev/null || true; done
  fi
  wait "$SF_PID" 2>/dev/null || true
  SF_PID=""
}

PG_DATA=$WORK/pg/data
pg_port() { sed -n 4p "$PG_DATA/postmaster.pid" 2>/dev/null; }
# flows_reset: database sipflow's flows store emptied. The persistent, mongodb and invite pairings and
# the pgsql profile share that database, and a start on a store with flows imports its file as a
# release, not active (server/flows/bootstrap.ts): emptied, the next start activates its own file
flows_reset() {
  "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$(pg_port)" -U kamailio -d sipflow -c "DELETE FROM sipflow.flows" > /dev/null 2>&1 || true
}
pg_stop_all() {
  [ -f "$PG_DATA/postmaster.pid" ] || return 0
  (cd / && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop) > /dev/null 2>&1 || true
}
# FerretDB (mongodb pairing): started by run_mongodb, stopped by its PID before the cluster it uses
FERRET_PID=""
# stop_pid PID SECONDS: SIGTERM, then SIGKILL if it still runs after SECONDS (a process this script started)
stop_pid() {
  kill -TERM "$1" 2>/dev/null || return 0
  for _ in $(seq 1 $(( $2 * 10 ))); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
}
ferret_stop() {
  [ -n "$FERRET_PID" ] || return 0
  stop_pid "$FERRET_PID" 10
  wait "$FERRET_PID" 2>/dev/null || true
  FERRET_PID=""
}
# kam_kept_stop: the Kamailio the kit left running (KEEP_RUNNING=1, the mongodb pairing), stopped by its PID
KAM_KEPT=0
kam_kept_stop() {
  local pid
  [ "$KAM_KEPT" = 1 ] || return 0
  KAM_KEPT=0
  pid=$(cat "$WORK/kamailio.pid" 2> /dev/null) || return 0
  stop_pid "$pid" 5
}
# the floor (floor pairing): started by run_floor, stopped by its PID
FLOOR_PID=""
floor_stop() {
  [ -n "$FLOOR_PID" ] || return 0
  kill -TERM "$FLOOR_PID" 2>/dev/null || true
  wait "$FLOOR_PID" 2>/dev/null || true
  FLOOR_PID=""
}
cleanup() { stop_sipflow; floor_stop; kam_kept_stop; ferret_stop; pg_stop_all; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- one step, ladders
# kv LINE KEY -> value of KEY=… in a summary line
kv() { tr ' ' '\n' <<< "$1" | sed -n "s/^$2=//p" | head -1; }
LAST_LINE=""
# the script that runs one step: the kit's run.sh (REGISTER), bench/sip/invite/run.sh for the invite pairing
STEP_SCRIPT=$KIT/run.sh
# step LABEL RATE ENV… : one $STEP_SCRIPT run; sets LAST_LINE; returns 0 when it passed
step() {
  local label=$1 rate=$2; shift 2
  local calls=$((rate * DUR)) line rc attempt load0
  for ((attempt = 0; attempt <= RETRY; attempt++)); do
    rc=0
    load0=$(cut -d' ' -f1 /proc/loadavg)
    STEP_T0=$(date +%s.%N)
    # warm-up (unmeasured): the kit's 1000 calls at 500/s, or at the step's rate when that is lower
    # (a registrar that collapses at 500/s would otherwise start the measured run with a backlog);
    # before the LOW_RATE step, LOW_SETTLE_S seconds at that rate (see LOW_RATE below).
    # A collapsing step would run on for 30-40 s of retransmissions: SIPp stops it at 1.5 × DUR + 5 s
    local warm=1000
    [ "$rate" != "$LOW_RATE" ] || warm=$(( LOW_RATE * LOW_SETTLE_S > 1000 ? LOW_RATE * LOW_SETTLE_S : 1000 ))
    line=$(env WARMUP_RATE=$(( rate < 500 ? rate : 500 )) WARMUP_CALLS=$warm "$@" PG_KEEP=1 SIPP_EXTRA="-timeout $((DUR * 3 / 2 + 5))" RUN_TIMEOUT_S=$((DUR * 3 / 2 + 5)) "$STEP_SCRIPT" "$rate" "$calls" 2> "$WORK/step.err") || rc=$?
    if [ $rc -ne 0 ] || [ -z "$line" ]; then
      line="rate_target=$rate achieved_cps=0 failed=NA retrans=NA error=run.sh_rc_$rc"
      tail -5 "$WORK/step.err" >&2 || true
    fi
    # 1-min load average before and after the step (other work on the machine)
    LAST_LINE="[$label] $line loadavg=$load0/$(cut -d' ' -f1 /proc/loadavg)"
    [ "$attempt" -gt 0 ] && LAST_LINE="$LAST_LINE retry=$attempt"
    echo "$LAST_LINE" | tee -a "$STEPS_LOG" "$REPORT" >&2
    if [ "$(kv "$line" failed)" = 0 ] && [ "$(kv "$line" retrans)" = 0 ] && [ "$(kv "$line" slow)" = 0 ] && [ "$(kv "$line" successful)" = "$calls" ]; then
      [ "$rate" != "$LOW_RATE" ] || LOWLINE[$label]=$LAST_LINE
      return 0
    fi
    [ "$(kv "$line" failed)" != NA ] || return 1   # the harness failed: no retry
    # retry only a marginal failure (≤ 0.5 % failed calls and ≤ 5 % retransmissions or slow calls), not a collapse
    [ "$(kv "$line" failed)" -le $((calls / 200)) ] && [ "$(kv "$line" retrans)" -le $((calls / 20)) ] && [ "$(kv "$line" slow)" -le $((calls / 20)) ] || return 1
    [ "$label" = "${label#sipflow}" ] || kill -0 "$SF_PID" 2>/dev/null || return 1
  done
  return 1
}
BEST=0
BEST_LINE=""
# the low-rate step of each registrar (LOW_RATE calls/s, passed): its CPU per call against the best
# step's is the summary's low/best column, for Kamailio beside sipflow (the wake-ups of a
# registrar that sleeps between calls cost on this VM whatever the code; docs/performance.md).
# Measured in steady state: its unmeasured warm-up runs LOW_SETTLE_S seconds at LOW_RATE. sipflow's
# first step after the priming otherwise measures its inline front end's code being compiled: the
# priming went to the workers (docs/performance.md, "The first low-rate step after a burst").
LOW_RATE=${LOW_RATE:-500}
LOW_SETTLE_S=${LOW_SETTLE_S:-20}
ALLOC_RATE=${ALLOC_RATE:-2000}
INSPECT_PORT=${INSPECT_PORT:-$((SIP_PORT + 23))}
declare -A LOWLINE
# ladder LABEL START EXPLICIT_RATES CHECK_FN ENV… : sets BEST / BEST_LINE; then one step at LOW_RATE
# when the ladder had none that passed (Kamailio's ladders start higher)
ladder() {
  ladder_steps "$@" || return 1
  local label=$1 check=$4; shift 4
  [ "$LOW_RATE" -gt 0 ] && [ -z "${LOWLINE[$label]:-}" ] && [ "$BEST" -gt "$LOW_RATE" ] || return 0
  step "$label" "$LOW_RATE" "$@" || true
  $check
}
ladder_steps() {
  local label=$1 start=$2 explicit=$3 check=$4; shift 4
  local rate fail=0 fails=0 mid
  BEST=0; BEST_LINE=""
  if [ -n "$explicit" ]; then
    for rate in ${explicit//,/ }; do
      if step "$label" "$rate" "$@"; then
        [ "$rate" -gt "$BEST" ] && { BEST=$rate; BEST_LINE=$LAST_LINE; }
        fails=0
      else
        fails=$((fails + 1)); [ $fails -ge 2 ] && break
      fi
      $check || return 1
    done
    return 0
  fi
  rate=$start
  while :; do
    if step "$label" "$rate" "$@"; then
      BEST=$rate; BEST_LINE=$LAST_LINE
      $check || return 1
      rate=$(awk -v r="$rate" -v s="$STEP" 'BEGIN { printf "%d", int(r * s / 100 + 0.5) * 100 }')
    else
      $check || return 1
      fail=$rate
      if [ "$BEST" = 0 ]; then  # even the start failed: go down
        [ "$rate" -le 200 ] && return 0
        rate=$(( (rate / 2 + 50) / 100 * 100 )); continue
      fi
      break
    fi
  done
  local i
  for ((i = 0; i < REFINE; i++)); do
    mid=$(( ((BEST + fail) / 2 + 50) / 100 * 100 ))
    [ $((fail - BEST)) -le $((BEST / 10)) ] && break
    [ "$mid" -le "$BEST" ] || [ "$mid" -ge "$fail" ] && break
    if step "$label" "$mid" "$@"; then BEST=$mid; BEST_LINE=$LAST_LINE; else fail=$mid; fi
    $check || return 1
  done
}
kam_ok() { return 0; }
sf_ok() {
  kill -0 "$SF_PID" 2>/dev/null && return 0
  echo "sipflow exited during the run; tail of its log:" >&2; tail -20 "$SF_LOG" >&2; SF_PID=""; return 1
}

# per-variant results: RES_<name>=rate ; RLINE_<name>=line
declare -A RES RLINE
record() { RES[$1]=$BEST; RLINE[$1]=$BEST_LINE; }

# overload (--overload): OVL[NAME|F] = "offered goodput retrans srv_cpu sipp_cpu" of the step at
# round(F × best); the CPU figures (% of a core over the whole SIPp run, drain included) set what
# past capacity cost against the best step's (docs/performance.md, "What bounds the goodput past
# capacity")
declare -A OVL
# overload NAME CHECK_FN ENV… : after `ladder NAME …` and `record NAME`, with the ladder's ENV…; never fails
overload() {
  local name=$1 check=$2; shift 2
  local best=${RES[$name]:-0} f rate line
  [ "$OVERLOAD" = 1 ] || return 0
  [ "$best" -gt 0 ] || { log "$name: no passing rate, no overload steps"; return 0; }
  for f in ${OVERLOAD_FACTORS//,/ }; do
    $check || { log "$name: server gone, overload steps stopped"; return 0; }
    rate=$(awk -v f="$f" -v b="$best" 'BEGIN { printf "%d", f * b + 0.5 }')
    DUR=$OVERLOAD_S RETRY=0 step "$name+overload-${f}x" "$rate" "$@" || true
    line=$LAST_LINE
    if [ "$(kv "$line" failed)" = NA ]; then OVL[$name|$f]="$rate error NA - -"
    else OVL[$name|$f]="$rate $(kv "$line" achieved_cps) $(kv "$line" retrans) $(kv "$line" srv_cpu_pct) $(kv "$line" sipp_cpu_pct)"; fi
  done
  $check || log "$name: server gone after its overload steps"
  return 0
}

# flows for the bench: pbx.slid (self-contained: pbx + the seed registration logic 24, unchanged)
mkdir -p "$WORK/flows"
cp "$REPO/flows/pbx.slid" "$WORK/flows/pbx.slid"
node -e '
  const fs = require("fs");
  const [src, dst, secs] = process.argv.slice(1);
  const slid = JSON.parse(fs.readFileSync(src, "utf8"));
  let n = 0;
  for (const logic of Object.values(slid)) {
    if (logic.name !== "registration") continue;
    for (const node of Object.values(logic.nodes)) {
      if (node.type === "query.queryDatabaseGeneric") { node.values.caching = Number(secs); n++; }
    }
  }
  if (n === 0) { console.error("no query node in the registration logic of " + src); process.exit(1); }
  fs.writeFileSync(dst, JSON.stringify(slid, null, 2));
' "$REPO/flows/pbx.slid" "$WORK/flows/pbx-cached.slid" "$CACHE_S"

PROFILES=()   # "name|dir|rate"

# ---------------------------------------------------------------- persistent pairing
# pg_directory: the bench's PostgreSQL cluster running (the kit starts it, provisioning Kamailio's
# database; with --skip-kamailio started alone) and sipflow's directory database "sipflow" holding
# the users; sets PG_PORT_NOW
PG_PORT_NOW=""
pg_directory() {
  [ -n "$(pg_port)" ] || AUTH=pgsql SERVER=external PG_KEEP=1 PG_ONLY=1 "$KIT/run.sh" > /dev/null
  PG_PORT_NOW=$(pg_port)
  [ -n "$PG_PORT_NOW" ] || { log "PostgreSQL cluster is not running ($PG_DATA)"; return 1; }
  local psql=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT_NOW")
  local have
  have=$("${psql[@]}" -U kamailio -d sipflow -Atc "SELECT count(*) FROM registration.customers WHERE name LIKE 'user%'" 2>/dev/null || echo none)
  if [ "$have" != "$NUSERS" ]; then
    log "provisioning $NUSERS customers into postgres://…/sipflow (sipflow import)"
    "${psql[@]}" -U postgres -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS sipflow" -c "CREATE DATABASE sipflow OWNER kamailio"
    "${SIPFLOW[@]}" import --customers "$WORK/customers.csv" --directory-url "postgres://kamailio@127.0.0.1:$PG_PORT_NOW/sipflow" >&2
    "${psql[@]}" -U kamailio -d sipflow -c "ANALYZE registration.customers"
  fi
}
run_persistent() {
  local start=1000 sfstart=500
  log "== persistent: Kamailio auth_db+usrloc db_mode 1 on PostgreSQL (8 children) vs sipflow directory+location on PostgreSQL"
  if [ "$SKIP_KAM" = 0 ]; then
    ladder kamailio-pgsql "$start" "$RATES_PERSISTENT" kam_ok AUTH=pgsql CHILDREN=8 || true
    record kamailio-pgsql
    overload kamailio-pgsql kam_ok AUTH=pgsql CHILDREN=8
  fi
  pg_directory || return 1
  local port=$PG_PORT_NOW
  local psql=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port")
  local dir_url="postgres://kamailio@127.0.0.1:$port/sipflow" loc_url="postgres://kamailio@127.0.0.1:$port/kamailio"
  # with --control-dist the other build first, on the same databases (its flows store emptied as this one's)
  local variant name cfg
  for variant in ${CONTROL_MAIN:+control} build; do
    name=sipflow-pgsql; SF_MAIN=""
    [ "$variant" = build ] || { name=sipflow-pgsql-control; SF_MAIN=$CONTROL_MAIN; }
    cfg=$WORK/$name.yaml
    sf_config "$cfg" "$WORK/$name-data" "$WORK/flows/pbx.slid" "{ url: \"$dir_url\" }" "{ url: \"$loc_url\", mode: $LOC_MODE }"
    flows_reset
    SF_LOG=$WORK/$name.log
    start_sipflow "$cfg" "$SF_LOG"
    log "$name: processes $SF_PIDS"
    # warming (unmeasured): 10 s at 1000/s. A fresh process's first thousands of calls run V8's
    # optimizing compiler (its threads count in srv_cpu): without this the ladder's first step, 500
    # calls/s, measured 2.2 ms per call against 1.3 at 800 (2026-12-04 21:07)
    DUR=$(( NUSERS / 1000 )) RETRY=0 step "$name+priming" 1000 SERVER=external AUTH=pgsql SERVER_PIDS="$SF_PIDS" WARMUP_CALLS=0 || true
    ladder "$name" "$sfstart" "$RATES_PERSISTENT" sf_ok SERVER=external AUTH=pgsql SERVER_PIDS="$SF_PIDS" || true
    record "$name"
    overload "$name" sf_ok SERVER=external AUTH=pgsql SERVER_PIDS="$SF_PIDS"
    stop_sipflow
    SF_MAIN=""
  done
  # (the profiling runs use this build: never the control's)
  if [ "$PROFILE$ALLOC" != 00 ] && [ "${RES[sipflow-pgsql]}" -gt 0 ]; then
    PROFILES+=("sipflow-pgsql|$cfg|${RES[sipflow-pgsql]}|AUTH=pgsql")
  fi
}

# ---------------------------------------------------------------- memory pairing
run_memory() {
  log "== memory: Kamailio usrloc in memory + auth_db on SQLite (2 children) vs sipflow location=memory, PGlite directory"
  if [ "$SKIP_KAM" = 0 ]; then
    ladder kamailio-sqlite "$KAM_START" "$RATES_MEMORY" kam_ok AUTH=sqlite CHILDREN=2 || true
    record kamailio-sqlite
    overload kamailio-sqlite kam_ok AUTH=sqlite CHILDREN=2
  fi
  local dir=$WORK/sipflow-mem/directory
  if [ "$(cat "$WORK/sipflow-mem/users.n" 2>/dev/null)" != "$NUSERS" ]; then
    log "provisioning $NUSERS customers into the embedded PGlite directory (sipflow import)"
    rm -rf "$WORK/sipflow-mem"; mkdir -p "$WORK/sipflow-mem"
    "${SIPFLOW[@]}" import --customers "$WORK/customers.csv" --directory-url "$dir" >&2
    echo "$NUSERS" > "$WORK/sipflow-mem/users.n"
  fi
  # the call history (--history): only when this build has it
  local has_history=0
  "${SIPFLOW[@]}" docs config 2> /dev/null | grep -q '`history.mode`' && has_history=1
  [ "$HISTORY" = off ] || [ "$has_history" = 1 ] || log "--history $HISTORY: this build has no call history (history.mode); recording stays off"
  local variants="cache0 cached"
  [ "$HISTORY" = all ] && variants="cache0+history cached+history"
  [ "$HISTORY" = both ] && variants="cache0 cache0+history"
  [ -n "$CONTROL_MAIN" ] && variants="control $variants"
  local variant flows cfg name data history
  for variant in $variants; do
    flows=$WORK/flows/pbx.slid; data=$WORK/sipflow-mem; history=""; SF_MAIN=""
    case $variant in
      control)
        # another build: its own copy of the directory (its migrations may differ from this build's)
        name=sipflow-memory-control; data=$WORK/sipflow-mem-control; SF_MAIN=$CONTROL_MAIN
        # kept between runs only for the same control build (another build's migrations may be missing from it)
        if [ "$(cat "$data/users.n" 2>/dev/null)" != "$NUSERS" ] || [ "$(cat "$data/control" 2>/dev/null)" != "$CONTROL_MAIN" ] \
          || [ "$CONTROL_MAIN" -nt "$data/users.n" ]; then
          rm -rf "$data"; mkdir -p "$data"
          node "$CONTROL_MAIN" import --customers "$WORK/customers.csv" --directory-url "$data/directory" >&2
          echo "$NUSERS" > "$data/users.n"; echo "$CONTROL_MAIN" > "$data/control"
        fi ;;
      cache0) name=sipflow-memory ;;
      cached) name=sipflow-memory-cached; flows=$WORK/flows/pbx-cached.slid ;;
      cache0+history) name=sipflow-memory-history ;;
      cached+history) name=sipflow-memory-cached-history; flows=$WORK/flows/pbx-cached.slid ;;
    esac
    # each variant of this build on its own copy of the provisioned directory: a start imports and
    # activates its flows file only on an empty flows store (a later start on a shared one would
    # import it as a release, not active: server/flows/bootstrap.ts), so sharing one data dir ran
    # the first variant's logic in the second
    if [ "$variant" != control ]; then
      data=$WORK/$name-data
      rm -rf "$data"; cp -a "$WORK/sipflow-mem" "$data"
    fi
    [ "$variant" = "${variant%+history}" ] || [ "$has_history" = 0 ] || history="history: $HISTORY_YAML"
    # with recording on, the API answers /metrics: how many calls were recorded, written and dropped
    local http="http: { enabled: false }"
    [ -z "$history" ] || http="http: { enabled: true, host: 127.0.0.1, port: $((SIP_PORT + 10)) }"
    cfg=$WORK/$name.yaml
    sf_config "$cfg" "$data" "$flows" "{ url: \"$data/directory\", cacheSec: 3600 }" "{ url: memory }" "$http" "$history"
    SF_LOG=$WORK/$name.log
    start_sipflow "$cfg" "$SF_LOG"
    log "$name: processes $SF_PIDS${history:+ ($history)}"
    # priming (unmeasured): every user registers twice at 1000/s, so the directory caches hold every
    # subscriber's rows and the ladder measures the cached steady state this pairing is about, not
    # first-time misses on PGlite. Most of it runs on the SIP workers (their misses fill the
    # dispatcher's cache too): its first pass keeps the dispatching thread over 75 % busy, and at
    # 2,000 messages/s the load does not come back inline (2,444 of 40,000 messages inline, 2026-12-06;
    # the inline front end then warms up in the LOW_RATE step's settling: docs/performance.md, "The
    # first low-rate step after a burst"). A first step far past sip.inlineMaxRate without it meets the
    # workers' caches empty (docs/benchmarks.md, 2026-12-05 11:31)
    DUR=$(( 2 * NUSERS / 1000 )) RETRY=0 step "$name+priming" 1000 SERVER=external AUTH=sqlite SERVER_PIDS="$SF_PIDS" WARMUP_CALLS=0 || true
    ladder "$name" 500 "$RATES_MEMORY" sf_ok SERVER=external AUTH=sqlite SERVER_PIDS="$SF_PIDS" || true
    record "$name"
    if [ -n "$history" ]; then
      # over the whole ladder (priming included): calls recorded on the SIP threads, written to the directory, dropped
      log "$name: call history over this ladder: $(curl -s -H "authorization: Bearer $(cat "$data/api-token")" "http://127.0.0.1:$((SIP_PORT + 10))/metrics" \
        | grep -E '^sipflow_history_(recorded|written|dropped)_total' | sed -E 's/^sipflow_history_//' | tr '\n' ' ')"
    fi
    # (after the history counts, which are the ladder's)
    overload "$name" sf_ok SERVER=external AUTH=sqlite SERVER_PIDS="$SF_PIDS"
    stop_sipflow
    SF_MAIN=""
    # (the profiling runs use this build: never the control's)
    if [ "$PROFILE$ALLOC" != 00 ] && [ "$variant" != control ] && [ "${RES[$name]}" -gt 0 ]; then PROFILES+=("$name|$cfg|${RES[$name]}|AUTH=sqlite"); fi
  done
}

# ---------------------------------------------------------------- mongodb pairing
tcp_listening() {  # is anything listening on TCP port $1 (any address)?
  awk -v h="$(printf ':%04X' "$1")" 'FNR > 1 && $4 == "0A" && substr($2, length($2) - 4) == h { f = 1 }
    END { exit !f }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}
# mongo_prepare URL: collection location of the URL's database in Kamailio's layout (the version
# documents Kamailio's usrloc checks and the indexes: sipflow's own MongoDB store writes them on first
# use, as in test/integration/location/kamailio-written.test.ts), then emptied
mongo_prepare() {
  timeout 60 node -e '
    const [url, repo] = process.argv.slice(1);
    const { MongoClient } = require(repo + "/node_modules/mongodb");
    const { createMongoLocationStore } = require(repo + "/dist/services/location/mongo.js");
    (async () => {
      const store = createMongoLocationStore({ url });
      await store.count(new Date());
      await store.close();
      const client = new MongoClient(url, { serverSelectionTimeoutMS: 5000 });
      try { await client.db().collection("location").deleteMany({}); } finally { await client.close(); }
    })().catch((e) => { console.error("preparing " + url + ": " + e.message); process.exit(1); });
  ' "$1" "$REPO"
}
# ferret_gin PSQL… : GIN (jsonb_path_ops) expression indexes on ruid and username of the tables behind
# kamailio.location and sipflow.location. FerretDB 1.24 (PostgreSQL backend) filters a field other
# than _id with `_jsonb->'f' @> $1`, which its own btree indexes on (_jsonb->'f') cannot serve (a
# sequential scan per find, update or replace); PostgreSQL serves @> from these. FERRET_GIN=0: none.
ferret_gin() {
  [ "${FERRET_GIN:-1}" = 1 ] || { log "FERRET_GIN=0: FerretDB's own indexes only (every find by ruid or username scans the collection)"; return 0; }
  local db table field
  for db in kamailio sipflow; do
    table=$("$@" -U kamailio -d ferretdb -Atc "SELECT _jsonb->>'table' FROM \"$db\"._ferretdb_database_metadata WHERE _jsonb->>'_id' = 'location'")
    [ -n "$table" ] || { log "no FerretDB table behind $db.location"; return 1; }
    for field in ruid username; do
      "$@" -U kamailio -d ferretdb -c "SET client_min_messages = warning" -c "CREATE INDEX IF NOT EXISTS ${table}_${field}_gin ON \"$db\".\"$table\" USING gin ((_jsonb->'$field') jsonb_path_ops)"
    done
    "$@" -U kamailio -d ferretdb -c "ANALYZE \"$db\".\"$table\""
  done
}
FERRET_NOTE=""
run_mongodb() {
  log "== mongodb: Kamailio auth_db on PostgreSQL + usrloc on db_mongodb db_mode 1 (8 children) vs sipflow directory on PostgreSQL + location on the same MongoDB-protocol server, write-through"
  pg_directory || return 1
  local port=$PG_PORT_NOW
  local psql=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port")
  [ -e /usr/lib/x86_64-linux-gnu/kamailio/modules/db_mongodb.so ] || [ "$SKIP_KAM" = 1 ] || {
    apt-get update > /dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y kamailio-mongodb-modules > /dev/null; }
  # FerretDB on its PostgreSQL backend, database "ferretdb" of the bench's cluster
  local bin=${FERRET_BIN:-}
  if [ -z "$bin" ]; then
    bin=$(bash "$REPO/scripts/test-servers/ferretdb.sh" 2> "$WORK/ferretdb-build.log") \
      || { log "mongodb: no FerretDB binary (scripts/test-servers/ferretdb.sh failed, $WORK/ferretdb-build.log): pairing not run"; return 0; }
  fi
  if [ "$("${psql[@]}" -U postgres -d postgres -Atc "SELECT count(*) FROM pg_database WHERE datname = 'ferretdb'")" = 0 ]; then
    "${psql[@]}" -U postgres -d postgres -c "CREATE DATABASE ferretdb OWNER kamailio"
  fi
  # FerretDB's pool of PostgreSQL connections (pool_max_conns in its URL; FerretDB's default is 50): see
  # the header (mongodb) for why it is raised to what the cluster allows
  local maxconn pool
  maxconn=$("${psql[@]}" -U postgres -d postgres -Atc "SHOW max_connections")
  pool=${FERRET_POOL:-$((maxconn - 50))}
  [ "$pool" -ge 2010 ] || log "warning: FerretDB's pool is $pool PostgreSQL connections (the cluster's max_connections is $maxconn; a cluster this run starts allows 2100): below 2,010, sipflow's batched upserts can deadlock FerretDB 1.24 (see mongodb in the header)"
  local fport=${FERRET_PORT:-$((SIP_PORT + 22000))}
  while tcp_listening "$fport"; do fport=$((fport + 1)); done
  mkdir -p "$WORK/ferretdb"
  "$bin" --handler=postgresql --postgresql-url="postgres://kamailio@127.0.0.1:$port/ferretdb?pool_max_conns=$pool" --state-dir="$WORK/ferretdb" \
    --listen-addr="127.0.0.1:$fport" --debug-addr=- --telemetry=disable --log-level=warn > "$WORK/ferretdb/ferretdb.log" 2>&1 &
  FERRET_PID=$!
  for _ in $(seq 1 200); do
    tcp_listening "$fport" && break
    kill -0 "$FERRET_PID" 2> /dev/null || { log "FerretDB exited at start: $(tail -5 "$WORK/ferretdb/ferretdb.log")"; FERRET_PID=""; return 1; }
    sleep 0.1
  done
  tcp_listening "$fport" || { log "FerretDB is not listening on 127.0.0.1:$fport after 20 s"; ferret_stop; return 1; }
  FERRET_NOTE="FerretDB $("$bin" --version 2> /dev/null | sed -n 's/^version: //p' | head -1) on PostgreSQL 15 (database ferretdb of the bench's cluster, pool_max_conns $pool of max_connections $maxconn), 127.0.0.1:$fport"
  log "$FERRET_NOTE, PID $FERRET_PID"
  local kam_url="mongodb://127.0.0.1:$fport/kamailio" sf_url="mongodb://127.0.0.1:$fport/sipflow"
  { mongo_prepare "$kam_url" && mongo_prepare "$sf_url" && ferret_gin "${psql[@]}"; } || { log "mongodb: preparing the collections failed"; return 1; }
  # the fill (unmeasured, see mongodb in the header): every user registers once, at 300 calls/s, which
  # also grows FerretDB's pool of PostgreSQL sessions (about 22 ms each while it grows) before the ladder
  local fill_s=$(( (NUSERS + 299) / 300 ))
  if [ "$SKIP_KAM" = 0 ]; then
    rm -f "$WORK/kamailio.pid"
    KAM_KEPT=1
    local kam=(AUTH=pgsql CHILDREN=8 USRLOC_MONGO="$kam_url" KEEP_RUNNING=1 FERRET_PID="$FERRET_PID")
    DUR=$fill_s RETRY=0 step "kamailio-mongodb+fill" 300 "${kam[@]}" || true
    ladder kamailio-mongodb 500 "$RATES_MONGODB" kam_ok "${kam[@]}" || true
    record kamailio-mongodb
    overload kamailio-mongodb kam_ok "${kam[@]}"
    kam_kept_stop
  fi
  # with --control-dist the other build first, each on a collection emptied for it and with its own fill
  local variant name cfg
  for variant in ${CONTROL_MAIN:+control} build; do
    name=sipflow-mongodb; SF_MAIN=""
    [ "$variant" = build ] || { name=sipflow-mongodb-control; SF_MAIN=$CONTROL_MAIN; }
    cfg=$WORK/$name.yaml
    sf_config "$cfg" "$WORK/$name-data" "$WORK/flows/pbx.slid" "{ url: \"postgres://kamailio@127.0.0.1:$port/sipflow\" }" \
      "{ url: \"$sf_url\", mode: write-through, ${MONGO_WRITE_BATCH:+writeBatch: $MONGO_WRITE_BATCH, }${MONGO_WRITES_IN_FLIGHT:+writesInFlight: $MONGO_WRITES_IN_FLIGHT, }refreshSec: ${MONGO_REFRESH_SEC:-3600} }"
    # sipflow starts on an empty collection (write-through loads it at start); the shared directory
    # database's flows store emptied, as for the persistent pairing
    mongo_prepare "$sf_url" || return 1
    flows_reset
    SF_LOG=$WORK/$name.log
    start_sipflow "$cfg" "$SF_LOG" || { log "$name did not start"; return 1; }
    log "$name: processes $SF_PIDS"
    local sf=(SERVER=external AUTH=pgsql SERVER_PIDS="$SF_PIDS" USRLOC_MONGO="$sf_url" KEEP_RUNNING=1 FERRET_PID="$FERRET_PID")
    DUR=$fill_s RETRY=0 step "$name+fill" 300 "${sf[@]}" || true
    ladder "$name" 500 "$RATES_MONGODB" sf_ok "${sf[@]}" || true
    record "$name"
    overload "$name" sf_ok "${sf[@]}"
    stop_sipflow
    SF_MAIN=""
  done
  # FerretDB stopped now: its pool keeps hundreds of idle PostgreSQL sessions that the pairings after
  # this one would run beside. (No profiling run for this pairing: sipflow mostly waits on FerretDB.)
  ferret_stop
}

# ---------------------------------------------------------------- floor pairing
floor_ok() { kill -0 "$FLOOR_PID" 2>/dev/null || { log "the floor exited during its ladder ($WORK/floor.log)"; return 1; }; }
run_floor() {
  log "== floor: bench/sip/floor.ts, a Node 20 digest registrar with nothing of sipflow in it (one thread), against the memory pairing's Kamailio"
  local logf=$WORK/floor.log
  node "$REPO/dist/bench/sip/floor.js" --port "$SIP_PORT" --customers "$WORK/customers.csv" > "$logf" 2>&1 &
  FLOOR_PID=$!
  for _ in $(seq 1 50); do grep -q listening "$logf" 2>/dev/null && break; floor_ok || return 1; sleep 0.2; done
  grep -q listening "$logf" || { log "the floor did not start ($logf)"; floor_stop; return 1; }
  ladder node-floor "$KAM_START" "$RATES_FLOOR" floor_ok SERVER=external AUTH=sqlite SERVER_PIDS="$FLOOR_PID" || true
  record node-floor
  floor_stop
}

# ---------------------------------------------------------------- embedded pairing
run_embedded() {
  log "== embedded: sipflow as npm start ships it (configuration defaults, embedded PGlite directory), no Kamailio counterpart: compared with sipflow-pgsql"
  # with --control-dist the other build first, as shipped by it (its own defaults), on a directory it imported
  local variant
  for variant in ${CONTROL_MAIN:+control} build; do
    if [ "$variant" = build ]; then SF_MAIN=""; embedded_variant sipflow-embedded
    else SF_MAIN=$CONTROL_MAIN; embedded_variant sipflow-embedded-control; fi
  done
}
embedded_variant() {  # embedded_variant NAME: the build SF_MAIN names (empty: this one), as start_sipflow runs it
  local name=$1 main=${SF_MAIN:-$REPO/dist/cli/main.js}
  local base=$WORK/$name-base data=$WORK/$name-data
  # kept between runs only for the same build (another build's migrations may be missing from it)
  if [ "$(cat "$base/users.n" 2>/dev/null)" != "$NUSERS" ] || [ "$(cat "$base/main" 2>/dev/null)" != "$main" ] || [ "$main" -nt "$base/users.n" ]; then
    log "provisioning $NUSERS customers into the embedded directory of a fresh dataDir (sipflow import, $name)"
    rm -rf "$base"; mkdir -p "$base"
    node "$main" import --customers "$WORK/customers.csv" --directory-url "$base/directory" >&2
    echo "$NUSERS" > "$base/users.n"; echo "$main" > "$base/main"
  fi
  # a fresh copy per run: no bindings, the shipped flows imported by this start
  rm -rf "$data"; cp -a "$base" "$data"
  local cfg=$WORK/$name.yaml
  # only what the bench needs; everything else (flows, directory, location, workers, caches, …) is the default
  # the shipped listener is UDP and TCP on one port: so here over UDP, the transport of the run otherwise
  local listeners="[{ transport: $TRANSPORT, host: 127.0.0.1, port: $SIP_PORT }]"
  [ "$TRANSPORT" != udp ] || listeners="[{ name: default, transport: udp, host: 127.0.0.1, port: $SIP_PORT }, { name: default, transport: tcp, host: 127.0.0.1, port: $SIP_PORT }]"
  cat > "$cfg" <<EOF
dataDir: $data
sip:
  listeners: $listeners
$SF_TLS
http: { port: $((SIP_PORT + 10)) }
log: { level: warn }
security: { trustedSources: [127.0.0.1] }
$SF_REG
EOF
  SF_LOG=$WORK/$name.log
  start_sipflow "$cfg" "$SF_LOG" || return 1
  log "sipflow (embedded, $name): processes $SF_PIDS"
  # priming (unmeasured), as the memory pairing's: every user registers twice at 1000/s, so whatever the
  # defaults cache (the directory's cacheSec, write-through bindings) holds every user, and the ladder
  # measures the steady state rather than first-time misses on PGlite
  DUR=$(( 2 * NUSERS / 1000 )) RETRY=0 step "$name+priming" 1000 SERVER=external AUTH=sqlite SERVER_PIDS="$SF_PIDS" WARMUP_CALLS=0 || true
  ladder "$name" 500 "$RATES_EMBEDDED" sf_ok SERVER=external AUTH=sqlite SERVER_PIDS="$SF_PIDS" || true
  record "$name"
  overload "$name" sf_ok SERVER=external AUTH=sqlite SERVER_PIDS="$SF_PIDS"
  stop_sipflow
  if [ "$name" = sipflow-embedded ] && [ "$PROFILE$ALLOC" != 00 ] && [ "${RES[sipflow-embedded]}" -gt 0 ]; then
    PROFILES+=("sipflow-embedded|$cfg|${RES[sipflow-embedded]}|AUTH=sqlite")
  fi
}

# ---------------------------------------------------------------- invite pairing
CDRS_NOTE=""
run_invite() {
  local inv=$HERE/invite
  # the cluster: the kit starts it (provisioning its subscriber table, unused here) when no pairing did
  [ -n "$(pg_port)" ] || AUTH=pgsql SERVER=external PG_KEEP=1 PG_ONLY=1 "$KIT/run.sh" > /dev/null
  local port; port=$(pg_port)
  [ -n "$port" ] || { log "PostgreSQL cluster is not running ($PG_DATA)"; return 1; }
  local psql=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port")
  # Kamailio's acc table (its own acc-create.sql) with the default kamailio.cfg's db_extra columns
  if [ "$("${psql[@]}" -U kamailio -d kamailio -Atc "SELECT to_regclass('acc') IS NOT NULL")" != t ]; then
    "${psql[@]}" -U kamailio -d kamailio -f /usr/share/kamailio/postgres/acc-create.sql
    local t
    for t in acc missed_calls; do
      "${psql[@]}" -U kamailio -d kamailio -c "ALTER TABLE $t ADD COLUMN src_user VARCHAR(64) NOT NULL DEFAULT '',
        ADD COLUMN src_domain VARCHAR(128) NOT NULL DEFAULT '', ADD COLUMN src_ip VARCHAR(64) NOT NULL DEFAULT '',
        ADD COLUMN dst_ouser VARCHAR(64) NOT NULL DEFAULT '', ADD COLUMN dst_user VARCHAR(64) NOT NULL DEFAULT '',
        ADD COLUMN dst_domain VARCHAR(128) NOT NULL DEFAULT ''"
    done
  fi
  # sipflow's directory database (its CDR table lives there), on the same server
  if [ "$("${psql[@]}" -U postgres -d postgres -Atc "SELECT count(*) FROM pg_database WHERE datname = 'sipflow'")" = 0 ]; then
    "${psql[@]}" -U postgres -d postgres -c "CREATE DATABASE sipflow OWNER kamailio"
  fi
  local cdrs accounting=""
  if "${SIPFLOW[@]}" docs config 2> /dev/null | grep -q '`accounting.enabled`'; then
    cdrs="CDRs: on (accounting.enabled, accounting.database: table cdrs of database sipflow)"
    accounting="accounting: { enabled: true, database: true }"
  else
    cdrs="CDRs: off (accounting not built)"
  fi
  CDRS_NOTE=$cdrs
  log "== invite: Kamailio record_route + t_relay + acc on PostgreSQL (8 children) vs sipflow relay.slid, record-route, $cdrs"
  STEP_SCRIPT=$inv/run.sh
  if [ "$SKIP_KAM" = 0 ]; then
    ladder kamailio-invite 1000 "$RATES_INVITE" kam_ok SERVER=kamailio CHILDREN=8 HOLD_MS="$HOLD_MS" || true
    record kamailio-invite
    if [ "$INVITE_CONTROL" = 1 ]; then
      ladder kamailio-invite-noacc 1000 "$RATES_INVITE" kam_ok SERVER=kamailio CHILDREN=8 HOLD_MS="$HOLD_MS" ACC=0 || true
      record kamailio-invite-noacc
    fi
  fi
  # the flow with the UAS's address
  node -e '
    const fs = require("fs");
    const [src, dst, uas] = process.argv.slice(1);
    const slid = JSON.parse(fs.readFileSync(src, "utf8"));
    let n = 0;
    for (const logic of Object.values(slid))
      for (const node of Object.values(logic.nodes))
        for (const v of node.values.variables ?? []) if (v.variable === "uasAddress") { v.value = uas; n++; }
    if (n !== 1) { console.error("no uasAddress setting in " + src); process.exit(1); }
    fs.writeFileSync(dst, JSON.stringify(slid, null, 2));
  ' "$inv/relay.slid" "$WORK/flows/invite-relay.slid" "127.0.0.1:$UAS_PORT"
  flows_reset
  local cfg=$WORK/sipflow-invite.yaml
  cat > "$cfg" <<EOF2
dataDir: $WORK/sipflow-invite-data
flows: $WORK/flows/invite-relay.slid
defaultLogic: bench relay
sip:
  listeners: [{ transport: udp, host: 127.0.0.1, port: $SIP_PORT }]
  domain: example.test
  recordRoute: true
  workers: $WORKERS
directory: { url: "postgres://kamailio@127.0.0.1:$port/sipflow" }
location: { url: memory }
http: { enabled: false }
log: { level: warn }
security: { trustedSources: [127.0.0.1] }
$accounting
EOF2
  # the accounting keys are another part's: when this build rejects their shape, say so and measure
  # without records rather than not at all (the table then says CDRs: off and why)
  if [ -n "$accounting" ] && ! "${SIPFLOW[@]}" config check "$cfg" > "$WORK/sipflow-invite-check.txt" 2>&1; then
    log "sipflow rejects the bench's accounting keys ($accounting):"; log "$(cat "$WORK/sipflow-invite-check.txt")"
    sed -i '/^accounting:/d' "$cfg"
    CDRS_NOTE="CDRs: off (sipflow rejected '$accounting', see $WORK/sipflow-invite-check.txt)"
    log "$CDRS_NOTE"
  fi
  SF_LOG=$WORK/sipflow-invite.log
  start_sipflow "$cfg" "$SF_LOG"
  log "sipflow (invite): processes $SF_PIDS"
  ladder sipflow-invite 500 "$RATES_INVITE" sf_ok SERVER=external SERVER_PIDS="$SF_PIDS" CDR_DB=sipflow HOLD_MS="$HOLD_MS" || true
  record sipflow-invite
  stop_sipflow
  STEP_SCRIPT=$KIT/run.sh
}

for p in $PAIRINGS; do
  case $p in persistent) run_persistent ;; memory) run_memory ;; floor) run_floor || true ;; mongodb) run_mongodb || log "mongodb pairing stopped (see above)" ;; embedded) run_embedded ;; invite) run_invite ;; esac
done

# ---------------------------------------------------------------- profiles
if [ ${#PROFILES[@]} -gt 0 ]; then
  for entry in "${PROFILES[@]}"; do
    IFS='|' read -r name cfg rate authenv <<< "$entry"
    # warm-up: 1000 calls at 500/s as in the ladder; the cached variant first registers every user
    # once, so the profile shows its steady state (cache filled) rather than first-time misses
    wcalls=1000 wrate=500
    if [ "$name" = sipflow-memory-cached ]; then wcalls=$NUSERS; wrate=$(( rate < 1000 ? rate : 1000 )); fi
    if [ "$PROFILE" = 1 ]; then
      pdir=$WORK/prof/$name-$STAMP
      rm -rf "$pdir"; mkdir -p "$pdir"
      SF_LOG=$WORK/$name-prof.log
      # by now the invite pairing's relay logic is the active flows of database sipflow: without this
      # the profiled REGISTERs went to the relay and none was answered (docs/benchmarks.md, 17:45)
      [ "$name" != sipflow-pgsql ] || ! pg_directory || flows_reset
      t_spawn=$(date +%s.%N)
      start_sipflow "$cfg" "$SF_LOG" --cpu-prof --cpu-prof-dir="$pdir"
      RETRY=0 step "$name+cpu-prof" "$rate" SERVER=external "$authenv" SERVER_PIDS="$SF_PIDS" WARMUP_CALLS=$wcalls WARMUP_RATE=$wrate || true
      stop_sipflow
      # count from the measured SIPp run on: skip start-up and the warm-up (+ 1 s pause, + margin)
      from_ms=$(awk -v a="$t_spawn" -v b="$STEP_T0" -v w="$(( wcalls * 1000 / wrate ))" 'BEGIN { printf "%d", (b - a) * 1000 + w + 1500 }')
      log ""
      log "== profile: $name at $rate calls/s under node --cpu-prof (profiles in $pdir; measured run only)"
      if ls "$pdir"/*.cpuprofile > /dev/null 2>&1; then
        node "$REPO/dist/bench/sip/profile-summary.js" --top 25 --from-ms "$from_ms" "$pdir" | tee -a "$REPORT" >&2
      else
        log "(no .cpuprofile written: sipflow did not exit cleanly)"
      fi
    fi
    if [ "$ALLOC" = 1 ]; then
      acfg=$WORK/$name-alloc.yaml
      mkdir -p "$WORK/prof"
      # sip.workers 1: the inspector samples one thread, which then handles every message
      if grep -q '^  workers:' "$cfg"; then sed 's/^  workers: .*/  workers: 1/' "$cfg"; else sed '/^sip:$/a\  workers: 1' "$cfg"; fi > "$acfg"
      SF_LOG=$WORK/$name-alloc.log
      start_sipflow "$acfg" "$SF_LOG" --inspect="127.0.0.1:$INSPECT_PORT"
      arate=$(( rate < ALLOC_RATE ? rate : ALLOC_RATE ))
      # every user registers once first, in every variant: a directory cache then holds them all and
      # the sample shows the steady state, not the cache filling (the PGlite directory's queries)
      wcalls=$NUSERS wrate=$(( rate < 1000 ? rate : 1000 ))
      # sampled from about 3 s into the measured load (after the warm-up and the kit's 1 s pause) to about 1 s before its end
      node "$REPO/dist/bench/sip/alloc-profile.js" --inspect "127.0.0.1:$INSPECT_PORT" --after $(( wcalls / wrate + 4 )) \
        --seconds $(( DUR * 2 - 4 )) --calls-per-second "$arate" --save "$WORK/prof/$name-$STAMP.heapprofile" > "$WORK/$name-alloc.txt" 2>&1 &
      apid=$!
      DUR=$(( DUR * 2 )) RETRY=0 step "$name+alloc" "$arate" SERVER=external "$authenv" SERVER_PIDS="$SF_PIDS" WARMUP_CALLS=$wcalls WARMUP_RATE=$wrate || true
      wait $apid || true
      stop_sipflow
      log ""
      log "== allocations: $name at $arate calls/s offered, every message in the main thread (sip.workers 1; per call at the offered rate: compare achieved_cps of its step line; profile $WORK/prof/$name-$STAMP.heapprofile)"
      tee -a "$REPORT" < "$WORK/$name-alloc.txt" >&2
    fi
  done
fi

# ---------------------------------------------------------------- summary
ratio() { [ "${1:-0}" -gt 0 ] && [ "${2:-0}" -gt 0 ] && awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }' || echo "n/a"; }
per_call() { awk -v p="$1" -v r="$2" 'BEGIN { if (p ~ /^[0-9.]+$/ && r + 0 > 0) printf "%.3f", 10 * p / r; else print "" }'; }
# srow PAIRING NAME REF TARGET: one registrar's row of the summary table (nothing when it did not run):
# best, achieved at best, ratio = best / REF's best (none when NAME is REF), CPU at the best step in %
# of a core and in core-ms per achieved call, and goodput / best of each overload step
srow() {
  local r=${RES[$2]:-} line=${RLINE[$2]:-} a f v rate gp ovl="" rat=""
  [ -n "$r" ] || return 0
  a=$(kv "$line" achieved_cps)
  [ "$2" = "$3" ] || rat=$(ratio "$r" "${RES[$3]:-0}")
  for f in ${OVERLOAD_FACTORS//,/ }; do
    v=${OVL[$2|$f]:-}
    if [ -z "$v" ]; then ovl+=$(printf ' %6s' -); continue; fi
    read -r rate gp _ <<< "$v"
    if [ "$gp" = error ]; then ovl+=$(printf ' %6s' err); else ovl+=$(printf ' %6s' "$(awk -v g="$gp" -v b="$r" 'BEGIN { printf "%.2f", g / b }')"); fi
  done
  local low="" lline=${LOWLINE[$2]:-}
  [ -z "$lline" ] || low=$(awk -v l="$(per_call "$(kv "$lline" srv_cpu_pct)" "$(kv "$lline" achieved_cps)")" \
    -v b="$(per_call "$(kv "$line" srv_cpu_pct)" "$a")" 'BEGIN { if (l > 0 && b > 0) printf "%.2f", l / b }')
  printf '%-10s %-24s %6s %8s %6s %-7s %6s %6s %6s %6s %7s %7s %7s %8s%s\n' "$1" "$2" "$r" "$a" "$rat" "$4" \
    "$(kv "$line" srv_cpu_pct)" "$(kv "$line" sipp_cpu_pct)" "$(kv "$line" db_cpu_pct)" "$(kv "$line" ferret_cpu_pct)" \
    "$(per_call "$(kv "$line" srv_cpu_pct)" "$a")" "$(per_call "$(kv "$line" db_cpu_pct)" "$a")" "$(per_call "$(kv "$line" ferret_cpu_pct)" "$a")" "${low:--}" "$ovl"
}
overload_row() {  # overload_row PAIRING NAME TARGET
  local best=${RES[$2]:-} f v rate gp rt srv sipp out=""
  [ -n "$best" ] || return 0
  for f in ${OVERLOAD_FACTORS//,/ }; do
    v=${OVL[$2|$f]:-}
    if [ -z "$v" ]; then out+=$(printf '%6s %-36s' "${f}x:" "not run"); continue; fi
    read -r rate gp rt srv sipp <<< "$v"
    if [ "$gp" = error ]; then out+=$(printf '%6s %-60s' "${f}x:" "$rate/s offered, step failed to run"); continue; fi
    out+=$(printf '%6s %-60s' "${f}x:" "$(awk -v r="$rate" -v g="$gp" -v b="$best" -v t="$rt" -v c="$srv" -v p="$sipp" \
      'BEGIN { printf "%d/s -> %.0f/s (%.2f of best, %s retr, cpu %s%% + SIPp %s%%)", r, g, g / b, t, c, p }')")
  done
  printf '%-10s %-24s %8s %7s %s\n' "$1" "$2" "$best" "$3" "${out%"${out##*[! ]}"}"
}
REG_NAMES="kamailio-pgsql sipflow-pgsql kamailio-sqlite sipflow-memory sipflow-memory-cached sipflow-memory-history sipflow-memory-cached-history sipflow-memory-control sipflow-pgsql-control kamailio-mongodb sipflow-mongodb sipflow-mongodb-control sipflow-embedded sipflow-embedded-control"
{
  echo ""
  drv="SIPp -t u1"
  [ "$TRANSPORT" = tcp ] && drv="tls-register.ts, $CONNECTIONS TCP connections"
  [ "$TRANSPORT" = tcp ] && [ "$LOAD" = sipp ] && drv="SIPp -t tn, one TCP connection per call"
  [ "$TRANSPORT" = tls ] && drv="tls-register.ts, $CONNECTIONS TLS connections"
  ovl_head=""
  for f in ${OVERLOAD_FACTORS//,/ }; do ovl_head+=$(printf ' %6s' "${f}x"); done
  echo "== bench:sip summary ($(date -u +%FT%TZ), $(( $(date +%s) - T_START )) s, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)): $NUSERS users, ${DUR} s per step"
  echo "REGISTER + digest auth over $TRANSPORT ($drv); invite: SIPp UAC -> proxy -> SIPp UAS over UDP (${HOLD_MS} ms between ACK and BYE), records to PostgreSQL"
  echo "best = highest rate (calls/s) with 0 failed calls, 0 retransmissions, no answer after 500 ms or more; achieved = its achieved_cps"
  echo "ratio = sipflow / the Kamailio of its pairing; embedded: sipflow-embedded / sipflow-pgsql (as shipped against the persistent setup)"
  echo "cpu in % of one core at the best step: srv = the registrar's processes, db = PostgreSQL's, fdb = FerretDB's; ms/c = core-ms per call there"
  echo "$(echo "$ovl_head" | sed 's/^ *//; s/  */, /g'): overload goodput / best, ${OVERLOAD_S} s offered at that multiple of best after the ladder (sipflow's target >= 0.90; - = not run)"
  echo "low/best: srv_ms/c at ${LOW_RATE} calls/s over srv_ms/c at the best step (target for sipflow <= 1.5; Kamailio's is the same measure on this machine; - = no passed step at ${LOW_RATE})"
  printf '%-10s %-24s %6s %8s %6s %-7s %6s %6s %6s %6s %7s %7s %7s %8s%s\n' pairing registrar best achieved ratio target srv_cpu sipp \
    db_cpu fdb_cpu srv_ms/c db_ms/c fdb_ms/c low/best "$ovl_head"
  srow persistent kamailio-pgsql kamailio-pgsql ""
  srow persistent sipflow-pgsql kamailio-pgsql ">=2.0"
  srow persistent sipflow-pgsql-control kamailio-pgsql ""
  srow memory kamailio-sqlite kamailio-sqlite ""
  srow memory sipflow-memory kamailio-sqlite ">=1.0"
  srow memory sipflow-memory-cached kamailio-sqlite ">=1.0"
  srow memory sipflow-memory-history kamailio-sqlite ""
  srow memory sipflow-memory-cached-history kamailio-sqlite ""
  srow memory sipflow-memory-control kamailio-sqlite ""
  srow floor node-floor kamailio-sqlite ""
  srow mongodb kamailio-mongodb kamailio-mongodb ""
  srow mongodb sipflow-mongodb kamailio-mongodb ">=1.0"
  srow mongodb sipflow-mongodb-control kamailio-mongodb ""
  srow embedded sipflow-embedded sipflow-pgsql ">=1.0"
  srow embedded sipflow-embedded-control sipflow-pgsql ""
  srow invite kamailio-invite kamailio-invite ""
  srow invite sipflow-invite kamailio-invite ">=1.0"
  srow invite kamailio-invite-noacc kamailio-invite-noacc ""
  if [ -n "${RES[sipflow-memory-history]:-}" ] && [ -n "${RES[sipflow-memory]:-}" ]; then
    printf '%-10s %-24s %6s %8s %6s %-7s\n' memory "history all / off" "" "" "$(ratio "${RES[sipflow-memory-history]}" "${RES[sipflow-memory]}")" ">=0.85"
  fi
  for pn in persistent:sipflow-pgsql memory:sipflow-memory mongodb:sipflow-mongodb embedded:sipflow-embedded; do
    n=${pn#*:}
    [ -n "${RES[$n-control]:-}" ] && [ -n "${RES[$n]:-}" ] || continue
    printf '%-10s %-24s %6s %8s %6s %-7s\n' "${pn%%:*}" "this build / control" "" "" "$(ratio "${RES[$n]}" "${RES[$n-control]}")" "~1.0"
  done
  if [ -n "${RES[node-floor]:-}" ]; then
    for n in sipflow-memory sipflow-memory-cached kamailio-sqlite; do
      [ -n "${RES[$n]:-}" ] || continue
      printf '%-10s %-24s %s\n' floor "$n / floor" "srv_ms/c $(awk -v a="$(per_call "$(kv "${RLINE[$n]}" srv_cpu_pct)" "$(kv "${RLINE[$n]}" achieved_cps)")" \
        -v b="$(per_call "$(kv "${RLINE[node-floor]}" srv_cpu_pct)" "$(kv "${RLINE[node-floor]}" achieved_cps)")" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else print "n/a" }') at each one's best"
    done
  fi
  if [ -n "${RES[kamailio-invite-noacc]:-}" ]; then
    printf '%-10s %-24s %6s %8s %6s\n' invite "sipflow / no-acc" "" "" "$(ratio "${RES[sipflow-invite]:-0}" "${RES[kamailio-invite-noacc]}")"
  fi
  [ -z "${RES[sipflow-embedded]:-}" ] || [ -n "${RES[sipflow-pgsql]:-}" ] \
    || echo "(embedded: no sipflow-pgsql in this run, so no ratio: --pairing all, or --pairing persistent,embedded)"
  [ -z "$FERRET_NOTE" ] || echo "mongodb: $FERRET_NOTE; GIN indexes on ruid and username: $([ "${FERRET_GIN:-1}" = 1 ] && echo yes || echo no, FERRET_GIN=0)"
  if [ "$OVERLOAD" = 1 ]; then
    echo "overload steps (invite: none): offered/s -> goodput/s = achieved_cps (successful calls / elapsed_s of the SIPp run); retr = SIPp retransmissions"
    for n in $REG_NAMES; do
      case $n in *pgsql|*pgsql-control) p=persistent ;; *sqlite|*memory*) p=memory ;; *mongodb|*mongodb-control) p=mongodb ;; *) p=embedded ;; esac
      t=""; [ "$n" = "${n#sipflow}" ] || [ "$n" != "${n%-control}" ] || t=">=0.90"
      overload_row "$p" "$n" "$t"
    done
  fi
  if [ -n "${RES[kamailio-invite]:-}${RES[sipflow-invite]:-}" ]; then
    rec_k=—; [ -z "${RLINE[kamailio-invite]:-}" ] || rec_k="$(kv "${RLINE[kamailio-invite]}" cdr_rows) (acc)"
    rec_s=—; [ -z "${RLINE[sipflow-invite]:-}" ] || rec_s="$(kv "${RLINE[sipflow-invite]}" cdr_rows) (cdrs)"
    echo "invite: $CDRS_NOTE; records the proxy wrote for its best step's calls: Kamailio $rec_k, sipflow $rec_s"
  fi
  # why a TLS ratio may be missing: Debian 12's Kamailio 5.6.3 tls module with OpenSSL 3 corrupts
  # its shared memory under load and aborts (kamailio/kamailio#3791; tls_threads_mode, the fix, is
  # not a parameter of 5.6.3)
  if [ "$TRANSPORT" = tls ] && grep -qs -e 'tail overwritten' -e 'beginning overwritten' -e 'freeing already freed' "$WORK"/kamailio*.log; then
    echo "note: Kamailio's tls module crashed during this run (shared memory corruption with OpenSSL 3, kamailio/kamailio#3791; see $WORK/kamailio.log): its TLS figures, and so the ratio, are not comparable"
  fi
  echo "steps: $STEPS_LOG   report: $REPORT"
} | tee -a "$REPORT"

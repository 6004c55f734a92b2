#!/usr/bin/env bash
# One step of bench/sip's INVITE pairing: SIPp UAC (uac.xml) → the proxy under test → SIPp UAS
# (uas.xml), INVITE/180/200/ACK/BYE, and one summary line in the REGISTER kit's format
# (bench/sip/kamailio/run.sh), so bench/sip/run.sh ladders it the same way.
#
# usage: run.sh RATE CALLS
# environment:
#   SERVER=kamailio   start Kamailio (kamailio.cfg beside this file: record_route, t_relay to the UAS,
#                     acc to table acc of database kamailio) for this step and stop it after; or
#                     SERVER=external: load TARGET (sipflow, started by the caller) whose processes are
#                     SERVER_PIDS (CPU sampled)
#   TARGET=127.0.0.1:5170   the proxy;  SIPP_PORT=5171  the UAC's port;  UAS_PORT=5172  the UAS's port
#   CHILDREN=8        Kamailio's UDP worker processes
#   ACC=1             0: Kamailio without accounting (-A WITHOUT_ACC: the same relay, no acc rows)
#   HOLD_MS=100       time between ACK and BYE (SIPp -d)
#   RECV_TIMEOUT_MS=10000  a call waiting longer for its next message fails (bounds a collapsing step)
#   UAS_EXTRA=""      extra arguments of the UAS SIPp (e.g. -trace_err)
#   WARMUP_CALLS=1000 WARMUP_RATE=500   unmeasured warm-up (0 = none)
#   SIPP_EXTRA, RUN_TIMEOUT_S           as the kit (bench/sip/run.sh passes a -timeout)
#   WORK, PG_BIN, PGROOT=$WORK/pg       the bench's PostgreSQL cluster, which must be running
#                     (bench/sip/run.sh starts it); Kamailio's acc table must exist in database kamailio
#   CDR_DB=sipflow    (SERVER=external) database holding sipflow's CDR table (a table named cdrs, any
#                     schema); unset or no such table: cdr_rows=NA
# Summary line: rate_target achieved_cps failed retrans steady_cps successful calls elapsed_s
#   srv_cpu_pct sipp_cpu_pct (UAC + UAS) db_cpu_pct rt_avg_ms (INVITE → 200) slow (200 after ≥ 500 ms)
#   uac_failed uac_retrans uas_failed uas_retrans cdr_rows (records the proxy wrote for the measured
#   calls: Kamailio's acc rows, two per call; sipflow's cdrs rows, one per call) server=…
#   failed and retrans are UAC + UAS.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
RATE=${1:?rate}
CALLS=${2:?calls}
WORK=${WORK:-/tmp/sipflow-bench-sip}
SERVER=${SERVER:-kamailio}
TARGET=${TARGET:-127.0.0.1:5170}
SIPP_PORT=${SIPP_PORT:-5171}
UAS_PORT=${UAS_PORT:-5172}
CHILDREN=${CHILDREN:-8}
HOLD_MS=${HOLD_MS:-100}
# a call (UAC or UAS) waiting longer than this for its next message fails (SIPp -recv_timeout)
RECV_TIMEOUT_MS=${RECV_TIMEOUT_MS:-10000}
SIPP_EXTRA=${SIPP_EXTRA:-}
SIPP_BUFF=${SIPP_BUFF:-4194304}
WARMUP_CALLS=${WARMUP_CALLS:-1000}
WARMUP_RATE=${WARMUP_RATE:-500}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PGROOT=${PGROOT:-$WORK/pg}
CDR_DB=${CDR_DB:-}
case "$TARGET" in 127.0.0.1:*) ;; *) echo "TARGET must be on 127.0.0.1" >&2; exit 2 ;; esac

PG_PORT=$(sed -n 4p "$PGROOT/data/postmaster.pid" 2>/dev/null || true)
PG_PID=$(sed -n 1p "$PGROOT/data/postmaster.pid" 2>/dev/null || true)
[ -n "$PG_PORT" ] && kill -0 "$PG_PID" 2>/dev/null || { echo "the bench's PostgreSQL cluster ($PGROOT) is not running" >&2; exit 1; }
psql_() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U kamailio "$@"; }

CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() {  # utime+stime of the given pids
  local t=0 p f
  for p in "$@"; do
    [ -r "/proc/$p/stat" ] || continue
    f=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null) || continue
    set -- $f
    t=$((t + ${12} + ${13}))
  done
  echo "$t"
}
tree_ticks() {  # PID's own and reaped children's time plus its live children's
  local p=$1 f t
  [ -r "/proc/$p/stat" ] || { echo 0; return; }
  f=$(sed 's/^.*) //' "/proc/$p/stat")
  set -- $f
  t=$((${12} + ${13} + ${14} + ${15}))
  echo $((t + $(cpu_ticks $(ps -o pid= --ppid "$p"))))
}
udp_bound() { grep -q " 0100007F:$(printf '%04X' "$1") " /proc/net/udp; }

# ---------------------------------------------------------------- processes of this step
KPID="" KPIDS="" UAS_PID=""
stop_pid() {  # stop_pid PID: TERM, then KILL after 5 s
  local p=$1
  [ -n "$p" ] || return 0
  kill -TERM "$p" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
}
stop_kamailio() {
  [ -n "$KPID" ] || return 0
  kill -TERM "$KPID" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$KPID" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$KPID" 2>/dev/null; then for p in $KPIDS; do kill -KILL "$p" 2>/dev/null || true; done; fi
  wait "$KPID" 2>/dev/null || true
  KPID=""
}
cleanup() { stop_pid "$UAS_PID"; UAS_PID=""; stop_kamailio; }
trap cleanup EXIT

# start_uas CALLS STATFILE: the UAS answers CALLS calls then exits (bounded by -timeout as well)
start_uas() {
  if udp_bound "$UAS_PORT"; then echo "something already listens on 127.0.0.1:$UAS_PORT" >&2; return 1; fi
  sipp -sf "$HERE/uas.xml" -i 127.0.0.1 -p "$UAS_PORT" -t u1 -m "$1" -nostdin -buff_size "$SIPP_BUFF" \
    -recv_timeout "$RECV_TIMEOUT_MS" -timeout "$(( ${RUN_TIMEOUT_S:-60} + 30 ))" ${UAS_EXTRA:-} -trace_stat -stf "$2" -fd 1 > "$2.out" 2>&1 &
  UAS_PID=$!
  for _ in $(seq 1 100); do
    udp_bound "$UAS_PORT" && return 0
    kill -0 "$UAS_PID" 2>/dev/null || { echo "the SIPp UAS died at start:" >&2; tail -5 "$2.out" >&2; return 1; }
    sleep 0.05
  done
  echo "the SIPp UAS did not bind 127.0.0.1:$UAS_PORT" >&2; return 1
}
# wait_uas: the UAS exits by itself once its calls are done (timewait 500 ms); a UAS still waiting
# for calls that failed is stopped after 5 s
wait_uas() {
  for _ in $(seq 1 50); do kill -0 "$UAS_PID" 2>/dev/null || break; sleep 0.1; done
  stop_pid "$UAS_PID"
  UAS_PID=""
}
# uac RATE CALLS [sipp args…]. SIPp's -timeout only stops new calls: calls still waiting go on, so
# each wait is bounded (-recv_timeout) and the whole run too (timeout(1))
uac() {
  local r=$1 n=$2; shift 2
  timeout -k 5 "$(( n / r + ${RUN_TIMEOUT_S:-60} + 20 ))" sipp "$TARGET" -sf "$HERE/uac.xml" -s uas -i 127.0.0.1 -p "$SIPP_PORT" -t u1 \
    -d "$HOLD_MS" -r "$r" -m "$n" -nostdin -buff_size "$SIPP_BUFF" -recv_timeout "$RECV_TIMEOUT_MS" "$@"
}

# sipflow's CDR table (a table named cdrs in CDR_DB), counted; NA when there is none
cdr_count() {
  if [ "$SERVER" = kamailio ]; then psql_ -d kamailio -Atc "SELECT count(*) FROM acc" 2>/dev/null || echo NA; return; fi
  [ -n "$CDR_DB" ] || { echo NA; return; }
  local t
  t=$(psql_ -d "$CDR_DB" -Atc "SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) FROM information_schema.tables
        WHERE table_name = 'cdrs' ORDER BY table_schema LIMIT 1" 2>/dev/null || true)
  [ -n "$t" ] || { echo NA; return; }
  psql_ -d "$CDR_DB" -Atc "SELECT count(*) FROM $t" 2>/dev/null || echo NA
}
# the count once it has not moved for 1 s (sipflow writes its CDRs in batches), at most 10 s
cdr_settled() {
  local a b
  a=$(cdr_count)
  for _ in $(seq 1 10); do
    sleep 1; b=$(cdr_count)
    [ "$a" = "$b" ] && break
    a=$b
  done
  echo "$a"
}

# ---------------------------------------------------------------- start Kamailio
if [ "$SERVER" = kamailio ]; then
  if udp_bound "${TARGET##*:}"; then echo "something already listens on $TARGET" >&2; exit 1; fi
  psql_ -d kamailio -c "TRUNCATE acc RESTART IDENTITY"
  rm -f "$WORK/kamailio_ctl"
  kamailio -f "$HERE/kamailio.cfg" -DD -E -m 256 -M 16 -w "$WORK" -P "$WORK/kamailio-invite.pid" \
    -A "CTLSOCK=\"unix:$WORK/kamailio_ctl\"" -A "KCHILDREN=$CHILDREN" -A "SIPLISTEN=udp:$TARGET" \
    -A "UAS=\"127.0.0.1:$UAS_PORT\"" -A "DBURL=\"postgres://kamailio@127.0.0.1:$PG_PORT/kamailio\"" \
    $([ "${ACC:-1}" = 0 ] && echo "-A WITHOUT_ACC") > "$WORK/kamailio-invite.log" 2>&1 &
  KPID=$!
  for _ in $(seq 1 100); do
    udp_bound "${TARGET##*:}" && [ -S "$WORK/kamailio_ctl" ] && break
    kill -0 "$KPID" 2>/dev/null || { echo "kamailio died, see $WORK/kamailio-invite.log" >&2; tail -5 "$WORK/kamailio-invite.log" >&2; exit 1; }
    sleep 0.1
  done
  sleep 0.5
  KPIDS="$KPID $(ps -o pid= --ppid "$KPID" | tr '\n' ' ')"
  SRV_PIDS=$KPIDS
else
  SRV_PIDS=${SERVER_PIDS:-}
fi

# ---------------------------------------------------------------- warm-up (not measured)
if [ "$WARMUP_CALLS" -gt 0 ]; then
  start_uas "$WARMUP_CALLS" "$WORK/invite-uas-warmup.csv"
  uac "$WARMUP_RATE" "$WARMUP_CALLS" -timeout $(( WARMUP_CALLS / WARMUP_RATE + 15 )) > "$WORK/invite-warmup.out" 2>&1 \
    || echo "warning: warm-up run had failures (see $WORK/invite-warmup.out)" >&2
  wait_uas
fi
cdr0=$(cdr_settled)

# ---------------------------------------------------------------- measured run
rm -f "$WORK/invite-uac.csv" "$WORK/invite-uas.csv" "$WORK/invite-uac.out" "$WORK/invite-uac.time"
start_uas "$CALLS" "$WORK/invite-uas.csv"
uas0=$(cpu_ticks "$UAS_PID")
srv0=$(cpu_ticks $SRV_PIDS)
db0=$(tree_ticks "$PG_PID")
t0=$(date +%s.%N)
set +e
TIMEFORMAT='%R %U %S'
{ time uac "$RATE" "$CALLS" -trace_stat -stf "$WORK/invite-uac.csv" -fd 1 $SIPP_EXTRA > "$WORK/invite-uac.out" 2>&1 ; } 2> "$WORK/invite-uac.time"
sipp_rc=$?
set -e
t1=$(date +%s.%N)
srv1=$(cpu_ticks $SRV_PIDS)
db1=$(tree_ticks "$PG_PID")
uas1=$(cpu_ticks "$UAS_PID")
wait_uas
cdr1=$(cdr_settled)
stop_kamailio

# ---------------------------------------------------------------- collect
for f in invite-uac invite-uas; do
  if [ ! -s "$WORK/$f.csv" ] || [ "$(wc -l < "$WORK/$f.csv")" -lt 2 ]; then
    echo "sipp produced no statistics ($f, rc=$sipp_rc); tail of its output:" >&2
    tail -20 "$WORK/$f.out" "$WORK/$f.csv.out" 2>/dev/null >&2
    exit 1
  fi
done
# last line of a stat file; columns looked up by header name (as the kit's run.sh)
stats() {
  awk -F';' '
    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    { last = $0 }
    END {
      split(last, v, ";")
      split(v[col["StartTime"]], st, "\t"); split(v[col["CurrentTime"]], ct, "\t")
      el = ct[3] - st[3]
      rt = v[col["ResponseTime1(C)"]]; split(rt, r, ":")
      rtms = (r[1] * 3600 + r[2] * 60 + r[3]) * 1000 + r[4] / 1000
      slow = v[col["ResponseTimeRepartition1_<1000"]] + v[col["ResponseTimeRepartition1_>=1000"]]
      printf "%s %s %s %s %.3f %.2f %d", v[col["SuccessfulCall(C)"]], v[col["FailedCall(C)"]],
        v[col["Retransmissions(C)"]], v[col["TotalCallCreated"]], el, rtms, slow
    }' "$1"
}
read -r succ ufailed uretrans created elapsed rtms slow <<< "$(stats "$WORK/invite-uac.csv")"
read -r _ sfailed sretrans _ _ _ _ <<< "$(stats "$WORK/invite-uas.csv")"
steady=$(awk -F';' '
  NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
  { split($col["CurrentTime"], ct, "\t"); t[NR] = ct[3]; sc[NR] = $col["SuccessfulCall(P)"]; n = NR }
  END {
    m = 0
    for (i = 4; i < n; i++) { dt = t[i] - t[i-1]; if (dt > 0.2) r[++m] = sc[i] / dt }
    if (m == 0) { print "NA"; exit }
    for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (r[j] < r[i]) { x = r[i]; r[i] = r[j]; r[j] = x }
    printf "%.1f", (m % 2) ? r[(m + 1) / 2] : (r[m / 2] + r[m / 2 + 1]) / 2
  }' "$WORK/invite-uac.csv")
read -r s_real s_user s_sys < "$WORK/invite-uac.time"
wall=$(echo "$t1 - $t0" | bc -l)
pct() { echo "scale=1; 100 * ($1) / $CLK_TCK / $wall" | bc -l; }
achieved=$(echo "scale=1; $succ / $elapsed" | bc -l)
sipp_cpu=$(echo "scale=1; 100 * ($s_user + $s_sys) / $s_real + $(pct "$uas1 - $uas0")" | bc -l)
srv_cpu=NA
[ -z "$SRV_PIDS" ] || srv_cpu=$(pct "$srv1 - $srv0")
db_cpu=$(pct "$db1 - $db0")
cdr_rows=NA
[ "$cdr0" = NA ] || [ "$cdr1" = NA ] || cdr_rows=$((cdr1 - cdr0))

echo "rate_target=$RATE achieved_cps=$achieved failed=$((ufailed + sfailed)) retrans=$((uretrans + sretrans)) steady_cps=$steady successful=$succ calls=$created elapsed_s=$elapsed srv_cpu_pct=$srv_cpu sipp_cpu_pct=$sipp_cpu db_cpu_pct=$db_cpu rt_avg_ms=$rtms slow=$slow uac_failed=$ufailed uac_retrans=$uretrans uas_failed=$sfailed uas_retrans=$sretrans cdr_rows=$cdr_rows server=$SERVER children=$([ "$SERVER" = kamailio ] && echo "$CHILDREN" || echo NA) hold_ms=$HOLD_MS sipp_rc=$sipp_rc"

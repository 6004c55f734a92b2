#!/usr/bin/env bash
# Brute-force flood against a legitimate client, side by side in one run: sipflow with its
# defences (the shipped security.* defaults) and the same sipflow with them off (the reference).
#
# Attacker: SIPp from 127.0.0.2 sending REGISTERs with bogus digest credentials (a made-up nonce
# and response, bench/security/bogus-register.xml) at RATE per second for DURATION seconds, as
# svcrack does. Legitimate client: SIPp from 127.0.0.3 running the benchmark's REGISTER with
# digest authentication (bench/sip/kamailio/register_auth.xml) for the note's subscriber
# francesco at LEGIT_RATE per second over the same period. Both start together.
#
# usage: bash bench/security/flood.sh [--rate 3000] [--legit-rate 100] [--duration 10]
#                                     [--attack-user francesco] [--workers auto] [--no-build]
#   --attack-user U   the username the attacker guesses passwords for (default francesco: the
#                     legitimate client's own account, the hardest case for per-user locks)
# environment: WORK (default /tmp/sipflow-bench-security), SIP_PORT (5180).
#
# Prints one line per variant (legitimate calls successful / failed / retransmissions, success
# percentage, the attacker's requests answered, sipflow CPU) and the ratio of success rates.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
WORK=${WORK:-/tmp/sipflow-bench-security}
SIP_PORT=${SIP_PORT:-5180}
RATE=3000
LEGIT_RATE=100
DUR=10
ATTACK_USER=francesco
WORKERS=auto
BUILD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --rate) RATE=$2; shift ;;
    --legit-rate) LEGIT_RATE=$2; shift ;;
    --duration) DUR=$2; shift ;;
    --attack-user) ATTACK_USER=$2; shift ;;
    --workers) WORKERS=$2; shift ;;
    --no-build) BUILD=0 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

command -v sipp >/dev/null 2>&1 || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y sip-tester >/dev/null; }
[ "$BUILD" = 0 ] || (cd "$REPO" && npx tsc -p tsconfig.build.json) >&2 || echo "warning: tsc reported errors; using what it emitted" >&2
[ -f "$REPO/dist/cli/main.js" ] || { echo "dist/ is missing: run npm run build" >&2; exit 1; }

mkdir -p "$WORK"
printf 'SEQUENTIAL\nfrancesco;123456;[authentication username=francesco password=123456]\n' > "$WORK/legit.csv"
printf 'SEQUENTIAL\n%s;\n' "$ATTACK_USER" > "$WORK/attacker.csv"

SF_PID=""
stop_sipflow() {
  [ -n "$SF_PID" ] || return 0
  kill -TERM "$SF_PID" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$SF_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$SF_PID" 2>/dev/null || true
  wait "$SF_PID" 2>/dev/null || true
  SF_PID=""
}
trap stop_sipflow EXIT
trap 'exit 130' INT TERM

cpu_ticks() {  # utime + stime of a process and its threads
  awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# last stat line of a SIPp run → "successful failed retransmissions"
sipp_counts() {
  awk -F';' 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next } { last = $0 }
    END { split(last, v, ";"); print v[col["SuccessfulCall(C)"]], v[col["FailedCall(C)"]], v[col["Retransmissions(C)"]] }' "$1"
}

run_variant() {  # run_variant NAME SECURITY_JSON
  local name=$1 security=$2 cfg=$WORK/$1.json log=$WORK/$1.log
  rm -rf "$WORK/$name-data"
  cat > "$cfg" <<EOF
{ "dataDir": "$WORK/$name-data", "flows": "$REPO/flows",
  "sip": { "listeners": [{ "host": "127.0.0.1", "port": $SIP_PORT, "transports": ["udp"] }], "workers": "$WORKERS" },
  "directory": { "url": "memory://" }, "location": { "url": "memory" },
  "http": { "enabled": false }, "log": { "level": "warn" },
  "security": $security }
EOF
  node "$REPO/dist/cli/main.js" serve --config "$cfg" > "$log" 2>&1 &
  SF_PID=$!
  for _ in $(seq 1 300); do grep -q "sipflow: SIP .* listening" "$log" 2>/dev/null && break; kill -0 "$SF_PID" 2>/dev/null || { cat "$log" >&2; exit 1; }; sleep 0.2; done
  sleep 0.5
  local calls=$((LEGIT_RATE * DUR)) attacks=$((RATE * DUR)) c0 c1 t0 t1
  rm -f "$WORK/$name-legit.csv" "$WORK/$name-attack.out"
  c0=$(cpu_ticks "$SF_PID"); t0=$(date +%s.%N)
  sipp "127.0.0.1:$SIP_PORT" -sf "$HERE/bogus-register.xml" -inf "$WORK/attacker.csv" -i 127.0.0.2 -p 5181 -t u1 \
    -r "$RATE" -m "$attacks" -nostdin -timeout $((DUR + 5)) -trace_err -error_file "$WORK/$name-attack.err" \
    > "$WORK/$name-attack.out" 2>&1 &
  local atk=$!
  sipp "127.0.0.1:$SIP_PORT" -sf "$REPO/bench/sip/kamailio/register_auth.xml" -inf "$WORK/legit.csv" -i 127.0.0.3 -p 5182 -t u1 \
    -r "$LEGIT_RATE" -m "$calls" -nostdin -auth_uri example.test -timeout $((DUR + 35)) \
    -trace_stat -stf "$WORK/$name-legit.csv" -fd 1 > "$WORK/$name-legit.out" 2>&1 || true
  wait "$atk" 2>/dev/null || true
  t1=$(date +%s.%N); c1=$(cpu_ticks "$SF_PID")
  local succ failed retrans
  read -r succ failed retrans <<< "$(sipp_counts "$WORK/$name-legit.csv")"
  # what the attacker got back: SIPp logs every response it cannot map to a call
  local answered
  answered=$(grep -c "SIP/2.0 " "$WORK/$name-attack.err" 2>/dev/null || true)
  local pct cpu
  pct=$(awk -v s="$succ" -v n="$calls" 'BEGIN { printf "%.2f", n ? 100 * s / n : 0 }')
  cpu=$(awk -v a="$c0" -v b="$c1" -v t0="$t0" -v t1="$t1" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.0f", 100 * (b - a) / hz / (t1 - t0) }')
  echo "[$name] attack_rate=$RATE attacks=$attacks legit_calls=$calls successful=$succ failed=$failed retrans=$retrans success_pct=$pct attacker_answered=$answered sipflow_cpu_pct=$cpu"
  RESULT_PCT[$name]=$pct
  stop_sipflow
}

declare -A RESULT_PCT
echo "# $(date -u +%FT%TZ) flood: $RATE bogus REGISTER/s for ${DUR}s from 127.0.0.2 (user $ATTACK_USER), legitimate $LEGIT_RATE REGISTER-with-auth/s from 127.0.0.3, workers $WORKERS"
run_variant defended '{}'
run_variant reference '{ "bans": { "enabled": false }, "rateLimit": { "requestsPerSec": 0 }, "scannerUserAgents": [] }'
awk -v a="${RESULT_PCT[defended]}" -v b="${RESULT_PCT[reference]}" 'BEGIN { printf "legitimate success: defended %s %% vs defences off %s %%\n", a, b }'

#!/usr/bin/env bash
# Installs the Debian packages sipflow's tests need, and nothing when they are all present.
# Idempotent and non-interactive; safe to run in CI as root (it does nothing else as root).
#
#   sip-tester                SIPp 3.6 (`sipp`): the SIP UA of the e2e suites
#   kamailio                  Kamailio 5.6 core + base modules (tm, sl, rr, registrar, textops, pv, …)
#   kamailio-utils-modules    http_client (the execute call to sipflow's HTTP API)
#   kamailio-extra-modules    jansson (JSON in/out of the Kamailio front end, examples/kamailio)
#   kamailio-tls-modules      tls (the TLS side of bench/sip and the Kamailio e2e suites)
#   kamailio-websocket-modules websocket (Kamailio over WS, beside sipflow's)
#   kamailio-postgres-modules db_postgres (bench/sip: auth_db/usrloc of the persistent pairing, acc of the invite pairing)
#   kamailio-mongodb-modules  db_mongodb (test/integration/location/kamailio-written.test.ts: bindings Kamailio writes into MongoDB)
#   chromium                  headless browser for the designer's browser tests and the WebSocket phone test
#   baresip-core              baresip, a real softphone (UDP, TCP, TLS) for the transport e2e suites
#   dnsmasq-base              dnsmasq without its system service: the DNS server (NAPTR) of the query.enum suite
#   slapd, ldap-utils         OpenLDAP's server (slapd, slapadd) and client tools: the directory of the query.ldap suite
#
# usage: scripts/install-system-deps.sh [--check]
#   --check   only report what is missing (exit 1 when something is)
# environment:
#   SIPFLOW_SKIP_SYSTEM_DEPS=1   do nothing (e.g. a CI image that ships them)
#   SIPFLOW_SYSTEM_DEPS="a b"    install only these groups: sipp kamailio chromium baresip dnsmasq slapd (default: all)
set -euo pipefail

[ "${SIPFLOW_SKIP_SYSTEM_DEPS:-0}" = 1 ] && exit 0

check_only=0
[ "${1:-}" = "--check" ] && check_only=1

groups=${SIPFLOW_SYSTEM_DEPS:-"sipp kamailio chromium baresip dnsmasq slapd"}
MODDIR=/usr/lib/x86_64-linux-gnu/kamailio/modules
# also look in the multiarch dir of this machine when it is not x86_64
if command -v dpkg-architecture >/dev/null 2>&1; then
  MODDIR="/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)/kamailio/modules"
elif [ -d /usr/lib/aarch64-linux-gnu/kamailio/modules ]; then
  MODDIR=/usr/lib/aarch64-linux-gnu/kamailio/modules
fi

need=()
has_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
want() {  # want PACKAGE TEST...: add PACKAGE when the test fails
  local pkg=$1; shift
  if ! "$@" >/dev/null 2>&1; then need+=("$pkg"); fi
}

for g in $groups; do
  case "$g" in
    sipp)
      want sip-tester command -v sipp ;;
    kamailio)
      want kamailio command -v kamailio
      want kamailio-utils-modules test -e "$MODDIR/http_client.so"
      want kamailio-extra-modules test -e "$MODDIR/jansson.so"
      want kamailio-tls-modules test -e "$MODDIR/tls.so"
      want kamailio-websocket-modules test -e "$MODDIR/websocket.so"
      want kamailio-postgres-modules test -e "$MODDIR/db_postgres.so"
      want kamailio-mongodb-modules test -e "$MODDIR/db_mongodb.so" ;;
    chromium)
      want chromium sh -c 'command -v chromium || command -v chromium-browser' ;;
    baresip)
      want baresip-core command -v baresip ;;
    dnsmasq)
      want dnsmasq-base test -x /usr/sbin/dnsmasq ;;
    slapd)
      want slapd sh -c 'test -x /usr/sbin/slapd && test -x /usr/sbin/slapadd'
      want ldap-utils command -v ldapsearch ;;
    *) echo "install-system-deps: unknown group '$g' (sipp kamailio chromium baresip dnsmasq slapd)" >&2; exit 2 ;;
  esac
done

if [ ${#need[@]} -eq 0 ]; then
  echo "install-system-deps: all present ($groups)"
  exit 0
fi
if [ "$check_only" = 1 ]; then
  echo "install-system-deps: missing: ${need[*]}" >&2
  exit 1
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-system-deps: missing ${need[*]} and not root: run 'sudo $0'" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-system-deps: missing ${need[*]} and no apt-get on this machine" >&2
  exit 1
fi

echo "install-system-deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
# update the lists only when they are missing or the install cannot find a package
lists_present() { compgen -G '/var/lib/apt/lists/*_Packages' >/dev/null; }
lists_present || apt-get update -qq
if ! apt-get install -y -qq --no-install-recommends "${need[@]}" >/tmp/sipflow-apt.log 2>&1; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/tmp/sipflow-apt.log 2>&1 \
    || { tail -30 /tmp/sipflow-apt.log >&2; exit 1; }
fi

# Debian's kamailio package enables and starts a system service on 5060 with /etc/kamailio's
# config; the tests run their own instances, so a freshly installed one is stopped (never one
# the operator already ran: only when this script installed the package).
# slapd's package does the same with its default directory: stopped too (the suites run their own).
for svc in kamailio slapd; do
  if printf '%s\n' "${need[@]}" | grep -qx "$svc"; then
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
      systemctl stop "$svc" || true
      systemctl disable "$svc" >/dev/null 2>&1 || true
    fi
  fi
done
echo "install-system-deps: done"

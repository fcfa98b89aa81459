# Sourced by scripts/demo-webhook.sh and scripts/bench-webhook.sh: a throwaway tkeha-webhook on
# loopback. Defines WORK (removed on exit), PORT (TLS) and HEALTH_PORT (plain), and the
# functions webhook_certs and webhook_start. The caller defines die() and sets `set -euo pipefail`.

WORK=$(mktemp -d "/tmp/tkeha-${WEBHOOK_SCRIPT:-webhook}.XXXXXX")
SERVER_PID=
webhook_cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap webhook_cleanup EXIT INT TERM

# Two free loopback ports (TLS, health).
read -r PORT HEALTH_PORT < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
for s in socks: s.close()')

# A fresh CA and a serving certificate for localhost in $WORK/certs (what the chart or cert-manager makes).
webhook_certs() {
  tkeha-webhook --gen-certs "$WORK/certs" --gen-certs-host localhost,127.0.0.1
}

# webhook_start [PREFIX...] [-- EXTRA-FLAGS...]: start the server (log in $WORK/server.log) behind
# an optional command prefix (nice, taskset) and wait until /readyz answers. WEBHOOK_BIN names
# another binary with the same flags (default tkeha-webhook).
webhook_start() {
  local prefix=() extra=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do prefix+=("$1"); shift; done
  if [ $# -gt 0 ]; then shift; extra=("$@"); fi
  "${prefix[@]}" "${WEBHOOK_BIN:-tkeha-webhook}" \
    --listen "127.0.0.1:$PORT" --health-listen "127.0.0.1:$HEALTH_PORT" \
    --tls-cert "$WORK/certs/tls.crt" --tls-key "$WORK/certs/tls.key" \
    --shutdown-delay 100ms "${extra[@]}" >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$HEALTH_PORT/readyz" >/dev/null 2>&1 && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; die "tkeha-webhook exited at start"; }
    sleep 0.1
  done
  die "tkeha-webhook never became ready"
}

#!/usr/bin/env bash
# A local SMTP sink (Debian's python3-aiosmtpd, Ops/scripts/smtp_sink.py) writing every message to a Maildir.
#
#   bash Ops/scripts/smtp-sink.sh start    start (or reuse) it on a free loopback port; prints the port
#   bash Ops/scripts/smtp-sink.sh env      print FLEET_SMTP_SINK_* lines (export them with set -a; . sink.env)
#   bash Ops/scripts/smtp-sink.sh stop     stop it (the Maildir stays)
#
# State dir: $FLEET_SMTP_SINK_DIR, or <repo>/.fleet/smtp. It holds sink.env (FLEET_SMTP_SINK_HOST, _PORT,
# _MAILDIR, _RULES), sink.pid, sink.log, maildir/ (messages in maildir/new) and rules.json (replies for
# chosen recipients, e.g. {"bounce@example.com": "550 5.1.1 no such user"}; see smtp_sink.py).
#
# Options of `start`, from the environment (they apply when this call starts the sink, not to a reused one):
#   FLEET_SMTP_SINK_TLS_CERT, FLEET_SMTP_SINK_TLS_KEY   PEM files: offer STARTTLS with them
#   FLEET_SMTP_SINK_REQUIRE_STARTTLS=1                  refuse mail before STARTTLS (530)
#   FLEET_SMTP_SINK_EXTENSIONS=PIPELINING,CHUNKING      what EHLO offers besides STARTTLS/AUTH (`none`: neither;
#                                                       default both); BDAT works only when CHUNKING is offered
#   FLEET_SMTP_SINK_AUTH=USER:PASSWORD                  require AUTH PLAIN/LOGIN (offered after STARTTLS
#                                                       when STARTTLS is offered, else in clear)
# sink.log records every completed STARTTLS and every AUTH attempt (mechanism, outcome, tls=yes/no; never
# the credentials).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
DIR=${FLEET_SMTP_SINK_DIR:-$REPO_ROOT/.fleet/smtp}
PY=/usr/bin/python3
PROG=smtp-sink.sh

die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }

running() { [[ -f $DIR/sink.pid ]] && kill -0 "$(cat "$DIR/sink.pid")" 2>/dev/null; }

# A free loopback port below the kernel's ephemeral range (client connections and port-0 servers take theirs
# from that range, so the port is not handed out again before the sink binds it).
free_port() {
  $PY - <<'PY'
import random, socket, sys
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
for _ in range(200):
    p = random.randrange(10000, low) if low > 12000 else random.randrange(1024, low)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    print(p); sys.exit(0)
sys.exit("no free port found")
PY
}

case ${1:-} in
  start)
    mkdir -p "$DIR/maildir/tmp" "$DIR/maildir/new" "$DIR/maildir/cur"
    if running; then
      # shellcheck source=/dev/null
      . "$DIR/sink.env"
      echo "$FLEET_SMTP_SINK_PORT"
      exit 0
    fi
    $PY -c 'import aiosmtpd' 2>/dev/null || die "python3-aiosmtpd is missing (bash Ops/scripts/install-deps.sh)"
    [[ -f $DIR/rules.json ]] || echo '{}' >"$DIR/rules.json"
    options=()
    if [[ -n ${FLEET_SMTP_SINK_TLS_CERT:-}${FLEET_SMTP_SINK_TLS_KEY:-} ]]; then
      options+=(--tls-cert "${FLEET_SMTP_SINK_TLS_CERT:-}" --tls-key "${FLEET_SMTP_SINK_TLS_KEY:-}")
    fi
    if [[ ${FLEET_SMTP_SINK_REQUIRE_STARTTLS:-0} == 1 ]]; then options+=(--require-starttls); fi
    # A free port can be taken by another process between the probe and the sink's bind (tests start many
    # sinks at once): the sink is ready when it logs its own "smtp sink on" line, and a start that lost its
    # port ("Address already in use") is retried on another one. A connect probe alone would accept whatever
    # else now listens on that port.
    started=""
    for _ in 1 2 3 4 5; do
      port=$(free_port)
      # FLEET_SMTP_SINK_AUTH reaches the script through the environment, never its command line.
      $PY "$SCRIPT_DIR/smtp_sink.py" 127.0.0.1 "$port" "$DIR/maildir" "$DIR/rules.json" ${options[@]+"${options[@]}"} \
        >"$DIR/sink.log" 2>&1 </dev/null &
      echo $! >"$DIR/sink.pid"
      for _ in $(seq 1 200); do
        if grep -q "smtp sink on 127.0.0.1:$port " "$DIR/sink.log" 2>/dev/null && running; then started=1; break; fi
        running || break
        sleep 0.05
      done
      [[ -n $started ]] && break
      if running; then kill -TERM "$(cat "$DIR/sink.pid")" 2>/dev/null || true; die "the sink did not report ready within 10 s"; fi
      grep -qi "address already in use" "$DIR/sink.log" || { cat "$DIR/sink.log" >&2; die "the sink exited at start"; }
    done
    [[ -n $started ]] || { cat "$DIR/sink.log" >&2; die "no free port after 5 tries"; }
    cat >"$DIR/sink.env" <<ENV
FLEET_SMTP_SINK_HOST='127.0.0.1'
FLEET_SMTP_SINK_PORT='$port'
FLEET_SMTP_SINK_MAILDIR='$DIR/maildir'
FLEET_SMTP_SINK_RULES='$DIR/rules.json'
ENV
    echo "$port"
    ;;
  env)
    [[ -f $DIR/sink.env ]] || die "no sink.env in $DIR (start first)"
    sed 's/^/export /' "$DIR/sink.env"
    ;;
  stop)
    if running; then
      pid=$(cat "$DIR/sink.pid")
      kill -TERM "$pid"
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    fi
    rm -f "$DIR/sink.pid"
    ;;
  *) sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 64 ;;
esac

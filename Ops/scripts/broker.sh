#!/usr/bin/env bash
# A private, unprivileged RabbitMQ node for tests and demos.
#
#   bash Ops/scripts/broker.sh start          start (or reuse) the node, print its AMQP URL
#   bash Ops/scripts/broker.sh env            print `export KEY='value'` lines: eval "$(... env)"
#   bash Ops/scripts/broker.sh status         say whether it runs (exit 0 running, 3 not running)
#   bash Ops/scripts/broker.sh stop [--keep]  stop it and delete its data (--keep: keep data and logs)
#   bash Ops/scripts/broker.sh stop-app | start-app | restart-app
#                                             rabbitmqctl stop_app / start_app (reconnect tests)
#   FLEET_BROKER_TLS=1 bash Ops/scripts/broker.sh start
#                                             also open a TLS listener (throwaway CA, see broker.env)
#   FLEET_BROKER_MANAGEMENT=1 bash Ops/scripts/broker.sh start
#                                             also load the management plugin (HTTP API on a loopback port:
#                                             FLEET_BROKER_MANAGEMENT_URL in broker.env)
#
# State dir: $FLEET_BROKER_DIR, or <repo>/.fleet/broker. It holds:
#   broker.env  FLEET_AMQP_URL, FLEET_BROKER_NODE, FLEET_BROKER_PORT, FLEET_BROKER_CTL, FLEET_BROKER_LOG
#               (plain KEY='value' lines; `set -a; . broker.env; set +a` to export them); with TLS also
#               FLEET_AMQPS_URL and FLEET_BROKER_CA (the PEM of the throwaway CA that signed the broker's
#               certificate for localhost and 127.0.0.1: amqps://...?cacertfile=$FLEET_BROKER_CA)
#   node.state  what `stop` needs (node name, ports, pids, node dir)
#   node/       the node's config, mnesia and log dirs (elsewhere when the rabbitmq user cannot reach it)
#
# Each start picks free loopback ports outside the kernel's ephemeral range (so that client connections
# can never take the AMQP port while the app is stopped), names the node fleet-<port>@localhost, binds
# AMQP, Erlang distribution and epmd to 127.0.0.1, loads no plugins, and never touches the default node.
#
# As root, Debian's /usr/sbin/rabbitmq-server runs the node as the `rabbitmq` user (whose Erlang cookie
# is <rabbitmq home>/.erlang.cookie); rabbitmqctl is then run as root with HOME set to that home, so it
# reads the same cookie (and can read root's files, e.g. for import_definitions). As another user, the
# node and rabbitmqctl run as that user with the cookie in $HOME.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
PROG="broker.sh"
START_TIMEOUT=${FLEET_BROKER_START_TIMEOUT:-60}
RMQ_BIN=/usr/lib/rabbitmq/bin
TLS=${FLEET_BROKER_TLS:-0}
MANAGEMENT=${FLEET_BROKER_MANAGEMENT:-0}

die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }
say() { printf '%s: %s\n' "$PROG" "$*" >&2; }

usage() {
  sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

# ---------------------------------------------------------------------------------------------- setup

resolve_state_dir() {
  local dir=${FLEET_BROKER_DIR:-$REPO_ROOT/.fleet/broker}
  [[ -n $dir ]] || die "FLEET_BROKER_DIR is empty"
  mkdir -p -- "$dir" || die "cannot create state dir $dir"
  STATE_DIR=$(cd -- "$dir" && pwd)
  ENV_FILE=$STATE_DIR/broker.env
  STATE_FILE=$STATE_DIR/node.state
}

setup_tools() {
  [[ -x $RMQ_BIN/rabbitmq-server && -x $RMQ_BIN/rabbitmqctl ]] ||
    die "rabbitmq-server is not installed (run: bash Ops/scripts/install-deps.sh)"
  if [[ $EUID -eq 0 ]]; then
    AS_ROOT=1
    id -u rabbitmq >/dev/null 2>&1 || die "running as root but there is no 'rabbitmq' user (is rabbitmq-server installed?)"
    RMQ_HOME=$(getent passwd rabbitmq | cut -d: -f6)
    [[ -n $RMQ_HOME && -d $RMQ_HOME ]] || die "home of the rabbitmq user ('$RMQ_HOME') does not exist"
    COOKIE_FILE=$RMQ_HOME/.erlang.cookie
    SERVER=(/usr/sbin/rabbitmq-server)                 # re-execs as the rabbitmq user, HOME=$RMQ_HOME
    CTL=(env "HOME=$RMQ_HOME" "$RMQ_BIN/rabbitmqctl")   # root, but the rabbitmq user's cookie
  else
    AS_ROOT=0
    [[ -n ${HOME:-} && -d $HOME && -w $HOME ]] || die "HOME must be a writable directory (it holds the Erlang cookie)"
    COOKIE_FILE=$HOME/.erlang.cookie
    SERVER=("$RMQ_BIN/rabbitmq-server")
    CTL=("$RMQ_BIN/rabbitmqctl")
  fi
}

# Runs a command as the rabbitmq user (root case only).
as_rabbitmq() { su rabbitmq -s /bin/sh -c "$1" -- sh "${@:2}"; }

ensure_cookie() {
  [[ -f $COOKIE_FILE ]] && return 0
  say "creating Erlang cookie $COOKIE_FILE"
  local cookie
  cookie=$(LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c 32 || true)
  [[ ${#cookie} -eq 32 ]] || die "could not generate an Erlang cookie"
  (umask 077 && printf '%s' "$cookie" >"$COOKIE_FILE")
  chmod 400 "$COOKIE_FILE"
  if ((AS_ROOT)); then chown rabbitmq:rabbitmq "$COOKIE_FILE"; fi
}

# Prints N distinct free TCP ports (on every IPv4 address), below the ephemeral range.
free_ports() {
  local n=$1 py
  py=$(command -v /usr/bin/python3 python3 2>/dev/null | head -n 1 || true)
  if [[ -n $py ]]; then
    "$py" - "$n" <<'PY'
import random, socket, sys
n = int(sys.argv[1])
try:
    low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
except OSError:
    low = 32768
hi = low - 1 if low > 12000 else 65000
socks, got = [], []
for _ in range(5000):
    p = random.randint(10000, hi)
    if p in got:
        continue
    # Binding the wildcard address fails when anything holds the port on any IPv4 address.
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("0.0.0.0", p))
    except OSError:
        s.close()
        continue
    socks.append(s)
    got.append(p)
    if len(got) == n:
        break
if len(got) < n:
    sys.exit("no free port found")
print(" ".join(map(str, got)))
PY
  elif command -v ss >/dev/null 2>&1; then
    local got=() p tries=0
    while ((${#got[@]} < n)); do
      ((tries++ < 5000)) || die "no free port found"
      p=$((10000 + RANDOM % 22000))
      [[ " ${got[*]} " == *" $p "* ]] && continue
      [[ -z $(ss -Htan "sport = :$p") ]] && got+=("$p")
    done
    echo "${got[*]}"
  else
    die "need python3 or ss (iproute2) to find a free port"
  fi
}

# -------------------------------------------------------------------------------------------- state

load_state() {
  NODE="" PORT="" DIST_PORT="" TLS_PORT="" MGMT_PORT="" NODE_DIR="" LAUNCHER_PID="" NODE_DIR_IS_EXTERNAL=0
  [[ -f $STATE_FILE ]] || return 1
  local key value
  while IFS='=' read -r key value; do
    case $key in
      NODE) NODE=$value ;;
      PORT) PORT=$value ;;
      DIST_PORT) DIST_PORT=$value ;;
      TLS_PORT) TLS_PORT=$value ;;
      MGMT_PORT) MGMT_PORT=$value ;;
      NODE_DIR) NODE_DIR=$value ;;
      NODE_DIR_IS_EXTERNAL) NODE_DIR_IS_EXTERNAL=$value ;;
      LAUNCHER_PID) LAUNCHER_PID=$value ;;
    esac
  done <"$STATE_FILE"
  [[ -n $NODE && -n $NODE_DIR ]] || die "corrupt state file $STATE_FILE (delete it and kill the node by hand)"
}

write_state() {
  {
    echo "NODE=$NODE"
    echo "PORT=$PORT"
    echo "DIST_PORT=$DIST_PORT"
    echo "TLS_PORT=${TLS_PORT:-}"
    echo "MGMT_PORT=${MGMT_PORT:-}"
    echo "NODE_DIR=$NODE_DIR"
    echo "NODE_DIR_IS_EXTERNAL=$NODE_DIR_IS_EXTERNAL"
    echo "LAUNCHER_PID=${LAUNCHER_PID:-}"
  } >"$STATE_FILE.tmp"
  mv -f "$STATE_FILE.tmp" "$STATE_FILE"
}

ctl_line() {
  if ((AS_ROOT)); then
    printf 'env HOME=%s %s/rabbitmqctl -n %s' "$RMQ_HOME" "$RMQ_BIN" "$NODE"
  else
    printf '%s/rabbitmqctl -n %s' "$RMQ_BIN" "$NODE"
  fi
}

amqp_url() { printf 'amqp://guest:guest@127.0.0.1:%s/%%2F' "$PORT"; }
amqps_url() { printf 'amqps://guest:guest@127.0.0.1:%s/%%2F' "$TLS_PORT"; }
tls_dir() { printf '%s/tls' "$NODE_DIR"; }

write_env() {
  {
    echo "FLEET_AMQP_URL='$(amqp_url)'"
    echo "FLEET_BROKER_NODE='$NODE'"
    echo "FLEET_BROKER_PORT='$PORT'"
    echo "FLEET_BROKER_CTL='$(ctl_line)'"
    echo "FLEET_BROKER_LOG='$NODE_DIR/log/$NODE.log'"
    if [[ -n ${MGMT_PORT:-} ]]; then
      echo "FLEET_BROKER_MANAGEMENT_URL='http://guest:guest@127.0.0.1:$MGMT_PORT'"
    fi
    if [[ -n ${TLS_PORT:-} ]]; then
      echo "FLEET_AMQPS_URL='$(amqps_url)'"
      echo "FLEET_BROKER_CA='$(tls_dir)/ca.pem'"
    fi
  } >"$ENV_FILE.tmp"
  mv -f "$ENV_FILE.tmp" "$ENV_FILE"
}

print_env() { sed -n 's/^FLEET_/export FLEET_/p' "$ENV_FILE"; }

ctl() { "${CTL[@]}" -n "$NODE" "$@"; }

node_pingable() { [[ -n ${NODE:-} ]] && ctl ping -q >/dev/null 2>&1; }

app_running() { [[ $(ctl eval 'rabbit:is_running().' 2>/dev/null) == true ]]; }

# --------------------------------------------------------------------------------------- processes

# PIDs of the node's OS processes: the launcher and the beam (from the node's pid file), with all
# their descendants; only processes that still look like this node's are returned.
node_pids() {
  local roots=() pid pidfile=$NODE_DIR/mnesia/$NODE.pid
  if [[ -n ${LAUNCHER_PID:-} ]] && is_node_proc "$LAUNCHER_PID"; then roots+=("$LAUNCHER_PID"); fi
  if [[ -f $pidfile ]]; then
    pid=$(tr -dc '0-9' <"$pidfile" || true)
    if [[ -n $pid ]] && is_node_proc "$pid"; then roots+=("$pid"); fi
  fi
  ((${#roots[@]})) || return 0
  ps -eo pid=,ppid= | awk -v roots="${roots[*]}" '
    { parent[$1] = $2; pids[NR] = $1 }
    END {
      n = split(roots, r, " "); for (i = 1; i <= n; i++) keep[r[i]] = 1
      changed = 1
      while (changed) {
        changed = 0
        for (i in pids) { p = pids[i]; if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; changed = 1 } }
      }
      for (p in keep) print p
    }' | sort -u
}

# A process belongs to this node when its environment or command line names the node (root can read
# the environment of the rabbitmq user's processes; a plain user can read its own).
is_node_proc() {
  local pid=$1
  [[ -r /proc/$pid/cmdline ]] || return 1
  if { tr '\0' '\n' <"/proc/$pid/environ"; } 2>/dev/null | grep -qxF "RABBITMQ_NODENAME=$NODE"; then return 0; fi
  { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF -- "$NODE"
}

kill_node_procs() {
  local pids i
  mapfile -t pids < <(node_pids)
  ((${#pids[@]})) || return 0
  say "terminating leftover processes of $NODE: ${pids[*]}"
  kill -TERM "${pids[@]}" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    mapfile -t pids < <(for p in "${pids[@]}"; do if kill -0 "$p" 2>/dev/null; then echo "$p"; fi; done)
    ((${#pids[@]})) || return 0
    sleep 0.1
  done
  kill -KILL "${pids[@]}" 2>/dev/null || true
}

wait_gone() { # waits up to $1 seconds for the node's processes to exit
  local deadline=$((SECONDS + $1))
  while ((SECONDS < deadline)); do
    [[ -z $(node_pids) ]] && return 0
    sleep 0.2
  done
  return 1
}

log_tail() {
  local f
  for f in "$NODE_DIR/log/server.out" "$NODE_DIR/log/$NODE.log"; do
    [[ -f $f ]] || continue
    if grep -q '\[error\]' "$f"; then
      printf -- '--- first errors in %s ---\n' "$f" >&2
      grep -m 8 '\[error\]' "$f" >&2 || true
    fi
    printf -- '--- last lines of %s ---\n' "$f" >&2
    tail -n 20 "$f" >&2
  done
  f=$NODE_DIR/log/erl_crash.dump
  if [[ -f $f ]]; then
    printf -- '--- Erlang crash dump %s ---\n' "$f" >&2
    grep -m 1 '^Slogan:' "$f" >&2 || true
  fi
}

remove_node_dir() {
  [[ -n ${NODE_DIR:-} && -d $NODE_DIR ]] || return 0
  case $NODE_DIR in
    "$STATE_DIR"/node | */fleet-broker.*) rm -rf -- "$NODE_DIR" ;;
    *) say "not deleting unexpected node dir $NODE_DIR" ;;
  esac
}

# -------------------------------------------------------------------------------------------- start

# The rabbitmq user must be able to reach the node dir; a state dir under /root or a mode-700 temp
# dir is not reachable, so the node's files then go to a temp dir of their own.
choose_node_dir() {
  NODE_DIR=$STATE_DIR/node
  NODE_DIR_IS_EXTERNAL=0
  ((AS_ROOT)) || return 0
  mkdir -p "$NODE_DIR"
  chown rabbitmq:rabbitmq "$NODE_DIR"
  # shellcheck disable=SC2016 # $1 is expanded by the rabbitmq user's shell
  if ! as_rabbitmq 'test -w "$1" && test -x "$1"' "$NODE_DIR" 2>/dev/null; then
    rmdir "$NODE_DIR" 2>/dev/null || true
    NODE_DIR=$(mktemp -d "${TMPDIR:-/tmp}/fleet-broker.XXXXXX")
    chmod 755 "$NODE_DIR"
    NODE_DIR_IS_EXTERNAL=1
    say "the rabbitmq user cannot reach $STATE_DIR; node files go to $NODE_DIR"
  fi
}

prepare_node_dir() {
  mkdir -p "$NODE_DIR/mnesia" "$NODE_DIR/log"
  rm -f "$NODE_DIR/log/server.out"
  cat >"$NODE_DIR/rabbitmq.conf" <<EOF
# Written by Ops/scripts/broker.sh: a private test/demo node, loopback only, no plugins.
listeners.tcp.1 = 127.0.0.1:$PORT
log.console = false
log.file.level = info
EOF
  if [[ -n ${TLS_PORT:-} ]]; then
    make_tls_files
    cat >>"$NODE_DIR/rabbitmq.conf" <<EOF
listeners.ssl.default = 127.0.0.1:$TLS_PORT
ssl_options.cacertfile = $(tls_dir)/ca.pem
ssl_options.certfile = $(tls_dir)/server.pem
ssl_options.keyfile = $(tls_dir)/server.key
ssl_options.verify = verify_none
ssl_options.fail_if_no_peer_cert = false
EOF
  fi
  if [[ -n ${MGMT_PORT:-} ]]; then
    echo '[rabbitmq_management].' >"$NODE_DIR/enabled_plugins"
    printf 'management.tcp.port = %s\nmanagement.tcp.ip = 127.0.0.1\n' "$MGMT_PORT" >>"$NODE_DIR/rabbitmq.conf"
  else
    echo '[].' >"$NODE_DIR/enabled_plugins"
  fi
  : >"$NODE_DIR/rabbitmq-env.conf"
  chmod 644 "$NODE_DIR/rabbitmq.conf" "$NODE_DIR/enabled_plugins" "$NODE_DIR/rabbitmq-env.conf"
  if ((AS_ROOT)); then chown -R rabbitmq:rabbitmq "$NODE_DIR"; fi
}

# A throwaway CA (its key is deleted once it signed) and a server certificate for localhost and
# 127.0.0.1 (as an IP and as a DNS name: some clients, rabbitmq-c among them, match only DNS names).
make_tls_files() {
  command -v openssl >/dev/null 2>&1 || die "FLEET_BROKER_TLS=1 needs openssl"
  local dir log
  dir=$(tls_dir)
  log=$NODE_DIR/log/openssl.log
  rm -rf -- "$dir"
  mkdir -p "$dir"
  chmod 755 "$dir"
  printf 'basicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature, keyEncipherment\n%s\n%s\n' \
    'extendedKeyUsage = serverAuth' 'subjectAltName = DNS:localhost, IP:127.0.0.1, DNS:127.0.0.1' >"$dir/server.ext"
  if ! {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
      -subj "/CN=fleet throwaway test CA $NODE" -keyout "$dir/ca.key" -out "$dir/ca.pem" &&
      openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=localhost \
        -keyout "$dir/server.key" -out "$dir/server.csr" &&
      openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
        -CAserial "$dir/ca.srl" -days 30 -extfile "$dir/server.ext" -out "$dir/server.pem"
  } >"$log" 2>&1; then
    cat "$log" >&2
    die "could not create the TLS certificates in $dir"
  fi
  rm -f "$dir/ca.key" "$dir/ca.srl" "$dir/server.csr" "$dir/server.ext"
  chmod 644 "$dir/ca.pem" "$dir/server.pem"
  chmod 600 "$dir/server.key"  # prepare_node_dir gives the node dir to the rabbitmq user
}

launch() {
  # Everything the node reads comes from the node dir: no /etc/rabbitmq config, no enabled plugins.
  RABBITMQ_NODENAME=$NODE \
  RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
  RABBITMQ_NODE_PORT=$PORT \
  RABBITMQ_DIST_PORT=$DIST_PORT \
  RABBITMQ_MNESIA_BASE=$NODE_DIR/mnesia \
  RABBITMQ_LOG_BASE=$NODE_DIR/log \
  RABBITMQ_CONFIG_FILE=$NODE_DIR/rabbitmq.conf \
  RABBITMQ_ADVANCED_CONFIG_FILE=$NODE_DIR/advanced.config \
  RABBITMQ_ENABLED_PLUGINS_FILE=$NODE_DIR/enabled_plugins \
  RABBITMQ_CONF_ENV_FILE=$NODE_DIR/rabbitmq-env.conf \
  RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS='-kernel inet_dist_use_interface {127,0,0,1}' \
  ERL_EPMD_ADDRESS=127.0.0.1 \
  ERL_CRASH_DUMP=$NODE_DIR/log/erl_crash.dump \
    setsid nohup "${SERVER[@]}" >"$NODE_DIR/log/server.out" 2>&1 </dev/null 9>&- &
  LAUNCHER_PID=$!
}

epmd_has_node() {
  command -v epmd >/dev/null 2>&1 || return 0
  epmd -names 2>/dev/null | grep -q "^name ${NODE%@*} at port "
}

wait_started() {
  local deadline=$((SECONDS + START_TIMEOUT)) left
  while :; do
    left=$((deadline - SECONDS))
    ((left > 0)) || return 1
    kill -0 "$LAUNCHER_PID" 2>/dev/null || return 1
    # epmd -names is cheap; a rabbitmqctl call costs ~0.5 s of CPU, which slows the booting node.
    if epmd_has_node && ctl await_startup --timeout "$left" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
}

cmd_start() {
  [[ $TLS == 0 || $TLS == 1 ]] || die "FLEET_BROKER_TLS must be 0 or 1, not '$TLS'"
  if load_state; then
    if node_pingable; then
      if [[ $TLS == 1 && -z $TLS_PORT ]]; then
        die "node $NODE runs without TLS; stop it first to start it with FLEET_BROKER_TLS=1"
      fi
      if ! app_running; then
        say "node $NODE runs but its app is stopped: starting the app"
        ctl start_app >/dev/null
      fi
      [[ -f $ENV_FILE ]] || write_env
      say "already running: $NODE"
      print_env
      return 0
    fi
    say "cleaning up a stale node ($NODE is not running)"
    kill_node_procs
    remove_node_dir
    rm -f "$STATE_FILE" "$ENV_FILE"
  fi
  rm -f "$ENV_FILE"
  ensure_cookie

  local attempt t0=$SECONDS ports tls_note=""
  for attempt in 1 2 3; do
    TLS_PORT=""
    if [[ $TLS == 1 ]]; then
      ports=$(free_ports 3) || die "could not find free ports"
      read -r PORT DIST_PORT TLS_PORT <<<"$ports"
      tls_note=", AMQPS 127.0.0.1:$TLS_PORT"
    else
      ports=$(free_ports 2) || die "could not find free ports"
      read -r PORT DIST_PORT <<<"$ports"
    fi
    MGMT_PORT=""
    if [[ $MANAGEMENT == 1 ]]; then
      for p in $(free_ports 4); do
        if [[ $p != "$PORT" && $p != "$DIST_PORT" && $p != "${TLS_PORT:-}" ]]; then MGMT_PORT=$p; break; fi
      done
      [[ -n $MGMT_PORT ]] || die "could not find free ports"
      tls_note+=", HTTP API 127.0.0.1:$MGMT_PORT"
    fi
    NODE=fleet-$PORT@localhost
    choose_node_dir
    prepare_node_dir
    say "starting $NODE (AMQP 127.0.0.1:$PORT$tls_note, dist $DIST_PORT, files in $NODE_DIR)"
    launch
    write_state
    if wait_started; then
      write_env
      say "$NODE is up after $((SECONDS - t0)) s"
      amqp_url
      echo
      return 0
    fi
    if grep -qsE 'eaddrinuse|address already in use' "$NODE_DIR/log/server.out" "$NODE_DIR/log/$NODE.log" &&
      ((attempt < 3)); then
      say "port clash, retrying with other ports"
      kill_node_procs
      remove_node_dir
      continue
    fi
    break
  done
  log_tail
  local why="did not start within ${START_TIMEOUT}s"
  if ! kill -0 "$LAUNCHER_PID" 2>/dev/null; then why="exited during start after $((SECONDS - t0)) s"; fi
  kill_node_procs
  rm -f "$STATE_FILE"
  die "node $NODE $why (logs kept in $NODE_DIR/log)"
}

# --------------------------------------------------------------------------------------------- stop

cmd_stop() {
  local keep=0 arg
  for arg in "$@"; do
    case $arg in
      --keep) keep=1 ;;
      *) die "unknown option for stop: $arg" ;;
    esac
  done
  if ! load_state; then
    say "not running (no node in $STATE_DIR)"
    rm -f "$ENV_FILE"
    return 0
  fi
  if node_pingable; then
    say "stopping $NODE"
    ctl stop >/dev/null 2>&1 || say "rabbitmqctl stop failed; killing the node"
  else
    say "$NODE is not responding"
  fi
  wait_gone 30 || true
  kill_node_procs
  rm -f "$STATE_FILE" "$ENV_FILE"
  if ((keep)); then
    say "stopped; data and logs kept in $NODE_DIR"
  else
    remove_node_dir
    say "stopped; data deleted"
  fi
}

# ------------------------------------------------------------------------------------- other verbs

require_running() {
  load_state || die "broker not running (state dir $STATE_DIR); start it: bash Ops/scripts/broker.sh start"
  node_pingable || die "node $NODE does not respond (state dir $STATE_DIR); restart it: bash Ops/scripts/broker.sh stop && bash Ops/scripts/broker.sh start"
}

cmd_status() {
  if load_state && node_pingable; then
    local app=stopped
    if app_running; then app=running; fi
    local tls=""
    if [[ -n $TLS_PORT ]]; then tls=", $(amqps_url)"; fi
    echo "running: node $NODE, app $app, $(amqp_url)$tls (state dir $STATE_DIR)"
    return 0
  fi
  echo "not running (state dir $STATE_DIR)"
  return 3
}

cmd_env() {
  if ! load_state || [[ ! -f $ENV_FILE ]]; then
    die "broker not running (no $ENV_FILE); start it: bash Ops/scripts/broker.sh start"
  fi
  print_env
}

main() {
  local verb=${1:-}
  [[ -n $verb ]] || { usage >&2; exit 2; }
  shift
  case $verb in
    -h | --help | help) usage; return 0 ;;
  esac
  resolve_state_dir
  setup_tools
  case $verb in
    start | stop)
      exec 9>"$STATE_DIR/.lock"
      flock -w 120 9 || die "another broker.sh holds $STATE_DIR/.lock"
      ;;
  esac
  case $verb in
    start) [[ $# -eq 0 ]] || die "start takes no arguments"; cmd_start ;;
    stop) cmd_stop "$@" ;;
    status) cmd_status ;;
    env) cmd_env ;;
    stop-app) require_running; say "stop_app on $NODE"; ctl stop_app >/dev/null ;;
    start-app) require_running; say "start_app on $NODE"; ctl start_app >/dev/null ;;
    restart-app)
      require_running
      say "restarting the app on $NODE"
      ctl stop_app >/dev/null
      ctl start_app >/dev/null
      ;;
    *) usage >&2; die "unknown command: $verb" ;;
  esac
}

main "$@"

#!/usr/bin/env bash
# The test command: bash Ops/scripts/test.sh [extra `swift test` arguments, e.g. --filter AMQPClientTests]
#
# 1. installs the Debian packages (Ops/scripts/install-deps.sh; a no-op when present),
# 2. starts a private RabbitMQ node in a temp dir of its own (never the demo broker), while
# 3. `swift build --build-tests` builds everything (debug),
# 4. runs `swift test --skip-build "$@"` with, in the environment:
#      FLEET_TEST_AMQP_URL     amqp://guest:guest@127.0.0.1:<port>/%2F of that node
#      FLEET_TEST_BROKER_CTL   rabbitmqctl command line for that node (append stop_app, start_app,
#                              import_definitions FILE, list_queues ...)
#      FLEET_TEST_BROKER_NODE  its Erlang node name; FLEET_TEST_BROKER_PORT its AMQP port
#      FLEET_BIN               the built `fleet` executable
#      FLEET_REPO              the repository root
#      FLEET_TEST_PG_URL       postgres://fleet@127.0.0.1:<port>/fleet of a private PostgreSQL cluster (Ops/scripts/
#                              postgres.sh: initdb in the temp dir, its own port, fsync off, stopped at the end);
#      FLEET_TEST_PG_ADMIN_URL its database `postgres`, for tests that create databases of their own
#      FLEET_TEST_LLM_PROXY    http://127.0.0.1:<port> of Ops/llm/fault_proxy.py in front of a local model server
#                              (SmolLM2-135M-Instruct on llama-cpp-python's OpenAI-compatible API; its API is
#                              <proxy>/v1). Ops/llm/llm-server.sh installs it (the first time it builds llama.cpp,
#                              ~5 min at low priority during the Swift build; later runs reuse the wheel in
#                              ~/.cache/fleet/wheels) and the server's state lives in the temp dir.
# 5. stops the node and deletes the temp dir on exit; exits with swift test's status.
#
# Tests run with swift test's default parallelism (no --no-parallel) and all share the one node.
# Optional: FLEET_SCRATCH_PATH=<dir> builds in that dir instead of .build; FLEET_TEST_KEEP=1 keeps
# the temp dir and the broker's logs.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PROG="test.sh"
BROKER="$REPO_ROOT/Ops/scripts/broker.sh"
LLM="$REPO_ROOT/Ops/llm/llm-server.sh"
PG="$REPO_ROOT/Ops/scripts/postgres.sh"

die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }
say() { printf '%s: %s\n' "$PROG" "$*" >&2; }

cd "$REPO_ROOT"
command -v swift >/dev/null 2>&1 || die "swift is not on PATH"

SWIFT_FLAGS=()
if [[ -n ${FLEET_SCRATCH_PATH:-} ]]; then SWIFT_FLAGS+=(--scratch-path "$FLEET_SCRATCH_PATH"); fi

bash "$REPO_ROOT/Ops/scripts/install-deps.sh"

echo "== fleet tests"
echo "   swift:           $(swift --version 2>&1 | grep -m1 -o 'Swift version [^ ]*' || echo unknown)"
echo "   rabbitmq-server: $(dpkg-query -W -f='${Version}' rabbitmq-server 2>/dev/null || echo unknown)"
echo "   erlang:          $(dpkg-query -W -f='${Version}' erlang-base 2>/dev/null || echo unknown)"
echo "   librabbitmq:     $(pkg-config --modversion librabbitmq 2>/dev/null || echo unknown)"
echo "   sqlite3:         $(pkg-config --modversion sqlite3 2>/dev/null || echo unknown)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/fleet-test.XXXXXX")
chmod 755 "$WORK" # the broker may run as the rabbitmq user, which must reach its dir
# Passed explicitly to every broker.sh call (never exported): the demo broker is never touched.
TEST_BROKER_DIR="$WORK/broker"
broker() { FLEET_BROKER_DIR="$TEST_BROKER_DIR" bash "$BROKER" "$@"; }
broker_pid=""
# epmd (Erlang's port mapper, shared by all nodes) outlives the node; stop it at the end if this
# run started it and no node uses it any more (`epmd -kill` refuses while nodes are registered).
epmd_was_running=0
if epmd -names >/dev/null 2>&1; then epmd_was_running=1; fi

# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
  local rc=$? node_dir
  trap - EXIT INT TERM
  # A broker still starting finishes first (it ignores SIGINT as a background job), then stops.
  if [[ -n $broker_pid ]]; then wait "$broker_pid" 2>/dev/null || true; fi
  if [[ -n ${llm_install_pid:-} ]]; then kill "$llm_install_pid" 2>/dev/null || true; wait "$llm_install_pid" 2>/dev/null || true; fi
  if [[ -f $WORK/llm/proxy.pid ]]; then kill "$(cat "$WORK/llm/proxy.pid")" 2>/dev/null || true; fi
  bash "$LLM" stop --dir "$WORK/llm" >/dev/null 2>&1 || true
  if [[ -n ${pg_pid:-} ]]; then wait "$pg_pid" 2>/dev/null || true; fi
  FLEET_PG_DIR="$WORK/pg" bash "$PG" stop >/dev/null 2>&1 || true
  if [[ ${FLEET_TEST_KEEP:-0} == 1 ]]; then
    node_dir=$(sed -n 's/^NODE_DIR=//p' "$TEST_BROKER_DIR/node.state" 2>/dev/null || true)
    broker stop --keep >/dev/null 2>&1 || true
    say "kept $WORK; broker logs in ${node_dir:-$TEST_BROKER_DIR/node}/log"
  else
    broker stop >/dev/null 2>&1 || say "could not stop the test broker in $TEST_BROKER_DIR"
    rm -rf -- "$WORK"
  fi
  if ((!epmd_was_running)); then epmd -kill >/dev/null 2>&1 || true; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The local model server's install (a llama.cpp build the first time) runs at low priority during the Swift build.
say "installing the local model server in the background (log in $WORK/llm-install.log)"
nice -n 10 bash "$LLM" install >"$WORK/llm-install.log" 2>&1 &
llm_install_pid=$!

# The PostgreSQL cluster starts (~2 s) while Swift builds.
say "starting a private PostgreSQL cluster (data in $WORK/pg)"
FLEET_PG_DIR="$WORK/pg" FLEET_PG_FAST=1 bash "$PG" start >"$WORK/pg-start.log" 2>&1 &
pg_pid=$!

# The broker boots (~5-10 s) while Swift builds.
say "starting a private broker (state in $TEST_BROKER_DIR)"
broker start >"$WORK/broker-start.log" 2>&1 &
broker_pid=$!

say "swift build --build-tests ${SWIFT_FLAGS[*]}"
build_rc=0
swift build --build-tests "${SWIFT_FLAGS[@]}" || build_rc=$?

# await_started PID LOG WHAT: waits for a background start; on failure shows its log (LINES of it) and stops.
await_started() {
  local rc=0
  wait "$1" || rc=$?
  if ((rc != 0)); then
    tail -n "${4:-200}" "$2" >&2
    die "$3"
  fi
}
await_started "$broker_pid" "$WORK/broker-start.log" "the test broker did not start"
broker_pid=""
((build_rc == 0)) || die "swift build --build-tests failed (exit $build_rc)"

await_started "$pg_pid" "$WORK/pg-start.log" "the test PostgreSQL cluster did not start"
pg_pid=""
# shellcheck source=/dev/null
source "$WORK/pg/pg.env"
export FLEET_TEST_PG_URL="$FLEET_PG_URL" FLEET_TEST_PG_ADMIN_URL="$FLEET_PG_ADMIN_URL"
unset FLEET_PG_URL FLEET_PG_ADMIN_URL FLEET_PG_PORT

await_started "$llm_install_pid" "$WORK/llm-install.log" "the local model server did not install" 60
llm_install_pid=""
mkdir -p "$WORK/llm"
llm_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
bash "$LLM" start --port "$llm_port" --dir "$WORK/llm" >/dev/null || die "the local model server did not start"
python3 "$REPO_ROOT/Ops/llm/fault_proxy.py" --upstream "http://127.0.0.1:$llm_port" --port 0 \
  --ready-file "$WORK/llm/proxy.port" >"$WORK/llm/proxy.log" 2>&1 &
echo $! >"$WORK/llm/proxy.pid"
for _ in $(seq 1 100); do [[ -s $WORK/llm/proxy.port ]] && break; sleep 0.1; done
[[ -s $WORK/llm/proxy.port ]] || { cat "$WORK/llm/proxy.log" >&2; die "the model server's fault proxy did not start"; }
export FLEET_TEST_LLM_PROXY="http://127.0.0.1:$(cat "$WORK/llm/proxy.port")"

# shellcheck source=/dev/null
source "$TEST_BROKER_DIR/broker.env"
BIN_DIR=$(swift build --show-bin-path "${SWIFT_FLAGS[@]}")
[[ -x $BIN_DIR/fleet ]] || die "no fleet executable in $BIN_DIR"

export FLEET_TEST_AMQP_URL="$FLEET_AMQP_URL"
export FLEET_TEST_BROKER_CTL="$FLEET_BROKER_CTL"
export FLEET_TEST_BROKER_NODE="$FLEET_BROKER_NODE"
export FLEET_TEST_BROKER_PORT="$FLEET_BROKER_PORT"
export FLEET_BIN="$BIN_DIR/fleet"
export FLEET_REPO="$REPO_ROOT"
# Tests must not pick up a developer's demo settings by accident.
unset FLEET_AMQP_URL FLEET_BROKER_CTL FLEET_BROKER_NODE FLEET_BROKER_PORT FLEET_BROKER_LOG FLEET_BROKER_DIR FLEET_STORE

echo "   broker:          $FLEET_TEST_BROKER_NODE at $FLEET_TEST_AMQP_URL"
echo "   fleet binary:    $FLEET_BIN"
echo "   postgresql:      $FLEET_TEST_PG_URL"
echo "   model server:    $FLEET_TEST_LLM_PROXY/v1 (fault proxy) -> 127.0.0.1:$llm_port"

say "swift test --skip-build ${SWIFT_FLAGS[*]} $*"
test_rc=0
swift test --skip-build "${SWIFT_FLAGS[@]}" "$@" || test_rc=$?
if ((test_rc == 0)); then say "tests passed"; else say "tests FAILED (exit $test_rc)"; fi
exit "$test_rc"

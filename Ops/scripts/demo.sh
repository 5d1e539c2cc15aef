#!/usr/bin/env bash
# The demo: a private broker, two noop workers, DEMO_JOBS jobs (default 20000) plus ~1% malformed
# messages that end up dead-lettered; waits until the queue is drained and shows what happened.
#
#   bash Ops/scripts/demo.sh
#   DEMO_JOBS=100000 bash Ops/scripts/demo.sh
#
# Settings (environment): DEMO_JOBS (20000), DEMO_BAD (malformed messages, default 1% of DEMO_JOBS,
# at least 4), DEMO_WORKERS (2), DEMO_CONCURRENCY (64), DEMO_TIMEOUT (seconds to drain, 300).
# Everything lives in <repo>/.fleet/ (gitignored): the broker (left running; stop it with
# `bash Ops/scripts/broker.sh stop`), fleet.sqlite, demo-jobs.ndjson, demo-bad.txt, worker-N.log.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PROG="demo.sh"
FLEET_DIR="$REPO_ROOT/.fleet"
BROKER="$REPO_ROOT/Ops/scripts/broker.sh"
JOBS=${DEMO_JOBS:-20000}
WORKERS=${DEMO_WORKERS:-2}
CONCURRENCY=${DEMO_CONCURRENCY:-64}
TIMEOUT=${DEMO_TIMEOUT:-300}
QUEUE=fleet.noop
STEPS=10
step_no=0

die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }
say() { printf '%s: %s\n' "$PROG" "$*"; }
step() { step_no=$((step_no + 1)); printf '\n== [%d/%d] %s\n' "$step_no" "$STEPS" "$*"; }
run() { printf '   $ %s\n' "$*"; "$@"; }
is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }

is_positive() { [[ $1 =~ ^[0-9]+$ ]] && (($1 > 0)); }

is_positive "$JOBS" || die "DEMO_JOBS must be a positive integer (got '$JOBS')"
BAD=${DEMO_BAD:-$((JOBS / 100 < 4 ? 4 : JOBS / 100))}
is_uint "$BAD" || die "DEMO_BAD must be a non-negative integer (got '$BAD')"
is_positive "$WORKERS" || die "DEMO_WORKERS must be a positive integer (got '$WORKERS')"
is_positive "$CONCURRENCY" || die "DEMO_CONCURRENCY must be a positive integer (got '$CONCURRENCY')"
is_positive "$TIMEOUT" || die "DEMO_TIMEOUT must be a positive number of seconds (got '$TIMEOUT')"

cd "$REPO_ROOT"
mkdir -p "$FLEET_DIR"

worker_pids=()
stop_workers() {
  local pid i alive rc
  ((${#worker_pids[@]})) || return 0
  say "sending SIGTERM to workers: ${worker_pids[*]}"
  kill -TERM "${worker_pids[@]}" 2>/dev/null || true
  for ((i = 0; i < 300; i++)); do
    alive=0
    for pid in "${worker_pids[@]}"; do if kill -0 "$pid" 2>/dev/null; then alive=1; fi; done
    ((alive)) || break
    sleep 0.1
  done
  for pid in "${worker_pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      say "worker $pid did not stop within 30 s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rc=0
    wait "$pid" 2>/dev/null || rc=$?
    say "worker $pid exited with status $rc"
  done
  worker_pids=()
}
# shellcheck disable=SC2317 # invoked by the EXIT trap
on_exit() {
  local rc=$?
  trap - EXIT INT TERM
  stop_workers
  if ((rc != 0)); then
    printf '\n%s: failed (exit %d). Worker logs: %s/worker-*.log; broker: bash Ops/scripts/broker.sh status\n' \
      "$PROG" "$rc" "$FLEET_DIR" >&2
  fi
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --------------------------------------------------------------------------------------------------
step "installing Debian packages (no-op when present)"
run bash "$REPO_ROOT/Ops/scripts/install-deps.sh"

step "starting (or reusing) the demo broker in $FLEET_DIR/broker"
export FLEET_BROKER_DIR="$FLEET_DIR/broker"
run bash "$BROKER" start
set -a
# shellcheck source=/dev/null
source "$FLEET_BROKER_DIR/broker.env"
set +a
export FLEET_STORE="$FLEET_DIR/fleet.sqlite"
say "FLEET_AMQP_URL=$FLEET_AMQP_URL"
say "FLEET_STORE=$FLEET_STORE"
say "broker node $FLEET_BROKER_NODE, log $FLEET_BROKER_LOG"
read -ra CTL <<<"$FLEET_BROKER_CTL"

step "building fleet (release)"
run swift build -c release --product fleet
F="$(swift build -c release --show-bin-path)/fleet"
[[ -x $F ]] || die "no fleet executable at $F"
say "fleet binary: $F"

step "declaring the topology"
run "$F" topology apply

step "generating $JOBS noop jobs and $BAD malformed messages"
RUN_ID=$(date +%Y%m%d-%H%M%S)-$$
JOBS_FILE="$FLEET_DIR/demo-jobs.ndjson"
BAD_FILE="$FLEET_DIR/demo-bad.txt"
awk -v n="$JOBS" -v run="$RUN_ID" 'BEGIN {
  for (i = 1; i <= n; i++) printf "{\"id\":\"demo-%s-%d\",\"kind\":\"noop\",\"data\":{\"n\":%d}}\n", run, i, i
}' >"$JOBS_FILE"
# One message per line, four kinds of bad input in turn: not JSON, truncated JSON, a job without an
# id, JSON that is not an object.
awk -v n="$BAD" -v run="$RUN_ID" 'BEGIN {
  for (i = 1; i <= n; i++) {
    k = i % 4
    if (k == 1) printf "not json (demo-%s bad %d)\n", run, i
    else if (k == 2) printf "{\"id\":\"demo-%s-bad-%d\",\"kind\":\"noop\",\"data\":{\"n\":\n", run, i
    else if (k == 3) printf "{\"kind\":\"noop\",\"data\":{\"n\":%d,\"note\":\"missing id, demo-%s\"}}\n", i, run
    else printf "[\"demo-%s\", %d]\n", run, i
  }
}' >"$BAD_FILE"
say "run id $RUN_ID: $(wc -l <"$JOBS_FILE") jobs in $JOBS_FILE, $(wc -l <"$BAD_FILE") bad messages in $BAD_FILE"

step "starting $WORKERS workers (kinds noop, concurrency $CONCURRENCY)"
for ((w = 1; w <= WORKERS; w++)); do
  log="$FLEET_DIR/worker-$w.log"
  printf '   $ %s worker --kinds noop --concurrency %s >%s 2>&1 &\n' "$F" "$CONCURRENCY" "$log"
  "$F" worker --kinds noop --concurrency "$CONCURRENCY" >"$log" 2>&1 </dev/null &
  worker_pids+=("$!")
done
sleep 1
for pid in "${worker_pids[@]}"; do
  kill -0 "$pid" 2>/dev/null || { tail -n 20 "$FLEET_DIR"/worker-*.log >&2; die "worker $pid exited at start"; }
done
say "workers running: ${worker_pids[*]}"

step "enqueueing the jobs and publishing the malformed messages"
t_start=$(date +%s.%N)
run "$F" enqueue "$JOBS_FILE"
if ((BAD > 0)); then
  # -l: each line is one message, all on one connection.
  # shellcheck disable=SC2016 # printed literally
  printf '   $ amqp-publish --url "$FLEET_AMQP_URL" -e fleet.jobs -r noop -p -l < %s\n' "$BAD_FILE"
  amqp-publish --url "$FLEET_AMQP_URL" -e fleet.jobs -r noop -p -l <"$BAD_FILE"
fi

step "waiting until $QUEUE is drained (0 ready, 0 unacked; gives up after ${TIMEOUT}s)"
# Prints "<ready> <unacked or -> <consumers>" for $QUEUE from `fleet status --json`.
queue_counts() {
  "$F" status --json | /usr/bin/python3 -c '
import json, sys
name = sys.argv[1]
doc = json.load(sys.stdin)
for q in doc.get("queues", []):
    if q.get("name") == name:
        ready = q.get("messages_ready", q.get("ready", q.get("messages")))
        unacked = q.get("messages_unacknowledged", q.get("unacked", "-"))
        print(ready, unacked, q.get("consumers", "?"))
        break
else:
    sys.exit("queue %s not in fleet status --json" % name)
' "$QUEUE"
}
# Unacked counts straight from the broker (AMQP's queue.declare only reports ready messages).
broker_unacked() {
  "${CTL[@]}" list_queues -q --no-table-headers name messages_unacknowledged 2>/dev/null |
    awk -v q="$QUEUE" '$1 == q { print $2; found = 1 } END { if (!found) print "?" }'
}
deadline=$((SECONDS + TIMEOUT))
last_report=0
while :; do
  counts=$(queue_counts) || die "fleet status --json failed"
  read -r ready unacked consumers <<<"$counts"
  if [[ $ready == 0 && ($unacked == 0 || $unacked == -) ]]; then
    unacked=$(broker_unacked)
    [[ $unacked == 0 ]] && break
  fi
  alive=0
  for pid in "${worker_pids[@]}"; do if kill -0 "$pid" 2>/dev/null; then alive=$((alive + 1)); fi; done
  ((alive > 0)) || { tail -n 20 "$FLEET_DIR"/worker-*.log >&2; die "all workers exited while $ready messages were ready"; }
  if ((SECONDS >= deadline)); then
    die "gave up after ${TIMEOUT}s: $QUEUE still has $ready ready and $unacked unacked messages ($alive workers alive, logs in $FLEET_DIR/worker-*.log)"
  fi
  if ((SECONDS - last_report >= 5)); then
    say "$QUEUE: $ready ready, $unacked unacked, $consumers consumers, $alive/$WORKERS workers alive"
    last_report=$SECONDS
  fi
  sleep 1
done
t_end=$(date +%s.%N)
awk -v n="$((JOBS + BAD))" -v a="$t_start" -v b="$t_end" \
  'BEGIN { d = b - a; printf "demo.sh: drained %d messages in %.1f s (%.0f msg/s, enqueue included; 1 s polling)\n", n, d, n / d }'

step "results, status and dead letters"
run "$F" results --summary
echo
run "$F" results --limit 5
echo
run "$F" status
echo
DLQ_FILE="$FLEET_DIR/demo-dlq.txt"
printf '   $ %s dlq list --kind noop > %s\n' "$F" "$DLQ_FILE"
"$F" dlq list --kind noop >"$DLQ_FILE"
head -n 40 "$DLQ_FILE"
if (($(wc -l <"$DLQ_FILE") > 40)); then say "... $(wc -l <"$DLQ_FILE") lines in all: $DLQ_FILE"; fi

step "stopping the workers"
stop_workers

cat <<EOF

Done. The broker is still running for you to explore:
  eval "\$(bash Ops/scripts/broker.sh env)"   # FLEET_AMQP_URL, FLEET_BROKER_CTL, ...
  export FLEET_STORE=$FLEET_STORE
  $F status
  \$FLEET_BROKER_CTL list_queues name messages consumers
Logs: $FLEET_DIR/worker-*.log, broker: $FLEET_BROKER_LOG
Stop the broker: bash Ops/scripts/broker.sh stop
EOF

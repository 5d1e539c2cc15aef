#!/usr/bin/env bash
# The demo: a sample email campaign and a push campaign end to end. A private broker, a local SMTP sink (aiosmtpd
# writing a Maildir), the local APNs/FCM emulator (Ops/push-emulator), DEMO_PEOPLE profiles imported (default
# 5000; de/fr/en, three time zones) and a 48-product catalog, consents, phones and shop events applied through crm
# jobs (20% opt out of the newsletter, 10% of push offers; 9 in 10 have a phone), the recommender trained and a
# block of picks made per person (content jobs), a segment of everyone, and the campaigns sent to it with
# `fleet campaign send` (email: template `monthly`, variants a/b, a 10% holdout, frequency cap DEMO_CAP=2 a day;
# push: template `offer`, quiet hours over the current hour in New York): one job per person and campaign; two
# workers render and deliver over SMTP and HTTP/2; waits until the queues are drained, summarizes the results
# (`fleet campaign status`, `fleet results --summary`) and says where the mails and pushes are.
#
#   bash Ops/scripts/demo.sh
#   DEMO_PEOPLE=100000 bash Ops/scripts/demo.sh
#
# Settings (environment): DEMO_PEOPLE (5000), DEMO_CAP (2), DEMO_WORKERS (2), DEMO_CONCURRENCY (64), DEMO_TIMEOUT (seconds to drain, 300).
# Everything lives in <repo>/.fleet/ (gitignored): the broker (left running; stop it with
# `bash Ops/scripts/broker.sh stop`), fleet.sqlite (made anew by each run), demo-data/, worker-N.log.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PROG="demo.sh"
FLEET_DIR="$REPO_ROOT/.fleet"
BROKER="$REPO_ROOT/Ops/scripts/broker.sh"
JOBS=${DEMO_PEOPLE:-${DEMO_JOBS:-5000}}
WORKERS=${DEMO_WORKERS:-2}
CONCURRENCY=${DEMO_CONCURRENCY:-64}
TIMEOUT=${DEMO_TIMEOUT:-300}
QUEUE=fleet.email
STEPS=15
step_no=0

die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }
say() { printf '%s: %s\n' "$PROG" "$*"; }
step() { step_no=$((step_no + 1)); printf '\n== [%d/%d] %s\n' "$step_no" "$STEPS" "$*"; }
run() { printf '   $ %s\n' "$*"; "$@"; }
is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }

is_positive() { [[ $1 =~ ^[0-9]+$ ]] && (($1 > 0)); }

is_positive "$JOBS" || die "DEMO_PEOPLE must be a positive integer (got '$JOBS')"
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
  if [[ -n ${serve_pid:-} ]]; then kill -TERM "$serve_pid" 2>/dev/null || true; fi
  if [[ -n ${push_pid:-} ]]; then kill -TERM "$push_pid" 2>/dev/null || true; fi
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
# A fresh store each run: the campaign (and its job ids) are new each time.
rm -f "$FLEET_STORE" "$FLEET_STORE-wal" "$FLEET_STORE-shm"
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

step "generating the sample data: $JOBS profiles and their consents"
DATA_DIR="$FLEET_DIR/demo-data"
/usr/bin/python3 "$REPO_ROOT/Ops/scripts/demo_campaign.py" "$DATA_DIR" "$JOBS"

step "importing the profiles; a segment of everyone"
run "$F" profiles import "$DATA_DIR/profiles.ndjson" --no-progress
run "$F" catalog import "$DATA_DIR/catalog.ndjson"
run "$F" segment define everyone '{"all": []}'

step "starting the SMTP sink (aiosmtpd writing a Maildir), the APNs/FCM emulator and $WORKERS workers (kinds crm,email,push,content)"
export FLEET_SMTP_SINK_DIR="$FLEET_DIR/smtp"
bash "$REPO_ROOT/Ops/scripts/smtp-sink.sh" stop
rm -rf "$FLEET_SMTP_SINK_DIR/maildir"
SINK_PORT=$(bash "$REPO_ROOT/Ops/scripts/smtp-sink.sh" start)
export FLEET_EMAIL_TEMPLATES="$REPO_ROOT/Templates" FLEET_EMAIL_DELIVERY=smtp FLEET_EMAIL_SMTP_HOST=127.0.0.1
export FLEET_EMAIL_SMTP_PORT="$SINK_PORT" FLEET_EMAIL_SECRET=${FLEET_EMAIL_SECRET:-demo-secret-change-me}
export FLEET_EMAIL_FREQUENCY_CAP=${DEMO_CAP:-2}
say "SMTP sink on 127.0.0.1:$SINK_PORT, Maildir $FLEET_SMTP_SINK_DIR/maildir"
# The engagement service answers the mails' links; the demo's "internet" is loopback.
SERVE_PORT=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export FLEET_PUBLIC_URL="http://127.0.0.1:$SERVE_PORT" FLEET_EMAIL_TRACK_OPENS=on FLEET_EMAIL_TRACK_CLICKS=on
printf '   $ %s serve --listen 127.0.0.1:%s >%s 2>&1 &\n' "$F" "$SERVE_PORT" "$FLEET_DIR/serve.log"
"$F" serve --listen "127.0.0.1:$SERVE_PORT" >"$FLEET_DIR/serve.log" 2>&1 </dev/null &
serve_pid=$!
for ((i = 0; i < 100; i++)); do
  /usr/bin/python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' "$FLEET_PUBLIC_URL/healthz" 2>/dev/null && break
  kill -0 "$serve_pid" 2>/dev/null || { cat "$FLEET_DIR/serve.log" >&2; die "fleet serve exited at start"; }
  sleep 0.1
done
say "fleet serve on $FLEET_PUBLIC_URL (pid $serve_pid, log $FLEET_DIR/serve.log)"
# The push services: the local emulator (HTTP/2 over TLS with its own CA, real JWT checks), answering the
# phones listed in unregistered.txt as unregistered. Each worker makes its own provider token at start: the
# emulator's 20-minute rule per key is off for the demo's two workers.
PUSH_DIR="$FLEET_DIR/push"
rm -rf "$PUSH_DIR" && mkdir -p "$PUSH_DIR"
/usr/bin/env python3 "$REPO_ROOT/Ops/push-emulator/make_credentials.py" --out "$PUSH_DIR/creds" >/dev/null
PUSH_CREDS=$(cat "$PUSH_DIR/creds/credentials.json")
creds() { /usr/bin/python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$PUSH_CREDS" "$1"; }
printf '   $ python3 Ops/push-emulator/push_emulator.py --port 0 --unregistered %s --accepted %s ... &\n' "$DATA_DIR/unregistered.txt" "$PUSH_DIR/accepted.ndjson"
/usr/bin/env python3 "$REPO_ROOT/Ops/push-emulator/push_emulator.py" --host 127.0.0.1 --port 0 --state-dir "$PUSH_DIR/state" \
  --apns-key-id "$(creds apns_key_id)" --apns-team-id "$(creds apns_team_id)" --apns-public-key "$(creds apns_public_key)" \
  --fcm-credentials "$(creds fcm_credentials)" --no-apns-token-update-limit --unregistered "$DATA_DIR/unregistered.txt" \
  --accepted "$PUSH_DIR/accepted.ndjson" --ready-file "$PUSH_DIR/ready.json" >"$PUSH_DIR/emulator.log" 2>&1 </dev/null &
push_pid=$!
for ((i = 0; i < 100; i++)); do [[ -s $PUSH_DIR/ready.json ]] && break; sleep 0.1; done
[[ -s $PUSH_DIR/ready.json ]] || { cat "$PUSH_DIR/emulator.log" >&2; die "the push emulator did not start"; }
ready() { /usr/bin/python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); v = d[sys.argv[2]]; print(list(v.values())[0] if isinstance(v, dict) else v)' "$PUSH_DIR/ready.json" "$1"; }
export FLEET_PUSH_APNS_URL="$(ready url)" FLEET_PUSH_FCM_URL="$(ready url)" FLEET_PUSH_CA_FILE="$(ready ca_file)"
export FLEET_PUSH_APNS_KEY_FILE="$(creds apns_private_key)" FLEET_PUSH_APNS_KEY_ID="$(creds apns_key_id)"
export FLEET_PUSH_APNS_TEAM_ID="$(creds apns_team_id)" FLEET_PUSH_APNS_TOPIC=com.example.shop
export FLEET_PUSH_FCM_CREDENTIALS="$(ready fcm_credentials_effective)" FLEET_PUSH_TEMPLATES="$REPO_ROOT/Templates"
# Quiet hours over the current hour in New York, so that a third of the audience is in them whenever the demo runs
# (a real fleet says 21:00-08:00).
NY_HOUR=$(TZ=America/New_York date +%H)
export FLEET_PUSH_QUIET_HOURS="$(printf '%02d:00-%02d:00' "$((10#$NY_HOUR))" "$(((10#$NY_HOUR + 1) % 24))")"
say "push emulator on $FLEET_PUSH_APNS_URL (pid $push_pid); quiet hours $FLEET_PUSH_QUIET_HOURS in each person's zone"
for ((w = 1; w <= WORKERS; w++)); do
  log="$FLEET_DIR/worker-$w.log"
  printf '   $ %s worker --kinds crm,email,push,content --concurrency %s >%s 2>&1 &\n' "$F" "$CONCURRENCY" "$log"
  "$F" worker --kinds crm,email,push,content --concurrency "$CONCURRENCY" >"$log" 2>&1 </dev/null &
  worker_pids+=("$!")
done
sleep 1
for pid in "${worker_pids[@]}"; do
  kill -0 "$pid" 2>/dev/null || { tail -n 20 "$FLEET_DIR"/worker-*.log >&2; die "worker $pid exited at start"; }
done

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
drain() {
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
}

step "applying consents, phones and shop events through crm jobs (20% opt out of the newsletter, 10% of push offers) and waiting for fleet.crm"
QUEUE=fleet.crm
run "$F" enqueue "$DATA_DIR/consents.ndjson"
run "$F" enqueue "$DATA_DIR/devices.ndjson"
run "$F" enqueue "$DATA_DIR/events.ndjson"
drain

step "training the recommender on the shop events, then a recommendation block per person (content jobs)"
QUEUE=fleet.content
printf '%s\n' '{"id": "demo-train", "kind": "content", "data": {"op": "train"}}' >"$DATA_DIR/train.ndjson"
run "$F" enqueue "$DATA_DIR/train.ndjson"
drain
run "$F" enqueue "$DATA_DIR/content_jobs.ndjson"
drain
say "the monthly mail's picks now come from each person's email_hero block (else from the catalog's top sellers)"

step "sending the campaign to the segment (template monthly, variants a/b, 10% holdout) and waiting for fleet.email"
QUEUE=fleet.email
t_start=$(date +%s.%N)
run "$F" campaign send --segment everyone --kind email --template monthly --campaign-id monthly-demo \
  --name "Monthly newsletter (demo)" --variants a:1,b:1 --holdout 0.1 --no-progress
drain
t_end=$(date +%s.%N)
awk -v n="$JOBS" -v a="$t_start" -v b="$t_end" \
  'BEGIN { d = b - a; printf "demo.sh: %d email jobs done in %.1f s (%.0f jobs/s, fan-out included; 1 s polling)\n", n, d, n / d }'
run "$F" campaign status monthly-demo

step "people read their mail: opens, clicks and a few one-click unsubscribes through the mails' real links"
ENGAGE_JOBS="$FLEET_DIR/demo-purchases.ndjson"
run /usr/bin/python3 "$REPO_ROOT/Ops/scripts/demo_engage.py" "$FLEET_SMTP_SINK_DIR/maildir" "$ENGAGE_JOBS" "$JOBS"
say "their purchases (conversions: attributed by last click, and everyone's own 3%) as crm track jobs"
QUEUE=fleet.crm
run "$F" enqueue "$ENGAGE_JOBS"
drain

step "the campaign report: variant a, variant b and the holdout"
run "$F" campaign report monthly-demo
say "the same as a page with a chart: $FLEET_PUBLIC_URL/campaigns/monthly-demo (fleet serve stops with the demo; rerun it with the exports above)"

step "a push campaign to the segment (template offer, variants a/b, 10% holdout) and waiting for fleet.push"
QUEUE=fleet.push
run "$F" campaign send --segment everyone --kind push --template offer --campaign-id offer-demo \
  --name "Spring offer (demo)" --variants a:1,b:1 --holdout 0.1 --no-progress
drain
run "$F" campaign status offer-demo
# The emulator writes the rest of its accepted log at exit: stopped here, the count below is complete. The jobs
# deferred by the quiet hours wait in the delay queues for the window's end.
kill -TERM "$push_pid" 2>/dev/null || true
wait "$push_pid" 2>/dev/null || true
push_pid=
PUSHED=$(wc -l <"$PUSH_DIR/accepted.ndjson" 2>/dev/null || echo 0)
PRUNED=$(/usr/bin/python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM devices WHERE invalid_since IS NOT NULL").fetchone()[0])' "$FLEET_STORE")
say "pushes accepted by the emulator (APNs and FCM): $PUSHED; phone tokens pruned as unregistered: $PRUNED"
say "the deferred ones (quiet hours) wait in fleet.delay.* until the window ends; suppressed: opted out, no phone, holdout, dead tokens only"

step "results, status and dead letters"
run "$F" results --summary
echo
run "$F" results --limit 5
echo
run "$F" status
echo
DLQ_FILE="$FLEET_DIR/demo-dlq.txt"
printf '   $ %s dlq list --kind email > %s\n' "$F" "$DLQ_FILE"
"$F" dlq list --kind email >"$DLQ_FILE"
head -n 40 "$DLQ_FILE"
if (($(wc -l <"$DLQ_FILE") > 40)); then say "... $(wc -l <"$DLQ_FILE") lines in all: $DLQ_FILE"; fi

step "stopping the workers and fleet serve"
stop_workers
kill -TERM "$serve_pid" 2>/dev/null || true
wait "$serve_pid" 2>/dev/null || true
serve_pid=

cat <<EOF

Mails: $(ls "$FLEET_SMTP_SINK_DIR/maildir/new" 2>/dev/null | wc -l) messages in $FLEET_SMTP_SINK_DIR/maildir/new (a file each,
  any Maildir-reading mail client opens them). One person's mail in a browser:
  $F email preview monthly --profile p1 --variant b --out $FLEET_DIR/preview.html
Stop the SMTP sink: FLEET_SMTP_SINK_DIR=$FLEET_SMTP_SINK_DIR bash Ops/scripts/smtp-sink.sh stop
Pushes: $PUSH_DIR/accepted.ndjson (one JSON line per push the emulator accepted: device, headers, payload).
  One person's push requests: $F push preview offer --profile p2

Done. The broker is still running for you to explore:
  eval "\$(bash Ops/scripts/broker.sh env)"   # FLEET_AMQP_URL, FLEET_BROKER_CTL, ...
  export FLEET_STORE=$FLEET_STORE
  $F status
  \$FLEET_BROKER_CTL list_queues name messages consumers
Logs: $FLEET_DIR/worker-*.log, broker: $FLEET_BROKER_LOG
Stop the broker: bash Ops/scripts/broker.sh stop
EOF

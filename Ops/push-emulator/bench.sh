#!/usr/bin/env bash
# Benchmark push_emulator.py: APNs and FCM send paths, with h2load (Debian: nghttp2-client)
# when present, and with load.py (pure-Python h2 client) always.
#   bash bench.sh [REQUESTS] [CONNECTIONS] [STREAMS_PER_CONNECTION]
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
N="${1:-40000}"; C="${2:-4}"; M="${3:-250}"
W="$(mktemp -d /tmp/push-bench.XXXXXX)"
python3 "$HERE/make_credentials.py" --out "$W/creds" --key-id BENCHKEY01 --team-id BENCHTEAM1 \
  --project-id bench-project >/dev/null
CREDS="$W/creds/credentials.json"
python3 "$HERE/push_emulator.py" --host 127.0.0.1 --port 0 --state-dir "$W/state" \
  --apns-key-id BENCHKEY01 --apns-team-id BENCHTEAM1 --apns-public-key "$W/creds/AuthKey_BENCHKEY01_public.pem" \
  --fcm-credentials "$W/creds/service_account.json" --accepted "$W/accepted.ndjson" \
  --ready-file "$W/ready.json" --no-apns-token-update-limit 2>"$W/emulator.log" &
EMU=$!
trap 'kill $EMU 2>/dev/null || true; wait $EMU 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -f "$W/ready.json" ] && break; sleep 0.1; done
PORT=$(python3 -c "import json,sys;print(json.load(open(sys.argv[1]))['port'])" "$W/ready.json")
BASE="https://127.0.0.1:$PORT"
TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$EMU/stat"; }
report_cpu() {  # $1 = ticks before, $2 = requests
  local t=$(( $(cpu_ticks) - $1 ))
  python3 -c "import sys; t,n,k=map(int,sys.argv[1:]); us=t*1e6/k/n; print('server CPU: %.1f us/request -> ~%.0f req/s per free core' % (us, 1e6/us))" "$t" "$2" "$TCK"
}

if command -v h2load >/dev/null; then
  JWT=$(python3 - "$CREDS" <<'EOF'
import json, sys, time, jwt
c = json.load(open(sys.argv[1]))
print(jwt.encode({"iss": c["apns_team_id"], "iat": int(time.time())}, open(c["apns_private_key"], "rb").read(),
                 algorithm="ES256", headers={"kid": c["apns_key_id"]}))
EOF
)
  ACCESS=$(python3 - "$CREDS" "$W/ready.json" <<'EOF'
import json, ssl, sys, time, jwt, httpx
c = json.load(open(sys.argv[1])); r = json.load(open(sys.argv[2])); sa = json.load(open(c["fcm_credentials"]))
now = int(time.time())
a = jwt.encode({"iss": sa["client_email"], "scope": "https://www.googleapis.com/auth/firebase.messaging",
                "aud": sa["token_uri"], "iat": now, "exp": now + 3600}, sa["private_key"], algorithm="RS256")
with httpx.Client(http2=True, verify=ssl.create_default_context(cafile=r["ca_file"])) as cl:
    print(cl.post(r["url"] + "/token", data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                                             "assertion": a}).json()["access_token"])
EOF
)
  echo '{"aps":{"alert":{"title":"Sale","body":"Everything must go"},"badge":1},"cid":"c-1"}' > "$W/apns.json"
  echo '{"message":{"token":"fcm-bench:APA91bXXXXXXXXXXXXXXXX","notification":{"title":"Sale","body":"Everything must go"},"data":{"cid":"c-1"},"android":{"priority":"HIGH","ttl":"3600s"}}}' > "$W/fcm.json"
  echo "== h2load APNs: n=$N c=$C m=$M"
  T0=$(cpu_ticks)
  h2load -n "$N" -c "$C" -m "$M" -t 1 -H "authorization: bearer $JWT" -H "apns-topic: com.example.app" \
    -H "apns-push-type: alert" -d "$W/apns.json" \
    "$BASE/3/device/$(printf 'ab%.0s' $(seq 32))" | grep -E "finished in|requests:|status codes|time for request"
  report_cpu "$T0" "$N"
  echo "== h2load FCM: n=$N c=$C m=$M"
  T0=$(cpu_ticks)
  h2load -n "$N" -c "$C" -m "$M" -t 1 -H "authorization: Bearer $ACCESS" -H "content-type: application/json" \
    -d "$W/fcm.json" "$BASE/v1/projects/bench-project/messages:send" \
    | grep -E "finished in|requests:|status codes|time for request"
  report_cpu "$T0" "$N"
fi
echo "== load.py APNs"
T0=$(cpu_ticks)
python3 "$HERE/load.py" --ready "$W/ready.json" --creds "$CREDS" --service apns --connections "$C" --streams "$M" --requests "$N"
report_cpu "$T0" "$N"
echo "== load.py FCM"
T0=$(cpu_ticks)
python3 "$HERE/load.py" --ready "$W/ready.json" --creds "$CREDS" --service fcm --connections "$C" --streams "$M" --requests "$N"
report_cpu "$T0" "$((N + 1))"
sleep 0.2
EXP=$((N * 2)); command -v h2load >/dev/null && EXP=$((N * 4))
echo "accepted lines: $(wc -l < "$W/accepted.ndjson") (expected $EXP)"
rm -rf "$W"

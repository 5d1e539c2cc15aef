#!/usr/bin/env python3
"""The Python peer of `fleet bench push`: sends the same pushes as the fleet's push worker, the way a Python
service would (httpx with HTTP/2, asyncio), with the same token rules: one APNs provider token (ES256, PyJWT)
reused for the run, one FCM access token got by exchanging a service-account assertion (RS256) at token_uri.

  python3 push_peer.py --pushes pushes.ndjson --apns-url URL --fcm-url URL --ca ca.pem \
      --apns-key AuthKey.p8 --key-id KID --team-id TEAM --topic com.example.shop \
      --service-account sa.json --concurrency 64

pushes.ndjson: one push per line, {"service": "apns"|"fcm", "token": ..., "payload": {...}} (for apns the
payload is the APNs body; for fcm the `message` object without its token). Prints one JSON object:
{"pushes", "ok", "seconds", "rate", "cpu_seconds", "statuses"}. Timed from the first request to the last answer;
the token exchange and connection set-up come before the clock starts.
"""
import argparse
import asyncio
import json
import resource
import ssl
import sys
import time
import uuid

import httpx
import jwt


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pushes", required=True)
    ap.add_argument("--apns-url", required=True)
    ap.add_argument("--fcm-url", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--apns-key", required=True)
    ap.add_argument("--key-id", required=True)
    ap.add_argument("--team-id", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--service-account", required=True)
    ap.add_argument("--concurrency", type=int, default=64)
    a = ap.parse_args()

    pushes = [json.loads(line) for line in open(a.pushes) if line.strip()]
    ctx = ssl.create_default_context(cafile=a.ca)
    limits = httpx.Limits(max_connections=4, max_keepalive_connections=4)
    async with httpx.AsyncClient(http2=True, verify=ctx, limits=limits, timeout=30) as client:
        key = open(a.apns_key).read()
        provider = jwt.encode({"iss": a.team_id, "iat": int(time.time())}, key, algorithm="ES256",
                              headers={"kid": a.key_id})
        sa = json.load(open(a.service_account))
        now = int(time.time())
        assertion = jwt.encode({"iss": sa["client_email"], "scope": "https://www.googleapis.com/auth/firebase.messaging",
                                "aud": sa["token_uri"], "iat": now, "exp": now + 3600}, sa["private_key"],
                               algorithm="RS256", headers={"kid": sa.get("private_key_id")})
        r = await client.post(sa["token_uri"], data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                                                      "assertion": assertion})
        r.raise_for_status()
        access = r.json()["access_token"]
        fcm_path = f"{a.fcm_url.rstrip('/')}/v1/projects/{sa['project_id']}/messages:send"
        # Warm the connection (not timed).
        await client.get(a.apns_url.rstrip("/") + "/_emulator/health")

        statuses = {}
        queue = asyncio.Queue()
        for p in pushes:
            queue.put_nowait(p)

        async def send(p):
            if p["service"] == "apns":
                headers = {"authorization": f"bearer {provider}", "apns-topic": a.topic, "apns-push-type": "alert",
                           "apns-priority": "10", "apns-expiration": str(int(time.time()) + 43200),
                           "apns-id": str(uuid.uuid4()).upper()}
                resp = await client.post(f"{a.apns_url.rstrip('/')}/3/device/{p['token']}", headers=headers,
                                         content=json.dumps(p["payload"], separators=(",", ":")).encode())
            else:
                message = dict(p["payload"])
                message["token"] = p["token"]
                resp = await client.post(fcm_path, headers={"authorization": f"Bearer {access}"},
                                         json={"message": message})
            statuses[resp.status_code] = statuses.get(resp.status_code, 0) + 1

        async def worker():
            while True:
                try:
                    p = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                await send(p)

        cpu0, t0 = cpu_seconds(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(a.concurrency)))
        seconds, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    ok = statuses.get(200, 0)
    print(json.dumps({"pushes": len(pushes), "ok": ok, "seconds": seconds, "rate": len(pushes) / seconds,
                      "cpu_seconds": cpu, "statuses": {str(k): v for k, v in statuses.items()}}))
    return 0 if ok == len(pushes) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

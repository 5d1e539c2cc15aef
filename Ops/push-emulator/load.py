#!/usr/bin/env python3
"""Small HTTP/2 load generator for push_emulator.py (raw h2 over asyncio + ssl).

Opens --connections TLS/h2 connections, keeps --streams requests in flight on each,
and sends --requests pushes in total (or runs for --duration seconds, whichever first).

  python3 load.py --ready ready.json --creds creds/credentials.json --service apns \
      --connections 4 --streams 200 --requests 20000

--creds is the credentials.json written by make_credentials.py (APNs JWT is minted once;
FCM does one token exchange at /token, then reuses the access token like a real sender).
Prints a JSON summary: requests/s, status counts, latency percentiles.
Optionally --processes N runs N client processes (each with the given connections) and sums.
"""
import argparse
import asyncio
import json
import multiprocessing
import ssl
import sys
import time

import h2.config
import h2.connection
import h2.events
import h2.settings
import jwt

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"


class Client(asyncio.Protocol):
    def __init__(self, make_request, want, streams, done):
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, header_encoding=None, validate_outbound_headers=False,
            normalize_outbound_headers=False, validate_inbound_headers=False,
            normalize_inbound_headers=False))
        self.make_request, self.want, self.streams = make_request, want, streams
        self.done = done
        self.inflight = {}
        self.status = {}
        self.latencies = []
        self.sent = 0
        self.completed = 0
        self.transport = None
        self.max_streams = 100
        self.stop_at = None
        self.bodies = {}

    def connection_made(self, transport):
        self.transport = transport
        self.conn.initiate_connection()
        self.conn.increment_flow_control_window(16 * 1024 * 1024)
        transport.write(self.conn.data_to_send())

    def _fill(self):
        conn = self.conn
        limit = min(self.streams, self.max_streams)
        now = time.perf_counter()
        while len(self.inflight) < limit and self.want[0] > 0 and \
                (self.stop_at is None or now < self.stop_at):
            self.want[0] -= 1          # budget shared by all connections of this process
            sid = conn.get_next_available_stream_id()
            headers, body = self.make_request(self.sent)
            conn.send_headers(sid, headers)
            conn.send_data(sid, body, end_stream=True)
            self.inflight[sid] = now
            self.sent += 1
        self.transport.write(conn.data_to_send())
        if not self.inflight:
            if not self.done.done():
                self.done.set_result(None)

    def data_received(self, data):
        conn = self.conn
        for ev in conn.receive_data(data):
            t = type(ev)
            if t is h2.events.ResponseReceived:
                for k, v in ev.headers:
                    if k == b":status":
                        self.bodies[ev.stream_id] = v
                        break
            elif t is h2.events.DataReceived:
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif t is h2.events.StreamEnded:
                t0 = self.inflight.pop(ev.stream_id, None)
                st = self.bodies.pop(ev.stream_id, b"?").decode()
                self.status[st] = self.status.get(st, 0) + 1
                if t0 is not None:
                    self.latencies.append(time.perf_counter() - t0)
                self.completed += 1
            elif t is h2.events.StreamReset:
                self.inflight.pop(ev.stream_id, None)
                self.status["reset"] = self.status.get("reset", 0) + 1
            elif t is h2.events.RemoteSettingsChanged:
                self.max_streams = conn.remote_settings.max_concurrent_streams
            elif t is h2.events.ConnectionTerminated:
                self.status["goaway"] = self.status.get("goaway", 0) + 1
        self._fill()

    def connection_lost(self, exc):
        if not self.done.done():
            self.done.set_result(None)


def _prepare(args):
    with open(args.ready) as f:
        ready = json.load(f)
    with open(args.creds) as f:
        creds = json.load(f)
    return ready, creds


async def _fcm_access_token(ready, creds, ctx):
    with open(creds["fcm_credentials"]) as f:
        sa = json.load(f)
    now = int(time.time())
    assertion = jwt.encode({"iss": sa["client_email"], "scope": FCM_SCOPE, "aud": sa["token_uri"],
                            "iat": now, "exp": now + 3600}, sa["private_key"], algorithm="RS256",
                           headers={"kid": sa["private_key_id"]})
    body = ("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=" + assertion).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", ready["port"], ssl=ctx,
                                                   server_hostname="127.0.0.1")
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.send_headers(1, [(":method", "POST"), (":path", "/token"), (":scheme", "https"),
                          (":authority", "127.0.0.1:%d" % ready["port"]),
                          ("content-type", "application/x-www-form-urlencoded")])
    conn.send_data(1, body, end_stream=True)
    writer.write(conn.data_to_send())
    buf = b""
    while True:
        data = await reader.read(65535)
        if not data:
            raise RuntimeError("token endpoint closed the connection")
        ended = False
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.DataReceived):
                buf += ev.data
            elif isinstance(ev, h2.events.StreamEnded):
                ended = True
        writer.write(conn.data_to_send())
        if ended:
            break
    writer.close()
    return json.loads(buf)["access_token"]


async def run(args):
    ready, creds = _prepare(args)
    ctx = ssl.create_default_context(cafile=ready["ca_file"])
    ctx.set_alpn_protocols(["h2"])
    authority = ("127.0.0.1:%d" % ready["port"]).encode()
    if args.service == "apns":
        with open(creds["apns_private_key"], "rb") as f:
            key = f.read()
        token = jwt.encode({"iss": creds["apns_team_id"], "iat": int(time.time())}, key, algorithm="ES256",
                           headers={"kid": creds["apns_key_id"]})
        base = [(b":method", b"POST"), (b":scheme", b"https"), (b":authority", authority)]
        fixed = [(b"authorization", b"bearer " + token.encode()), (b"apns-topic", args.topic.encode()),
                 (b"apns-push-type", b"alert"), (b"apns-priority", b"10")]
        body_tpl = b'{"aps":{"alert":{"title":"Sale","body":"Everything must go, %d"},"badge":1},"cid":"c-%d"}'
        ntok = args.distinct_tokens

        def make_request(i):
            path = b"/3/device/%064x" % (i % ntok + 1)
            return base + [(b":path", path)] + fixed, body_tpl % (i, i)
    else:
        access = await _fcm_access_token(ready, creds, ctx)
        path = ("/v1/projects/%s/messages:send" % creds["fcm_project_id"]).encode()
        hdrs = [(b":method", b"POST"), (b":scheme", b"https"), (b":authority", authority), (b":path", path),
                (b"authorization", b"Bearer " + access.encode()), (b"content-type", b"application/json")]
        ntok = args.distinct_tokens

        def make_request(i):
            body = ('{"message":{"token":"fcm-load:APA91b%08d","notification":{"title":"Sale","body":'
                    '"Everything must go, %d"},"data":{"cid":"c-%d"},"android":{"priority":"HIGH",'
                    '"ttl":"3600s"}}}' % (i % ntok, i, i)).encode()
            return hdrs, body

    loop = asyncio.get_running_loop()
    budget = [args.requests]   # remaining requests, shared by all connections
    clients = []
    for _ in range(args.connections):
        done = loop.create_future()
        c = Client(make_request, budget, args.streams, done)
        await loop.create_connection(lambda c=c: c, "127.0.0.1", ready["port"], ssl=ctx,
                                     server_hostname="127.0.0.1")
        clients.append(c)
    t0 = time.perf_counter()
    stop_at = t0 + args.duration if args.duration else None
    for c in clients:
        c.stop_at = stop_at
        c._fill()
    await asyncio.gather(*(c.done for c in clients))
    elapsed = time.perf_counter() - t0
    for c in clients:
        c.transport.close()
    status, lat, total = {}, [], 0
    for c in clients:
        total += c.completed
        lat.extend(c.latencies)
        for k, v in c.status.items():
            status[k] = status.get(k, 0) + v
    return {"completed": total, "elapsed": elapsed, "status": status, "latencies": lat}


def _one(args):
    return asyncio.run(run(args))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ready", required=True, help="the emulator's --ready-file")
    ap.add_argument("--creds", required=True, help="credentials.json from make_credentials.py")
    ap.add_argument("--service", choices=["apns", "fcm"], default="apns")
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--streams", type=int, default=200, help="requests in flight per connection")
    ap.add_argument("--requests", type=int, default=20000, help="total requests (per process)")
    ap.add_argument("--duration", type=float, default=0, help="stop after this many seconds (0: no limit)")
    ap.add_argument("--processes", type=int, default=1)
    ap.add_argument("--distinct-tokens", type=int, default=10000)
    ap.add_argument("--topic", default="com.example.app")
    args = ap.parse_args(argv)
    if args.processes > 1:
        with multiprocessing.Pool(args.processes) as pool:
            results = pool.map(_one, [args] * args.processes)
    else:
        results = [_one(args)]
    completed = sum(r["completed"] for r in results)
    elapsed = max(r["elapsed"] for r in results)
    status = {}
    lat = []
    for r in results:
        lat.extend(r["latencies"])
        for k, v in r["status"].items():
            status[k] = status.get(k, 0) + v
    lat.sort()

    def pct(p):
        return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 2) if lat else None
    out = {"service": args.service, "connections": args.connections * args.processes,
           "streams_per_connection": args.streams, "completed": completed, "elapsed_s": round(elapsed, 3),
           "requests_per_s": round(completed / elapsed, 1) if elapsed else None, "status": status,
           "latency_ms": {"p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99), "max": pct(1.0)}}
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0 if set(status) <= {"200"} else 1


if __name__ == "__main__":
    sys.exit(main())

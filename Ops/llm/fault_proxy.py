#!/usr/bin/env python3
"""fault_proxy.py - tiny HTTP/1.1 reverse proxy (asyncio, stdlib only) that injects
faults into an OpenAI-compatible server for integration tests.

    python3 fault_proxy.py --upstream http://127.0.0.1:8081 [--port 0] [--ready-file F]

Everything is forwarded to the upstream, except the control endpoints:

  POST /_proxy/faults     {"status":429,"count":N,"retry_after":1,"message":"..."}
        the next N POST /v1/chat/completions answer `status` (429/500/503/...)
        with an OpenAI-style error JSON body; `Retry-After` is sent when
        retry_after is given (default 1 for 429).  Optional "path" to target
        another endpoint (default /v1/chat/completions).
  POST /_proxy/malformed  {"count":N,"content":"..."}
        the next N chat completions answer 200 with a chat.completion whose
        message content is exactly `content` (SSE chunks if the request had
        "stream": true).
  POST /_proxy/delay      {"count":N,"seconds":S}
        the next N chat completions are held S seconds before being handled
        (for client-timeout tests; the delay applies before faults/forwarding).
  POST /_proxy/reset      clear all pending faults, malformed answers, delays, log
  GET  /_proxy/state      pending injections and counters (JSON)
  GET  /_proxy/requests   the last 200 proxied/intercepted requests (method, path,
                          JSON body if any, what was done)

Each injection takes "after": K (default 0): the next K matching requests pass it by
first (e.g. a malformed answer, then a 503 "after": 1).
Faults are consumed first, then malformed answers, then real forwarding. Several
POSTs queue up in order.  The proxy's port is written to --ready-file (atomically)
once it listens; with --port 0 an ephemeral port is chosen.
"""
import argparse
import asyncio
import collections
import json
import os
import sys
import time
import urllib.parse
import uuid

CHAT_PATH = "/v1/chat/completions"
MAX_HEAD = 64 * 1024

REASONS = {100: "Continue", 200: "OK", 400: "Bad Request", 404: "Not Found",
           408: "Request Timeout", 413: "Payload Too Large", 429: "Too Many Requests",
           500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
           504: "Gateway Timeout"}

ERROR_BODIES = {
    429: ("Rate limit reached for requests (injected by fault_proxy).", "requests", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request. Sorry about that! (injected by fault_proxy)", "server_error", None),
    502: ("Bad gateway (injected by fault_proxy).", "server_error", None),
    503: ("The engine is currently overloaded, please try again later. (injected by fault_proxy)", "server_error", None),
    504: ("Gateway timeout (injected by fault_proxy).", "server_error", None),
}


class State:
    def __init__(self):
        self.faults = collections.deque()      # [spec dict, remaining]
        self.malformed = collections.deque()
        self.delays = collections.deque()
        self.counters = collections.Counter()
        self.log = collections.deque(maxlen=200)

    @staticmethod
    def _take(q, path):
        for item in q:
            spec, _ = item
            if spec.get("path", CHAT_PATH) == path:
                if spec.get("_skip", 0) > 0:
                    # "after": K lets the next K matching requests pass this injection first.
                    spec["_skip"] -= 1
                    return None
                item[1] -= 1
                if item[1] <= 0:
                    q.remove(item)
                return spec
        return None

    def snapshot(self):
        return {
            "faults": [dict(spec, remaining=n) for spec, n in self.faults],
            "malformed": [dict(spec, remaining=n) for spec, n in self.malformed],
            "delays": [dict(spec, remaining=n) for spec, n in self.delays],
            "counters": dict(self.counters),
        }


STATE = State()
ARGS = None


# --------------------------------------------------------------------------- HTTP helpers
class BadRequest(Exception):
    pass


async def read_head(reader):
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if not e.partial:
            return None  # clean EOF between requests
        raise BadRequest("truncated head")
    except asyncio.LimitOverrunError:
        raise BadRequest("head too large")
    lines = head[:-4].decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        k, sep, v = line.partition(":")
        if not sep:
            raise BadRequest("bad header line")
        headers.append((k.strip(), v.strip()))
    return lines[0], headers


def hget(headers, name, default=None):
    name = name.lower()
    for k, v in headers:
        if k.lower() == name:
            return v
    return default


async def read_chunked(reader, writer=None):
    """Read a chunked body. If writer is given, relay the raw bytes as they arrive
    (keeps SSE streaming live) and return None; otherwise return the decoded body."""
    body = bytearray()
    while True:
        line = await reader.readuntil(b"\r\n")
        size = int(line.split(b";")[0].strip() or b"0", 16)
        if writer is not None:
            writer.write(line)
        if size == 0:
            # trailers until empty line
            while True:
                t = await reader.readuntil(b"\r\n")
                if writer is not None:
                    writer.write(t)
                if t == b"\r\n":
                    break
            if writer is not None:
                await writer.drain()
            return None if writer is not None else bytes(body)
        data = await reader.readexactly(size + 2)
        if writer is not None:
            writer.write(data)
            await writer.drain()
        else:
            body += data[:-2]


def build_response(status, headers, body, keep_alive):
    reason = REASONS.get(status, "Status")
    out = [f"HTTP/1.1 {status} {reason}"]
    for k, v in headers:
        out.append(f"{k}: {v}")
    out.append(f"Content-Length: {len(body)}")
    out.append("Connection: " + ("keep-alive" if keep_alive else "close"))
    return ("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + body


def json_response(status, obj, keep_alive, extra_headers=()):
    body = json.dumps(obj).encode()
    return build_response(status, [("Content-Type", "application/json")] + list(extra_headers), body, keep_alive)


# --------------------------------------------------------------------------- injected answers
def error_answer(spec, keep_alive):
    status = int(spec.get("status", 500))
    msg, etype, code = ERROR_BODIES.get(status, (f"Injected error {status} (fault_proxy).", "server_error", None))
    msg = spec.get("message", msg)
    body = {"error": {"message": msg, "type": spec.get("type", etype), "param": None,
                      "code": spec.get("code", code)}}
    headers = [("x-fault-proxy", "fault")]
    ra = spec.get("retry_after", 1 if status == 429 else None)
    if ra is not None:
        headers.append(("Retry-After", str(ra)))
    return json_response(status, body, keep_alive, headers)


def malformed_answer(spec, req_json, keep_alive):
    content = spec.get("content", "")
    model = (req_json or {}).get("model") or "fault-proxy"
    cid = "chatcmpl-fp-" + uuid.uuid4().hex[:16]
    created = int(time.time())
    if (req_json or {}).get("stream"):
        chunks = [
            {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
             "choices": [{"index": 0, "delta": {"role": "assistant"}, "logprobs": None, "finish_reason": None}]},
            {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
             "choices": [{"index": 0, "delta": {"content": content}, "logprobs": None, "finish_reason": None}]},
            {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
             "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]},
        ]
        sse = "".join(f"data: {json.dumps(c)}\r\n\r\n" for c in chunks) + "data: [DONE]\r\n\r\n"
        return build_response(200, [("Content-Type", "text/event-stream; charset=utf-8"),
                                    ("Cache-Control", "no-cache"), ("x-fault-proxy", "malformed")],
                              sse.encode(), keep_alive)
    n = max(1, len(content) // 4)
    body = {"id": cid, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 0, "completion_tokens": n, "total_tokens": n}}
    return json_response(200, body, keep_alive, [("x-fault-proxy", "malformed")])


# --------------------------------------------------------------------------- control
def control(method, path, body, keep_alive):
    try:
        data = json.loads(body) if body else {}
        if not isinstance(data, dict):
            raise ValueError("body must be a JSON object")
    except ValueError as e:
        return json_response(400, {"error": {"message": f"bad JSON: {e}", "type": "invalid_request_error"}}, keep_alive)
    if method == "POST" and path == "/_proxy/faults":
        count = int(data.get("count", 1))
        if "status" not in data:
            return json_response(400, {"error": {"message": "status is required"}}, keep_alive)
        data["_skip"] = int(data.get("after", 0))
        STATE.faults.append([data, count])
    elif method == "POST" and path == "/_proxy/malformed":
        data["_skip"] = int(data.get("after", 0))
        STATE.malformed.append([data, int(data.get("count", 1))])
    elif method == "POST" and path == "/_proxy/delay":
        data["_skip"] = int(data.get("after", 0))
        STATE.delays.append([data, int(data.get("count", 1))])
    elif method == "POST" and path == "/_proxy/reset":
        STATE.faults.clear(); STATE.malformed.clear(); STATE.delays.clear()
        STATE.counters.clear(); STATE.log.clear()
    elif method == "GET" and path == "/_proxy/state":
        pass
    elif method == "GET" and path == "/_proxy/requests":
        return json_response(200, list(STATE.log), keep_alive)
    else:
        return json_response(404, {"error": {"message": f"no control endpoint {method} {path}"}}, keep_alive)
    return json_response(200, STATE.snapshot(), keep_alive)


# --------------------------------------------------------------------------- forwarding
async def forward(method, target, version, headers, body, cwriter, keep_alive):
    """Forward one request on a fresh upstream connection and relay the answer.
    Returns whether the client connection may be kept alive."""
    try:
        ureader, uwriter = await asyncio.wait_for(
            asyncio.open_connection(ARGS.upstream_host, ARGS.upstream_port, limit=MAX_HEAD * 4),
            timeout=10)
    except (OSError, asyncio.TimeoutError) as e:
        STATE.counters["upstream_unreachable"] += 1
        cwriter.write(json_response(502, {"error": {"message": f"fault_proxy: upstream unreachable: {e}",
                                                    "type": "server_error", "param": None, "code": None}},
                                    keep_alive))
        await cwriter.drain()
        return keep_alive
    try:
        drop = {"connection", "keep-alive", "proxy-connection", "transfer-encoding",
                "content-length", "expect", "host", "upgrade"}
        out = [f"{method} {target} HTTP/1.1", f"Host: {ARGS.upstream_host}:{ARGS.upstream_port}"]
        out += [f"{k}: {v}" for k, v in headers if k.lower() not in drop]
        if body or method in ("POST", "PUT", "PATCH"):
            out.append(f"Content-Length: {len(body)}")
        out.append("Connection: close")
        uwriter.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + body)
        await uwriter.drain()

        # skip any 1xx interim answers
        while True:
            head = await read_head(ureader)
            if head is None:
                raise BadRequest("upstream closed without answering")
            status_line, rheaders = head
            status = int(status_line.split()[1])
            if not (100 <= status < 200):
                break
        te = (hget(rheaders, "transfer-encoding") or "").lower()
        cl = hget(rheaders, "content-length")
        no_body = method == "HEAD" or status in (204, 304)
        keep = keep_alive and (no_body or "chunked" in te or cl is not None)
        drop_r = {"connection", "keep-alive"}
        hl = [status_line] + [f"{k}: {v}" for k, v in rheaders if k.lower() not in drop_r]
        hl.append("Connection: " + ("keep-alive" if keep else "close"))
        cwriter.write(("\r\n".join(hl) + "\r\n\r\n").encode("latin-1"))
        await cwriter.drain()
        if no_body:
            pass
        elif "chunked" in te:
            await read_chunked(ureader, cwriter)
        elif cl is not None:
            remaining = int(cl)
            while remaining > 0:
                data = await ureader.read(min(65536, remaining))
                if not data:
                    raise BadRequest("upstream body truncated")
                cwriter.write(data); remaining -= len(data)
                await cwriter.drain()
        else:
            while True:
                data = await ureader.read(65536)
                if not data:
                    break
                cwriter.write(data)
                await cwriter.drain()
        STATE.counters[f"upstream_{status}"] += 1
        return keep
    finally:
        uwriter.close()


async def handle(creader, cwriter):
    try:
        while True:
            try:
                head = await read_head(creader)
            except BadRequest:
                cwriter.write(json_response(400, {"error": {"message": "bad request"}}, False))
                break
            if head is None:
                break
            request_line, headers = head
            try:
                method, target, version = request_line.split(" ", 2)
            except ValueError:
                cwriter.write(json_response(400, {"error": {"message": "bad request line"}}, False))
                break
            conn = (hget(headers, "connection") or "").lower()
            keep_alive = ("close" not in conn) if version == "HTTP/1.1" else ("keep-alive" in conn)
            if (hget(headers, "expect") or "").lower() == "100-continue":
                cwriter.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                await cwriter.drain()
            te = (hget(headers, "transfer-encoding") or "").lower()
            if "chunked" in te:
                body = await read_chunked(creader)
            else:
                body = await creader.readexactly(int(hget(headers, "content-length") or 0))

            path = urllib.parse.urlsplit(target).path
            STATE.counters["requests"] += 1
            req_json = None
            if body:
                try:
                    req_json = json.loads(body)
                except ValueError:
                    pass
            entry = {"t": round(time.time(), 3), "method": method, "path": path}
            if req_json is not None and not path.startswith("/_proxy/"):
                entry["json"] = req_json

            if path.startswith("/_proxy/"):
                cwriter.write(control(method, path, body, keep_alive))
                await cwriter.drain()
                if not keep_alive:
                    break
                continue

            STATE.log.append(entry)
            if method == "POST":
                d = State._take(STATE.delays, path)
                if d is not None:
                    entry["delayed"] = float(d.get("seconds", 1))
                    STATE.counters["delayed"] += 1
                    await asyncio.sleep(float(d.get("seconds", 1)))
                f = State._take(STATE.faults, path)
                if f is not None:
                    entry["action"] = f"fault {f.get('status')}"
                    STATE.counters["injected_faults"] += 1
                    cwriter.write(error_answer(f, keep_alive))
                    await cwriter.drain()
                    if not keep_alive:
                        break
                    continue
                if path == CHAT_PATH:
                    m = State._take(STATE.malformed, path)
                    if m is not None:
                        entry["action"] = "malformed"
                        STATE.counters["injected_malformed"] += 1
                        cwriter.write(malformed_answer(m, req_json if isinstance(req_json, dict) else None, keep_alive))
                        await cwriter.drain()
                        if not keep_alive:
                            break
                        continue
            entry["action"] = "forwarded"
            keep_alive = await forward(method, target, version, headers, body, cwriter, keep_alive)
            if not keep_alive:
                break
    except (ConnectionError, asyncio.IncompleteReadError, BadRequest, ValueError) as e:
        STATE.counters["connection_errors"] += 1
        if ARGS.verbose:
            print(f"fault_proxy: connection error: {e!r}", file=sys.stderr)
    finally:
        try:
            await cwriter.drain()
        except Exception:
            pass
        cwriter.close()


async def main():
    global ARGS
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--upstream", required=True, help="e.g. http://127.0.0.1:8081")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 = ephemeral")
    p.add_argument("--ready-file", help="write the listening port here once ready")
    p.add_argument("--verbose", action="store_true")
    ARGS = p.parse_args()
    u = urllib.parse.urlsplit(ARGS.upstream)
    if u.scheme != "http" or not u.hostname:
        p.error("--upstream must be http://HOST:PORT")
    ARGS.upstream_host, ARGS.upstream_port = u.hostname, u.port or 80
    server = await asyncio.start_server(handle, ARGS.host, ARGS.port, limit=MAX_HEAD)
    port = server.sockets[0].getsockname()[1]
    if ARGS.ready_file:
        tmp = ARGS.ready_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, ARGS.ready_file)
    print(f"fault_proxy listening on http://{ARGS.host}:{port} -> {ARGS.upstream}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass

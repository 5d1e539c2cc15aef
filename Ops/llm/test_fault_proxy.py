#!/usr/bin/env python3
"""End-to-end checks of fault_proxy.py in front of a running llm-server.sh server.
stdlib only.  Usage: python3 test_fault_proxy.py UPSTREAM_BASE_URL   (e.g. http://127.0.0.1:8081/v1)
Starts its own proxy on an ephemeral port, prints 'N passed, N failed'."""
import http.client, json, os, socket, subprocess, sys, tempfile, time, urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
UP = urllib.parse.urlsplit(sys.argv[1])
REQ = {"messages": [{"role": "system", "content": "You write e-mail subject lines."},
                    {"role": "user", "content": "Subject line for an autumn mug sale."}],
       "max_tokens": 12, "temperature": 0, "seed": 1}
results = []


def check(name, cond, detail=""):
    results.append((name, bool(cond)))
    print(("PASS " if cond else "FAIL ") + name + ("" if cond else f"  -- {detail}"), flush=True)


def start_proxy(upstream):
    d = tempfile.mkdtemp(prefix="fp-")
    ready = os.path.join(d, "port")
    p = subprocess.Popen([sys.executable, os.path.join(HERE, "fault_proxy.py"), "--upstream", upstream,
                          "--ready-file", ready], stdout=subprocess.DEVNULL)
    for _ in range(100):
        if os.path.exists(ready):
            return p, int(open(ready).read())
        time.sleep(0.05)
    raise SystemExit("proxy did not become ready")


def call(conn, method, path, body=None, headers=None):
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    conn.request(method, path, json.dumps(body) if body is not None else None, h)
    r = conn.getresponse()
    return r, r.read()


proxy, port = start_proxy(f"http://{UP.hostname}:{UP.port}")
try:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    chat = UP.path.rstrip("/") + "/chat/completions"

    r, b = call(c, "GET", UP.path.rstrip("/") + "/models")
    check("passthrough GET /v1/models", r.status == 200 and json.loads(b)["object"] == "list", b[:200])
    r, b = call(c, "POST", chat, REQ)
    real = json.loads(b)
    check("passthrough chat completion (same keep-alive connection)",
          r.status == 200 and real["object"] == "chat.completion" and real["choices"][0]["message"]["content"], b[:300])

    r, b = call(c, "POST", "/_proxy/faults", {"status": 429, "count": 2, "retry_after": 3})
    check("control /_proxy/faults accepted", r.status == 200 and json.loads(b)["faults"][0]["remaining"] == 2, b)
    for i in range(2):
        r, b = call(c, "POST", chat, REQ)
        e = json.loads(b)
        check(f"429 #{i+1} with Retry-After and OpenAI error body",
              r.status == 429 and r.getheader("Retry-After") == "3" and e["error"]["code"] == "rate_limit_exceeded"
              and "message" in e["error"] and "type" in e["error"], (r.status, r.getheaders(), b))
    r, b = call(c, "POST", chat, REQ)
    check("after N faults the real server answers again", r.status == 200 and json.loads(b)["object"] == "chat.completion", b[:200])

    call(c, "POST", "/_proxy/faults", {"status": 500, "count": 1})
    call(c, "POST", "/_proxy/faults", {"status": 503, "count": 1})
    r1, b1 = call(c, "POST", chat, REQ)
    r2, b2 = call(c, "POST", chat, REQ)
    check("500 then 503 queued in order, no Retry-After by default",
          (r1.status, r2.status) == (500, 503) and r1.getheader("Retry-After") is None
          and json.loads(b1)["error"]["type"] == "server_error", (r1.status, r2.status, b1))
    r, b = call(c, "GET", UP.path.rstrip("/") + "/models")
    check("faults only hit POST chat completions", r.status == 200, r.status)

    bad = '{"subject": "Autumn mugs", "preheader": '
    call(c, "POST", "/_proxy/malformed", {"count": 1, "content": bad})
    r, b = call(c, "POST", chat, REQ)
    m = json.loads(b)
    check("malformed: 200 chat.completion with the given content",
          r.status == 200 and m["object"] == "chat.completion" and m["choices"][0]["message"]["content"] == bad
          and m["choices"][0]["message"]["role"] == "assistant" and "usage" in m, b)

    call(c, "POST", "/_proxy/malformed", {"count": 1, "content": "not json at all"})
    r, b = call(c, "POST", chat, dict(REQ, stream=True))
    text = b.decode()
    datas = [l[6:] for l in text.replace("\r\n", "\n").split("\n") if l.startswith("data: ")]
    content = "".join(json.loads(x)["choices"][0]["delta"].get("content") or "" for x in datas[:-1])
    check("malformed + stream:true -> SSE chunks ending in [DONE]",
          r.status == 200 and r.getheader("Content-Type", "").startswith("text/event-stream")
          and datas[-1] == "[DONE]" and content == "not json at all", text[:300])

    # real streaming through the proxy
    t0 = time.perf_counter()
    c.request("POST", chat, json.dumps(dict(REQ, stream=True, max_tokens=24)), {"Content-Type": "application/json"})
    r = c.getresponse()
    first = None; raw = b""
    while True:
        chunk = r.read1(65536)
        if not chunk:
            break
        first = first or (time.perf_counter() - t0)
        raw += chunk
    total = time.perf_counter() - t0
    datas = [l[6:] for l in raw.decode().replace("\r\n", "\n").split("\n") if l.startswith("data: ")]
    check("real SSE stream relayed through the proxy, ends with [DONE]", datas and datas[-1] == "[DONE]" and len(datas) > 3,
          raw[:300])
    check(f"SSE relayed incrementally (first bytes {first:.3f}s, total {total:.3f}s)", first < total, (first, total))

    call(c, "POST", "/_proxy/delay", {"count": 1, "seconds": 1.5})
    t0 = time.perf_counter(); r, b = call(c, "POST", chat, REQ); dt = time.perf_counter() - t0
    check(f"delay injection holds the request ({dt:.2f}s >= 1.5s)", r.status == 200 and dt >= 1.5, dt)

    # chunked request body + Expect: 100-continue, via a raw socket
    body = json.dumps(REQ).encode()
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    s.sendall((f"POST {chat} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               "Transfer-Encoding: chunked\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n").encode())
    interim = s.recv(100)
    s.sendall(b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
    resp = b""
    while True:
        x = s.recv(65536)
        if not x:
            break
        resp += x
    s.close()
    check("100-continue + chunked request body forwarded",
          interim.startswith(b"HTTP/1.1 100") and b"HTTP/1.1 200" in resp and b"chat.completion" in resp, (interim, resp[:200]))

    c2 = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    r, b = call(c2, "GET", "/_proxy/state")
    st = json.loads(b)
    check("state counters", st["counters"].get("injected_faults") == 4 and st["counters"].get("injected_malformed") == 2, st)
    r, b = call(c2, "GET", "/_proxy/requests")
    log = json.loads(b)
    check("request log records bodies and actions",
          any(e.get("action") == "fault 429" for e in log) and log[-1]["json"]["messages"][0]["role"] == "system", log[-1])
    r, b = call(c2, "POST", "/_proxy/nope", {})
    check("unknown control endpoint -> 404", r.status == 404, r.status)
    c2.request("POST", "/_proxy/faults", "{not json", {"Content-Type": "application/json"}); r = c2.getresponse(); r.read()
    check("bad control JSON -> 400", r.status == 400, r.status)
    r, b = call(c2, "POST", "/_proxy/reset", {})
    check("reset clears state", json.loads(b)["counters"] == {} and json.loads(b)["faults"] == [], b)

    # upstream down -> 502
    s = socket.socket(); s.bind(("127.0.0.1", 0)); dead = s.getsockname()[1]; s.close()
    p2, port2 = start_proxy(f"http://127.0.0.1:{dead}")
    try:
        c3 = http.client.HTTPConnection("127.0.0.1", port2, timeout=10)
        r, b = call(c3, "POST", chat, REQ)
        check("upstream unreachable -> 502 OpenAI-style error", r.status == 502 and "error" in json.loads(b), b)
    finally:
        p2.terminate(); p2.wait()
finally:
    proxy.terminate(); proxy.wait()

passed = sum(ok for _, ok in results)
print(f"{passed} passed, {len(results) - passed} failed")
sys.exit(0 if passed == len(results) else 1)

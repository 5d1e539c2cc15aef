#!/usr/bin/env python3
"""Local emulator of Apple Push Notification service (HTTP/2 provider API, token auth)
and Firebase Cloud Messaging HTTP v1 (with the Google OAuth2 JWT-bearer token endpoint),
served over TLS + HTTP/2 (ALPN "h2" only) on one port.  See README.md for every rule.

One asyncio program, plain asyncio.Protocol + the `h2` state machine.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import fcntl
import gc
import json
import os
import random
import re
import secrets
import signal
import ssl
import sys
import time
from urllib.parse import parse_qs

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import jwt
from cryptography.hazmat.primitives import serialization

VERSION = "1.0"

# ----------------------------------------------------------------------------- constants

APNS_PUSH_TYPES = frozenset(
    b"alert background location voip complication fileprovider mdm liveactivity pushtotalk".split())
APNS_PRIORITIES = frozenset([b"10", b"5", b"1"])
APNS_TOPIC_SUFFIXES = (".voip", ".complication", ".pushkit.fileprovider",
                       ".push-type.liveactivity", ".voip-ptt")
APNS_PREFIX = b"/3/device/"
HEX_TOKEN_RE = re.compile(rb"(?:[0-9a-fA-F]{2}){32,100}")          # even length, 64..200
UUID_RE = re.compile(rb"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
DIGITS_RE = re.compile(rb"[0-9]{1,19}")
HEX_ONLY_RE = re.compile(r"[0-9a-fA-F]+")

FCM_PREFIX = b"/v1/projects/"
FCM_SUFFIX = b"/messages:send"
FCM_TOKEN_RE = re.compile(r"[A-Za-z0-9_:.\-]{8,4096}")
FCM_TOPIC_RE = re.compile(r"(?:/topics/)?[a-zA-Z0-9\-_.~%]{1,900}")
DURATION_RE = re.compile(r"(-?)([0-9]{1,12})(?:\.([0-9]{1,9}))?s")
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
CLOUD_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
FCM_MAX_PAYLOAD = 4096
FCM_MAX_TTL = 28 * 24 * 3600                                        # 4 weeks
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"

FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"
ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo"
GOOGLE_AUTH_HELP = ("Expected OAuth 2 access token, login cookie or other valid authentication "
                    "credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.")

# proto3-JSON accepts both the original (snake_case) and the lowerCamelCase field names
def _names(*fields):
    out = set()
    for f in fields:
        out.add(f)
        parts = f.split("_")
        out.add(parts[0] + "".join(p.title() for p in parts[1:]))
    return frozenset(out)

MESSAGE_FIELDS = _names("name", "data", "notification", "android", "webpush", "apns", "fcm_options",
                        "token", "topic", "condition")
NOTIFICATION_FIELDS = _names("title", "body", "image")
ANDROID_FIELDS = _names("collapse_key", "priority", "ttl", "restricted_package_name", "data",
                        "notification", "fcm_options", "direct_boot_ok", "bandwidth_constrained_ok",
                        "restricted_satellite_ok")
APNS_FIELDS = _names("headers", "payload", "fcm_options", "live_activity_token")
WEBPUSH_FIELDS = _names("headers", "data", "notification", "fcm_options")
FCM_OPTIONS_FIELDS = _names("analytics_label")
APNS_FCM_OPTIONS_FIELDS = _names("analytics_label", "image")
WEBPUSH_FCM_OPTIONS_FIELDS = _names("link", "analytics_label")
SEND_REQUEST_FIELDS = _names("message", "validate_only")

_STATUS = {}
def status_bytes(code):
    b = _STATUS.get(code)
    if b is None:
        b = _STATUS[code] = str(code).encode()
    return b

_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
def jdump(obj) -> bytes:
    return _encoder.encode(obj).encode("utf-8")

CT_JSON = (b"content-type", b"application/json; charset=UTF-8")
CT_APNS = (b"content-type", b"application/json")
NOFAULT = object()   # sentinel: "fault not looked up yet"


class Fault:
    __slots__ = ("service", "status", "remaining", "retry_after", "reason", "error_code",
                 "delay", "goaway", "token", "message", "source")

    def __init__(self, service, status, count=1, retry_after=None, reason=None, error_code=None,
                 delay_ms=0, goaway=False, token=None, message=None, source="api"):
        self.service = service
        self.status = status
        self.remaining = count
        self.retry_after = retry_after
        self.reason = reason
        self.error_code = error_code
        self.delay = (delay_ms or 0) / 1000.0
        self.goaway = goaway
        self.token = token
        self.message = message
        self.source = source

    def as_dict(self):
        return {"service": self.service, "status": self.status, "remaining": self.remaining,
                "retry_after": self.retry_after, "reason": self.reason, "error_code": self.error_code,
                "delay_ms": int(self.delay * 1000), "goaway": self.goaway, "token": self.token}


class AcceptedLog:
    """NDJSON log of accepted pushes; buffered, flushed by a timer (<= flush interval)."""

    def __init__(self, path):
        self.path = path
        self.f = open(path, "a", encoding="utf-8") if path else None
        self.buf = []
        self.written = 0

    def add(self, rec):
        if self.f is not None:
            self.buf.append(_encoder.encode(rec))

    def flush(self):
        if self.buf and self.f is not None:
            n = len(self.buf)
            self.f.write("\n".join(self.buf) + "\n")
            self.buf.clear()
            self.f.flush()
            self.written += n

    def close(self):
        self.flush()
        if self.f is not None:
            self.f.close()
            self.f = None


# ----------------------------------------------------------------------------- protocol

H2_CONFIG = h2.config.H2Configuration(
    client_side=False, header_encoding=None,
    validate_outbound_headers=False, normalize_outbound_headers=False,
    validate_inbound_headers=False, normalize_inbound_headers=False)

MAX_BODY = 1 << 20  # bytes buffered per request stream before the stream is reset


# --- performance shims (pure-Python h2/hpack; semantics unchanged) ---------------------------
class _NullLog:
    def debug(self, *a, **k):
        pass
    info = warning = error = debug


import hpack.hpack as _hpack_mod                                            # noqa: E402
_hpack_mod.log = _NullLog()            # hpack calls log.debug() several times per header
_orig_decode_huffman = _hpack_mod.decode_huffman
_huffman_cache = {}


def _cached_decode_huffman(data):
    """Clients send `authorization` as a never-indexed literal, so the same Huffman-coded JWT
    arrives on every request; decoding it in pure Python costs ~100 us. Cache by encoded bytes."""
    key = bytes(data)
    v = _huffman_cache.get(key)
    if v is None:
        v = _orig_decode_huffman(key)
        if len(_huffman_cache) >= 8192:
            _huffman_cache.clear()
        _huffman_cache[key] = v
    return v


_hpack_mod.decode_huffman = _cached_decode_huffman


def _hpack_int(value, prefix_bits, first_byte):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((first_byte | value,))
    out = bytearray((first_byte | limit,))
    value -= limit
    while value >= 128:
        out.append((value & 127) | 128)
        value >>= 7
    out.append(value)
    return bytes(out)


class ResponseHeaderEncoder:
    """Stateless HPACK encoder for our responses (RFC 7541): `:status` from the static table
    when it is there, everything else as "literal header field without indexing" (static name
    index when there is one). It never inserts into the dynamic table, so the only state is a
    pending "dynamic table size update" when the peer lowers SETTINGS_HEADER_TABLE_SIZE.
    hpack's own encoder linearly searches and churns its dynamic table with the random
    apns-id / apns-unique-id values of every response."""
    from hpack.table import HeaderTable as _T
    _STATUS = {v: i for i, (n, v) in enumerate(_T.STATIC_TABLE, 1) if n == b":status"}
    _NAMES = {}
    for _i, (_n, _v) in enumerate(_T.STATIC_TABLE, 1):
        _NAMES.setdefault(_n, _i)
    del _T, _i, _n, _v
    _cache = {}

    def __init__(self):
        self._size = 4096
        self._pending = None

    @property
    def header_table_size(self):
        return self._size

    @header_table_size.setter
    def header_table_size(self, value):
        if value < self._size:
            self._pending = value if self._pending is None else min(self._pending, value)
        self._size = value

    def encode(self, headers, huffman=True):
        parts = []
        if self._pending is not None:
            parts.append(_hpack_int(self._pending, 5, 0x20))
            self._pending = None
        cache = self._cache
        for name, value in headers:
            if name == b":status":
                idx = self._STATUS.get(value)
                if idx is not None:
                    parts.append(bytes((0x80 | idx,)))
                    continue
            prefix = cache.get(name)
            if prefix is None:
                idx = self._NAMES.get(name)
                prefix = cache[name] = (_hpack_int(idx, 4, 0x00) if idx is not None else
                                        b"\x00" + _hpack_int(len(name), 7, 0) + name)
            parts.append(prefix)
            parts.append(_hpack_int(len(value), 7, 0))
            parts.append(value)
        return b"".join(parts)


class FastH2Connection(h2.connection.H2Connection):
    """h2 counts open streams by scanning every stream on each new inbound stream (O(n)).
    While the stream table (open + not yet purged closed streams) is below the limit, that
    table size is an upper bound that already passes the limit check; scan (and purge) only
    when it reaches the limit: amortized O(1), and the table stays bounded by the limit."""

    @property
    def open_inbound_streams(self):
        n = len(self.streams)
        if n < self.local_settings.max_concurrent_streams:
            return n
        return self._open_streams(int(not self.config.client_side))


class H2Protocol(asyncio.Protocol):
    _ids = 0

    def __init__(self, emu: "Emulator"):
        self.emu = emu
        self.transport = None
        self.conn = None
        self.streams = {}
        self.pending = {}          # stream_id -> [remaining body bytes] waiting for flow control
        self.closed = False
        self.goaway_after = None   # debug data for a GOAWAY to send after the current response
        self.apns_authed = False
        H2Protocol._ids += 1
        self.cid = H2Protocol._ids

    # -- asyncio callbacks
    def connection_made(self, transport):
        self.transport = transport
        emu = self.emu
        sslobj = transport.get_extra_info("ssl_object")
        alpn = sslobj.selected_alpn_protocol() if sslobj is not None else None
        if alpn != "h2":
            emu.stats["connections_rejected_no_h2"] += 1
            self.closed = True
            transport.abort()
            return
        emu.stats["connections_total"] += 1
        emu.connections.add(self)
        conn = self.conn = FastH2Connection(config=H2_CONFIG)
        conn.encoder = ResponseHeaderEncoder()
        sc = h2.settings.SettingCodes
        conn.local_settings = h2.settings.Settings(client=False, initial_values={
            sc.MAX_CONCURRENT_STREAMS: emu.args.initial_max_concurrent_streams,
            sc.INITIAL_WINDOW_SIZE: 1 << 20,
            sc.MAX_HEADER_LIST_SIZE: 64 * 1024,
        })
        conn.initiate_connection()
        conn.increment_flow_control_window(64 * 1024 * 1024 - 65535)
        transport.write(conn.data_to_send())

    def connection_lost(self, exc):
        self.closed = True
        self.emu.connections.discard(self)
        self.streams.clear()
        self.pending.clear()

    def pause_writing(self):
        if not self.closed:
            self.transport.pause_reading()

    def resume_writing(self):
        if not self.closed:
            self.transport.resume_reading()

    def data_received(self, data):
        conn = self.conn
        if conn is None or self.closed:
            return
        try:
            events = conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.flush()
            self.transport.close()
            self.closed = True
            return
        streams = self.streams
        for ev in events:
            t = type(ev)
            if t is h2.events.DataReceived:
                s = streams.get(ev.stream_id)
                if ev.flow_controlled_length:
                    try:
                        conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    except h2.exceptions.StreamClosedError:
                        pass
                if s is not None:
                    s[1] += ev.data
                    if len(s[1]) > MAX_BODY:
                        del streams[ev.stream_id]
                        conn.reset_stream(ev.stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
            elif t is h2.events.RequestReceived:
                streams[ev.stream_id] = [ev.headers, b""]
            elif t is h2.events.StreamEnded:
                s = streams.pop(ev.stream_id, None)
                if s is not None:
                    try:
                        resp = self.emu.dispatch(self, ev.stream_id, s[0], s[1])
                    except Exception:   # an emulator bug must not take the connection down
                        import traceback
                        traceback.print_exc()
                        self.emu.stats["internal_errors"] += 1
                        resp = [(b":status", b"500"), CT_APNS], b'{"reason":"InternalServerError"}'
                    if resp is not None:
                        self.respond(ev.stream_id, resp)
            elif t is h2.events.StreamReset:
                streams.pop(ev.stream_id, None)
                self.pending.pop(ev.stream_id, None)
            elif t is h2.events.WindowUpdated:
                if self.pending:
                    self._drain_pending()
            elif t is h2.events.ConnectionTerminated:
                self.flush()
                self.transport.close()
                self.closed = True
                return
        self.flush()

    # -- sending
    def flush(self):
        if self.conn is not None and not self.closed:
            data = self.conn.data_to_send()
            if data:
                self.transport.write(data)

    def respond(self, sid, resp):
        headers, body = resp
        conn = self.conn
        try:
            if body:
                conn.send_headers(sid, headers)
                self._send_body(sid, body)
            else:
                conn.send_headers(sid, headers, end_stream=True)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            return
        if self.goaway_after is not None:
            debug, self.goaway_after = self.goaway_after, None
            self.goaway(debug)

    def _send_body(self, sid, body):
        conn = self.conn
        window = conn.local_flow_control_window(sid)
        maxf = conn.max_outbound_frame_size
        if len(body) <= window and len(body) <= maxf:
            conn.send_data(sid, body, end_stream=True)
            return
        view = memoryview(body)
        while view:
            window = conn.local_flow_control_window(sid)
            if window <= 0:
                self.pending[sid] = bytes(view)
                return
            n = min(window, maxf, len(view))
            conn.send_data(sid, bytes(view[:n]), end_stream=(n == len(view)))
            view = view[n:]

    def _drain_pending(self):
        for sid in list(self.pending):
            body = self.pending.pop(sid)
            try:
                self._send_body(sid, body)
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                pass

    def goaway(self, debug: bytes = b"", close_after=2.0):
        if self.closed or self.conn is None:
            return
        try:
            self.conn.close_connection(error_code=h2.errors.ErrorCodes.NO_ERROR, additional_data=debug,
                                       last_stream_id=self.conn.highest_inbound_stream_id)
        except h2.exceptions.ProtocolError:
            pass
        self.flush()
        self.emu.stats["goaways_sent"] += 1
        self.emu.loop.call_later(close_after, self._close_transport)

    def _close_transport(self):
        if not self.closed:
            self.closed = True
            self.transport.close()

    def raise_stream_limit(self):
        """APNs raises SETTINGS_MAX_CONCURRENT_STREAMS once the provider token is accepted."""
        self.apns_authed = True
        target = self.emu.args.max_concurrent_streams
        if self.emu.args.initial_max_concurrent_streams < target and not self.closed:
            self.conn.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: target})


# ----------------------------------------------------------------------------- emulator


class Emulator:
    def __init__(self, args):
        self.args = args
        self.loop = None
        self.port = None
        self.connections = set()
        self.stats = collections.Counter()
        self.status_counts = collections.Counter()    # (service, status) -> n
        self.reason_counts = collections.Counter()    # (service, reason) -> n
        self.started = time.time()
        # APNs
        self.apns_keys = {}        # kid -> (team_id, public key object)
        self.apns_topics = None
        self.jwt_cache = {}        # jwt bytes -> (reason | None, kid, iat)
        self.kid_state = {}        # kid -> {"adopted": {jwt: iat}, "last_new": float | None}
        # FCM
        self.fcm_accounts = {}     # client_email -> account dict
        self.fcm_projects = {}     # project_id -> account
        self.access_tokens = {}    # token bytes -> [expires_at, project_id, client_email]
        # unregistered tokens
        self.unreg_file = {}
        self.unreg_runtime = {}
        self.unreg_mtime = None
        # faults
        self.faults = []
        self.rng = random.Random(args.fault_seed)
        self.random_fault = None
        if args.fault_rate > 0:
            self.random_fault = Fault(args.fault_service, args.fault_status, count=1 << 62,
                                      retry_after=args.fault_retry_after, source="random")
        self.accepted = AcceptedLog(args.accepted)
        self._load_keys()
        self._load_unregistered(initial=True)

    # ------------------------------------------------------------------ config loading
    def _load_keys(self):
        a = self.args
        specs = []
        if a.apns_public_key or a.apns_key_id or a.apns_team_id:
            if not (a.apns_public_key and a.apns_key_id and a.apns_team_id):
                sys.exit("--apns-key-id, --apns-team-id and --apns-public-key go together")
            specs.append((a.apns_key_id, a.apns_team_id, a.apns_public_key))
        for spec in a.apns_key or []:
            parts = spec.split(",", 2)
            if len(parts) != 3:
                sys.exit(f"--apns-key wants KID,TEAM,PEM_PATH, got {spec!r}")
            specs.append(tuple(parts))
        for kid, team, path in specs:
            self.apns_keys[kid] = (team, _load_public_key(path))
        if a.apns_topics:
            self.apns_topics = frozenset(t.strip() for t in a.apns_topics.split(",") if t.strip())
        for path in a.fcm_credentials or []:
            with open(path, encoding="utf-8") as f:
                sa = json.load(f)
            for field in ("project_id", "private_key", "client_email", "token_uri"):
                if not sa.get(field):
                    sys.exit(f"{path}: service-account JSON lacks {field!r}")
            priv = serialization.load_pem_private_key(sa["private_key"].encode(), password=None)
            acct = {"project_id": sa["project_id"], "client_email": sa["client_email"],
                    "private_key_id": sa.get("private_key_id"), "token_uri": sa["token_uri"],
                    "public_key": priv.public_key(), "source": os.path.abspath(path), "raw": sa}
            self.fcm_accounts[sa["client_email"]] = acct
            self.fcm_projects[sa["project_id"]] = acct

    def _load_unregistered(self, initial=False):
        path = self.args.unregistered
        if not path:
            return
        try:
            mtime = os.stat(path).st_mtime_ns
        except FileNotFoundError:
            if self.unreg_file:
                self.unreg_file = {}
            self.unreg_mtime = None
            return
        if mtime == self.unreg_mtime:
            return
        self.unreg_mtime = mtime
        now_ms = int(time.time() * 1000)
        old = self.unreg_file
        new = {}
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                parts = line.split()
                tok = parts[0]
                if len(parts) > 1:
                    try:
                        ts = int(parts[1])
                    except ValueError:
                        ts = old.get(_norm_token(tok), now_ms)
                else:
                    ts = old.get(_norm_token(tok), now_ms)
                new[_norm_token(tok)] = ts
        self.unreg_file = new
        if not initial:
            self.stats["unregistered_file_reloads"] += 1

    def unregistered_ts(self, token: str):
        key = _norm_token(token)
        ts = self.unreg_runtime.get(key)
        if ts is None:
            ts = self.unreg_file.get(key)
        return ts

    # ------------------------------------------------------------------ accounting
    def count(self, service, status, reason=None):
        self.status_counts[(service, status)] += 1
        if reason:
            self.reason_counts[(service, reason)] += 1
        if self.args.verbose:
            print(f"[push-emulator] {service} {status} {reason or ''}", file=sys.stderr, flush=True)

    # ------------------------------------------------------------------ faults
    def take_fault(self, service, token):
        if self.faults:
            for f in self.faults:
                if (f.service == service or (f.service == "any" and service != "oauth")) and \
                        (f.token is None or f.token == token):
                    f.remaining -= 1
                    if f.remaining <= 0:
                        self.faults.remove(f)
                    self.stats["faults_injected_" + service] += 1
                    return f
        rf = self.random_fault
        if rf is not None and (rf.service == service or (rf.service == "any" and service != "oauth")):
            if self.rng.random() < self.args.fault_rate:
                self.stats["faults_injected_" + service] += 1
                return rf
        return None

    def defer(self, delay, proto, sid, fn, args):
        self.stats["delayed_responses"] += 1

        def run():
            if proto.closed:
                return
            resp = fn(*args)
            if resp is not None:
                proto.respond(sid, resp)
                proto.flush()
        self.loop.call_later(delay, run)

    # ------------------------------------------------------------------ dispatch
    def dispatch(self, proto, sid, headers, body):
        stats = self.stats
        stats["requests_total"] += 1
        method = path = authority = None
        hdrs = {}
        dups = None
        for name, value in headers:
            if name[:1] == b":":
                if name == b":method":
                    method = value
                elif name == b":path":
                    path = value
                elif name == b":authority":
                    authority = value
                continue
            if name in hdrs:
                if dups is None:
                    dups = []
                dups.append(name)
                prev = hdrs[name]
                hdrs[name] = (prev if isinstance(prev, list) else [prev]) + [value]
            else:
                hdrs[name] = value
        if path is None or method is None:
            stats["requests_malformed"] += 1
            return [(b":status", b"400")], b""
        if path.startswith(APNS_PREFIX):
            stats["requests_apns"] += 1
            return self.apns(proto, sid, method, path, authority, hdrs, dups, body)
        if path.startswith(FCM_PREFIX):
            stats["requests_fcm"] += 1
            return self.fcm(proto, sid, method, path, authority, hdrs, dups, body)
        qpath = path.split(b"?", 1)[0]
        if qpath == b"/token":
            stats["requests_oauth"] += 1
            return self.oauth(proto, sid, method, authority, hdrs, body)
        if qpath.startswith(b"/_emulator/"):
            stats["requests_control"] += 1
            return self.control(proto, method, qpath, body)
        if path.startswith(b"/3/"):
            stats["requests_apns"] += 1
            return self.apns_error(404, "BadPath", _new_apns_id())
        stats["requests_other"] += 1
        return self.google_error("other", 404, "NOT_FOUND",
                                 "The requested URL %s was not found on this server." % qpath.decode("latin-1"))

    # ================================================================== APNs
    def apns_error(self, status, reason, apns_id, timestamp=None, retry_after=None):
        self.count("apns", status, reason)
        body = {"reason": reason}
        if timestamp is not None:
            body["timestamp"] = timestamp
        h = [(b":status", status_bytes(status)), (b"apns-id", apns_id), CT_APNS]
        if retry_after is not None:
            h.append((b"retry-after", str(retry_after).encode()))
        return h, jdump(body)

    def apns(self, proto, sid, method, path, authority, hdrs, dups, body, fault=NOFAULT):
        req_id = hdrs.get(b"apns-id")
        valid_id = type(req_id) is bytes and UUID_RE.fullmatch(req_id) is not None
        apns_id = req_id if valid_id else _new_apns_id()
        if method != b"POST":
            return self.apns_error(405, "MethodNotAllowed", apns_id)
        token_b = path[len(APNS_PREFIX):]
        if not token_b:
            return self.apns_error(400, "MissingDeviceToken", apns_id)

        if fault is NOFAULT:
            fault = self.take_fault("apns", token_b.decode("latin-1").lower())
            if fault is not None and fault.delay:
                self.defer(fault.delay, proto, sid, self.apns,
                           (proto, sid, method, path, authority, hdrs, dups, body, fault))
                return None
        if fault is not None and fault.status:
            return self.apns_fault(proto, fault, apns_id)

        now = time.time()
        # --- provider token (JWT)
        auth = hdrs.get(b"authorization")
        if type(auth) is list:
            return self.apns_error(400, "DuplicateHeaders", apns_id)
        if not auth:
            return self.apns_error(403, "MissingProviderToken", apns_id)
        scheme, _, jwt_b = auth.partition(b" ")
        jwt_b = jwt_b.strip()
        if scheme.lower() != b"bearer":
            return self.apns_error(403, "InvalidProviderToken", apns_id)
        if not jwt_b:
            return self.apns_error(403, "MissingProviderToken", apns_id)
        reason = self.check_apns_jwt(jwt_b, now)
        if reason is not None:
            return self.apns_error(429 if reason == "TooManyProviderTokenUpdates" else 403, reason, apns_id)
        if not proto.apns_authed:
            proto.raise_stream_limit()

        # --- headers
        if dups:
            return self.apns_error(400, "DuplicateHeaders", apns_id)
        if req_id is not None and not valid_id:
            return self.apns_error(400, "BadMessageId", apns_id)
        topic = hdrs.get(b"apns-topic")
        if not topic:
            return self.apns_error(400, "MissingTopic", apns_id)
        if self.apns_topics is not None and not self._topic_allowed(topic):
            return self.apns_error(400, "TopicDisallowed", apns_id)
        push_type = hdrs.get(b"apns-push-type")
        if push_type is None:
            if self.args.apns_require_push_type:
                return self.apns_error(400, "InvalidPushType", apns_id)
        elif push_type not in APNS_PUSH_TYPES:
            return self.apns_error(400, "InvalidPushType", apns_id)
        prio = hdrs.get(b"apns-priority")
        if prio is not None and prio not in APNS_PRIORITIES:
            return self.apns_error(400, "BadPriority", apns_id)
        exp = hdrs.get(b"apns-expiration")
        if exp is not None and DIGITS_RE.fullmatch(exp) is None:
            return self.apns_error(400, "BadExpirationDate", apns_id)
        coll = hdrs.get(b"apns-collapse-id")
        if coll is not None and len(coll) > 64:
            return self.apns_error(400, "BadCollapseId", apns_id)

        # --- device token
        if HEX_TOKEN_RE.fullmatch(token_b) is None:
            return self.apns_error(400, "BadDeviceToken", apns_id)
        token = token_b.decode("ascii").lower()

        # --- payload
        limit = 5120 if push_type == b"voip" else 4096
        if len(body) > limit:
            return self.apns_error(413, "PayloadTooLarge", apns_id)
        if not body.strip():
            return self.apns_error(400, "PayloadEmpty", apns_id)
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return self.apns_error(400, self.args.apns_bad_payload_reason, apns_id)
        if type(payload) is not dict or type(payload.get("aps")) is not dict:
            return self.apns_error(400, self.args.apns_bad_payload_reason, apns_id)

        # --- token state
        ts = self.unregistered_ts(token)
        if ts is not None:
            return self.apns_error(410, "Unregistered", apns_id, timestamp=ts)

        # --- accepted
        self.count("apns", 200)
        self.stats["accepted_apns"] += 1
        unique_id = None
        h = [(b":status", b"200"), (b"apns-id", apns_id)]
        if self.args.apns_environment == "development":
            unique_id = _uuid4_hex().encode()
            h.append((b"apns-unique-id", unique_id))
        if self.accepted.f is not None:
            self.accepted.add({
                "service": "apns", "time": round(now, 6),
                "device_token": token,
                "path": path.decode("latin-1"),
                "authority": authority.decode("latin-1") if authority else None,
                "headers": _headers_for_log(hdrs),
                "payload": payload,
                "apns_id": apns_id.decode("latin-1"),
                "apns_unique_id": unique_id.decode() if unique_id else None,
                "connection": proto.cid, "stream_id": sid,
            })
        return h, b""

    def _topic_allowed(self, topic_b):
        topic = topic_b.decode("utf-8", "replace")
        allowed = self.apns_topics
        if topic in allowed:
            return True
        for suf in APNS_TOPIC_SUFFIXES:
            if topic.endswith(suf) and topic[:-len(suf)] in allowed:
                return True
        return False

    def check_apns_jwt(self, jwt_b: bytes, now: float):
        ent = self.jwt_cache.get(jwt_b)
        if ent is None:
            ent = self._verify_apns_jwt(jwt_b)
            if len(self.jwt_cache) >= 100_000:
                self.jwt_cache.clear()
            self.jwt_cache[jwt_b] = ent
            self.stats["apns_distinct_jwts"] += 1
            self.stats["apns_jwt_verifications_ok" if ent[0] is None else "apns_jwt_verifications_failed"] += 1
        reason, kid, iat = ent
        if reason is not None:
            return reason
        age = now - iat
        if age > 3600:
            return "ExpiredProviderToken"
        if age < -60:
            return "InvalidProviderToken"
        if self.args.apns_token_update_limit:
            st = self.kid_state.get(kid)
            if st is None:
                st = self.kid_state[kid] = {"adopted": {}, "last_new": None}
            adopted = st["adopted"]
            if jwt_b not in adopted:
                last = st["last_new"]
                if last is not None and now - last < self.args.apns_token_update_interval:
                    self.stats["apns_too_many_provider_token_updates"] += 1
                    return "TooManyProviderTokenUpdates"
                # adopt; forget adopted tokens that are past their 1 h lifetime
                for old in [k for k, v in adopted.items() if now - v > 3600]:
                    del adopted[old]
                adopted[jwt_b] = iat
                st["last_new"] = now
                self.stats["apns_provider_token_adoptions"] += 1
        return None

    def _verify_apns_jwt(self, jwt_b: bytes):
        bad = ("InvalidProviderToken", None, None)
        try:
            s = jwt_b.decode("ascii")
            header = jwt.get_unverified_header(s)
        except Exception:
            return bad
        if header.get("alg") != "ES256":
            return bad
        kid = header.get("kid")
        key = self.apns_keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            return bad
        team, pub = key
        try:
            claims = jwt.decode(s, pub, algorithms=["ES256"], options={
                "verify_signature": True, "verify_exp": False, "verify_nbf": False,
                "verify_iat": False, "verify_aud": False, "verify_iss": False})
        except Exception:
            return bad
        if claims.get("iss") != team:
            return bad
        iat = claims.get("iat")
        if type(iat) not in (int, float):
            return bad
        return (None, kid, float(iat))

    def apns_fault(self, proto, fault, apns_id):
        st = fault.status
        reason = fault.reason or {429: "TooManyRequests", 500: "InternalServerError",
                                  503: "ServiceUnavailable", 410: "Unregistered",
                                  400: "BadDeviceToken", 403: "InvalidProviderToken",
                                  413: "PayloadTooLarge"}.get(st, "InternalServerError")
        ts = int(time.time() * 1000) if st == 410 else None
        if fault.goaway:
            proto.goaway_after = jdump({"reason": reason if st == 503 else "Shutdown"})
        return self.apns_error(st, reason, apns_id, timestamp=ts, retry_after=fault.retry_after)

    # ================================================================== Google helpers
    def google_error(self, service, code, status, message, details=None, extra_headers=None,
                     count_reason=None):
        self.count(service, code, count_reason or status)
        err = {"code": code, "message": message, "status": status}
        if details:
            err["details"] = details
        h = [(b":status", status_bytes(code)), CT_JSON]
        if extra_headers:
            h.extend(extra_headers)
        return h, jdump({"error": err})

    def fcm_invalid(self, message, field=None, fcm_detail=True):
        details = []
        if fcm_detail:
            details.append({"@type": FCM_ERROR_TYPE, "errorCode": "INVALID_ARGUMENT"})
        if field is not None:
            details.append({"@type": BAD_REQUEST_TYPE,
                            "fieldViolations": [{"field": field, "description": message}]})
        return self.google_error("fcm", 400, "INVALID_ARGUMENT", message, details,
                                 count_reason="INVALID_ARGUMENT")

    def fcm_unauth(self, message, reason):
        details = None
        if reason:
            details = [{"@type": ERROR_INFO_TYPE, "reason": reason, "domain": "googleapis.com",
                        "metadata": {"service": "fcm.googleapis.com",
                                     "method": "google.firebase.fcm.v1.FcmService.SendMessage"}}]
        return self.google_error(
            "fcm", 401, "UNAUTHENTICATED", message, details,
            extra_headers=[(b"www-authenticate",
                            b'Bearer realm="https://accounts.google.com/", error="invalid_token"')],
            count_reason=reason or "UNAUTHENTICATED")

    # ================================================================== FCM send
    def fcm(self, proto, sid, method, path, authority, hdrs, dups, body, fault=NOFAULT):
        qpath = path.split(b"?", 1)[0]
        if not qpath.endswith(FCM_SUFFIX):
            return self.google_error("fcm", 404, "NOT_FOUND", "The requested URL %s was not found on this "
                                     "server." % qpath.decode("latin-1"))
        project = qpath[len(FCM_PREFIX):-len(FCM_SUFFIX)].decode("utf-8", "replace")
        if not project or "/" in project:
            return self.google_error("fcm", 404, "NOT_FOUND", "The requested URL %s was not found on this "
                                     "server." % qpath.decode("latin-1"))
        if method != b"POST":
            return self.google_error("fcm", 404, "NOT_FOUND", "Method %s %s is not found; use POST."
                                     % (method.decode("latin-1"), qpath.decode("latin-1")))
        # body is parsed up front (the target token is needed to match token-specific faults)
        try:
            doc = json.loads(body) if body else None
            parse_error = None if body else "empty body"
        except (ValueError, UnicodeDecodeError) as e:
            doc, parse_error = None, str(e)
        msg = doc.get("message") if type(doc) is dict else None
        target = msg.get("token") if type(msg) is dict else None

        if fault is NOFAULT:
            fault = self.take_fault("fcm", target if type(target) is str else None)
            if fault is not None and fault.delay:
                self.defer(fault.delay, proto, sid, self.fcm,
                           (proto, sid, method, path, authority, hdrs, dups, body, fault))
                return None
        if fault is not None and fault.status:
            return self.fcm_fault(proto, fault)

        # --- OAuth2 access token
        auth = hdrs.get(b"authorization")
        if type(auth) is list:
            auth = auth[0]
        if not auth:
            return self.fcm_unauth("Request is missing required authentication credential. " + GOOGLE_AUTH_HELP,
                                   "CREDENTIALS_MISSING")
        scheme, _, tok = auth.partition(b" ")
        tok = tok.strip()
        if scheme.lower() != b"bearer" or not tok:
            return self.fcm_unauth("Request had invalid authentication credentials. " + GOOGLE_AUTH_HELP,
                                   "ACCESS_TOKEN_TYPE_UNSUPPORTED")
        ent = self.access_tokens.get(tok)
        now = time.time()
        if ent is None:
            return self.fcm_unauth("Request had invalid authentication credentials. " + GOOGLE_AUTH_HELP, None)
        if ent[0] <= now:
            return self.fcm_unauth("Request had invalid authentication credentials. " + GOOGLE_AUTH_HELP,
                                   "ACCESS_TOKEN_EXPIRED")
        if project != ent[1]:
            return self.google_error(
                "fcm", 403, "PERMISSION_DENIED",
                "Permission 'cloudmessaging.messages.create' denied on resource "
                "'//cloudresourcemanager.googleapis.com/projects/%s' (or it may not exist)." % project,
                [{"@type": ERROR_INFO_TYPE, "reason": "IAM_PERMISSION_DENIED", "domain": "cloudresourcemanager.googleapis.com",
                  "metadata": {"permission": "cloudmessaging.messages.create",
                               "resource": "projects/" + project}}])

        # --- request body
        if parse_error is not None or type(doc) is not dict:
            desc = "Invalid JSON payload received. " + (
                "Unexpected token." if parse_error and parse_error != "empty body" else
                "Expected a JSON object.")
            return self.fcm_invalid(desc, "", fcm_detail=False)
        err = self.validate_send_request(doc)
        if err is not None:
            return self.fcm_invalid(*err)

        if type(target) is str:
            ts = self.unregistered_ts(target)
            if ts is not None:
                return self.google_error("fcm", 404, "NOT_FOUND", "Requested entity was not found.",
                                         [{"@type": FCM_ERROR_TYPE, "errorCode": "UNREGISTERED"}],
                                         count_reason="UNREGISTERED")

        validate_only = doc.get("validate_only", doc.get("validateOnly", False))
        if validate_only:
            self.count("fcm", 200)
            self.stats["fcm_validate_only"] += 1
            return [(b":status", b"200"), CT_JSON], jdump(
                {"name": "projects/%s/messages/fake_message_id" % project})

        self.count("fcm", 200)
        self.stats["accepted_fcm"] += 1
        name = "projects/%s/messages/0:%d%%%s" % (project, int(now * 1e6), secrets.token_hex(8))
        if self.accepted.f is not None:
            rec = {"service": "fcm", "time": round(now, 6),
                   "device_token": target if type(target) is str else None,
                   "project_id": project,
                   "path": path.decode("latin-1"),
                   "authority": authority.decode("latin-1") if authority else None,
                   "headers": _headers_for_log(hdrs),
                   "payload": doc,
                   "message_name": name,
                   "connection": proto.cid, "stream_id": sid}
            if "topic" in msg:
                rec["topic"] = msg["topic"]
            if "condition" in msg:
                rec["condition"] = msg["condition"]
            self.accepted.add(rec)
        return [(b":status", b"200"), CT_JSON], jdump({"name": name})

    def fcm_fault(self, proto, fault):
        st = fault.status
        defaults = {
            429: ("RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED",
                  "Quota exceeded for quota metric 'Send messages' of service 'fcm.googleapis.com'."),
            500: ("INTERNAL", "INTERNAL", "Internal error encountered."),
            503: ("UNAVAILABLE", "UNAVAILABLE", "The service is currently unavailable."),
            404: ("NOT_FOUND", "UNREGISTERED", "Requested entity was not found."),
            400: ("INVALID_ARGUMENT", "INVALID_ARGUMENT", "Request contains an invalid argument."),
            403: ("PERMISSION_DENIED", "SENDER_ID_MISMATCH", "SenderId mismatch"),
            401: ("UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR", "Auth error from APNS or Web Push Service"),
        }
        status, code, message = defaults.get(st, ("INTERNAL", "INTERNAL", "Internal error encountered."))
        if fault.reason:
            status = fault.reason
        if fault.error_code:
            code = fault.error_code
        if fault.message:
            message = fault.message
        extra = [(b"retry-after", str(fault.retry_after).encode())] if fault.retry_after is not None else None
        if fault.goaway:
            proto.goaway_after = b""
        return self.google_error("fcm", st, status, message, [{"@type": FCM_ERROR_TYPE, "errorCode": code}],
                                 extra_headers=extra, count_reason=code)

    # --- proto3-JSON-ish structural validation, then FCM semantic validation
    def validate_send_request(self, doc):
        for k in doc:
            if k not in SEND_REQUEST_FIELDS:
                return _unknown_name(k, "")
        vo = doc.get("validate_only", doc.get("validateOnly"))
        if vo is not None and type(vo) is not bool:
            return _bad_value("validate_only", "TYPE_BOOL", vo)
        msg = doc.get("message")
        if msg is None:
            return ("Request contains an invalid argument.", "message")
        if type(msg) is not dict:
            return _bad_value("message", "type.googleapis.com/google.firebase.fcm.v1.Message", msg)
        for k, v in msg.items():
            if k not in MESSAGE_FIELDS:
                return _unknown_name(k, "message")
        for f in ("name", "token", "topic", "condition"):
            if f in msg and type(msg[f]) is not str:
                return _bad_value("message." + f, "TYPE_STRING", msg[f])
        targets = [f for f in ("token", "topic", "condition") if f in msg]
        if len(targets) > 1:
            return ("Invalid value at 'message' (oneof), oneof field 'target' is already set. "
                    "Cannot set '%s'" % targets[1], "message", False)
        data = msg.get("data")
        if data is not None:
            e = _check_string_map(data, "message.data")
            if e:
                return e
        notif = msg.get("notification")
        if notif is not None:
            e = _check_flat_object(notif, "message.notification", NOTIFICATION_FIELDS,
                                   "google.firebase.fcm.v1.Notification")
            if e:
                return e
        android = msg.get("android")
        if android is not None:
            e = self._check_android(android)
            if e:
                return e
        apns = msg.get("apns")
        if apns is not None:
            e = self._check_apns(apns)
            if e:
                return e
        webpush = msg.get("webpush")
        if webpush is not None:
            e = self._check_webpush(webpush)
            if e:
                return e
        fo = msg.get("fcm_options", msg.get("fcmOptions"))
        if fo is not None:
            e = _check_flat_object(fo, "message.fcm_options", FCM_OPTIONS_FIELDS,
                                   "google.firebase.fcm.v1.FcmOptions")
            if e:
                return e

        # --- semantic checks
        if not targets:
            return ("Recipient of the message is not set.", "message")
        if "token" in msg and FCM_TOKEN_RE.fullmatch(msg["token"]) is None:
            return ("The registration token is not a valid FCM registration token", None)
        if "topic" in msg and FCM_TOPIC_RE.fullmatch(msg["topic"]) is None:
            return ("Invalid topic name %s" % msg["topic"], "message.topic")
        if "condition" in msg and not msg["condition"].strip():
            return ("Invalid condition expression provided.", "message.condition")
        for mp, where in ((data, "message.data"), (android and android.get("data"), "message.android.data")):
            if mp:
                for k in mp:
                    if k in ("from", "message_type") or k.startswith("google.") or k.startswith("gcm."):
                        return ("Invalid data payload key: %s" % k, where)
        if android:
            ttl = android.get("ttl")
            if ttl is not None:
                m = DURATION_RE.fullmatch(ttl)
                secs = int(m.group(2)) + (int((m.group(3) or "0").ljust(9, "0")) / 1e9)
                if m.group(1) == "-" or secs > FCM_MAX_TTL:
                    return ("TTL must be between 0 and 2419200s (4 weeks), got %s" % ttl,
                            "message.android.ttl")
        size = _payload_size(msg)
        if size > FCM_MAX_PAYLOAD:
            return ("Message payload exceeds the limit: %d bytes of data and notification keys and values, "
                    "at most %d allowed" % (size, FCM_MAX_PAYLOAD), "message")
        if apns and "payload" in apns:
            n = len(jdump(apns["payload"]))
            if n > FCM_MAX_PAYLOAD:
                return ("APNs payload is too big: %d bytes, at most %d allowed" % (n, FCM_MAX_PAYLOAD),
                        "message.apns.payload")
        return None

    def _check_android(self, a):
        where = "message.android"
        if type(a) is not dict:
            return _bad_value(where, "type.googleapis.com/google.firebase.fcm.v1.AndroidConfig", a)
        for k in a:
            if k not in ANDROID_FIELDS:
                return _unknown_name(k, where)
        for f, camel in (("collapse_key", "collapseKey"), ("restricted_package_name", "restrictedPackageName")):
            v = a.get(f, a.get(camel))
            if v is not None and type(v) is not str:
                return _bad_value(where + "." + f, "TYPE_STRING", v)
        p = a.get("priority")
        if p is not None and (type(p) is bool or p not in ("NORMAL", "HIGH", 0, 1)):
            return _bad_value(where + ".priority",
                              "type.googleapis.com/google.firebase.fcm.v1.AndroidMessagePriority", p)
        ttl = a.get("ttl")
        if ttl is not None and (type(ttl) is not str or DURATION_RE.fullmatch(ttl) is None):
            return ("Invalid value at '%s.ttl' (type.googleapis.com/google.protobuf.Duration), Field 'ttl', "
                    "Illegal duration format; duration must end with 's': %s" % (where, json.dumps(ttl)),
                    where + ".ttl", False)
        if "data" in a:
            e = _check_string_map(a["data"], where + ".data")
            if e:
                return e
        if "notification" in a and type(a["notification"]) is not dict:
            return _bad_value(where + ".notification",
                              "type.googleapis.com/google.firebase.fcm.v1.AndroidNotification", a["notification"])
        fo = a.get("fcm_options", a.get("fcmOptions"))
        if fo is not None:
            e = _check_flat_object(fo, where + ".fcm_options", FCM_OPTIONS_FIELDS,
                                   "google.firebase.fcm.v1.AndroidFcmOptions")
            if e:
                return e
        for f, camel in (("direct_boot_ok", "directBootOk"), ("bandwidth_constrained_ok", "bandwidthConstrainedOk"),
                         ("restricted_satellite_ok", "restrictedSatelliteOk")):
            v = a.get(f, a.get(camel))
            if v is not None and type(v) is not bool:
                return _bad_value(where + "." + f, "TYPE_BOOL", v)
        return None

    def _check_apns(self, a):
        where = "message.apns"
        if type(a) is not dict:
            return _bad_value(where, "type.googleapis.com/google.firebase.fcm.v1.ApnsConfig", a)
        for k in a:
            if k not in APNS_FIELDS:
                return _unknown_name(k, where)
        if "headers" in a:
            e = _check_string_map(a["headers"], where + ".headers")
            if e:
                return e
        if "payload" in a and type(a["payload"]) is not dict:
            return _bad_value(where + ".payload", "type.googleapis.com/google.protobuf.Struct", a["payload"])
        fo = a.get("fcm_options", a.get("fcmOptions"))
        if fo is not None:
            e = _check_flat_object(fo, where + ".fcm_options", APNS_FCM_OPTIONS_FIELDS,
                                   "google.firebase.fcm.v1.ApnsFcmOptions")
            if e:
                return e
        lat = a.get("live_activity_token", a.get("liveActivityToken"))
        if lat is not None and type(lat) is not str:
            return _bad_value(where + ".live_activity_token", "TYPE_STRING", lat)
        return None

    def _check_webpush(self, w):
        where = "message.webpush"
        if type(w) is not dict:
            return _bad_value(where, "type.googleapis.com/google.firebase.fcm.v1.WebpushConfig", w)
        for k in w:
            if k not in WEBPUSH_FIELDS:
                return _unknown_name(k, where)
        for f in ("headers", "data"):
            if f in w:
                e = _check_string_map(w[f], where + "." + f)
                if e:
                    return e
        if "notification" in w and type(w["notification"]) is not dict:
            return _bad_value(where + ".notification", "type.googleapis.com/google.protobuf.Struct",
                              w["notification"])
        fo = w.get("fcm_options", w.get("fcmOptions"))
        if fo is not None:
            e = _check_flat_object(fo, where + ".fcm_options", WEBPUSH_FCM_OPTIONS_FIELDS,
                                   "google.firebase.fcm.v1.WebpushFcmOptions")
            if e:
                return e
        return None

    # ================================================================== OAuth2 token endpoint
    def oauth_error(self, error, description, status=400):
        self.count("oauth", status, error)
        self.stats["fcm_token_exchanges_failed"] += 1
        return [(b":status", status_bytes(status)), CT_JSON, (b"cache-control", b"no-store")], \
            jdump({"error": error, "error_description": description})

    def oauth(self, proto, sid, method, authority, hdrs, body, fault=NOFAULT):
        if method != b"POST":
            return self.oauth_error("invalid_request", "Method %s not allowed; use POST." % method.decode("latin-1"),
                                    405)
        if fault is NOFAULT:
            fault = self.take_fault("oauth", None)
            if fault is not None and fault.delay:
                self.defer(fault.delay, proto, sid, self.oauth, (proto, sid, method, authority, hdrs, body, fault))
                return None
        if fault is not None and fault.status:
            h, b = self.oauth_error(fault.reason or ("internal_failure" if fault.status >= 500 else "invalid_grant"),
                                    fault.message or "Injected fault.", fault.status)
            if fault.retry_after is not None:
                h.append((b"retry-after", str(fault.retry_after).encode()))
            return h, b
        ctype = hdrs.get(b"content-type", b"")
        if type(ctype) is list:
            ctype = ctype[0]
        try:
            text = body.decode("utf-8")
            if ctype.startswith(b"application/json"):
                params = {k: v if isinstance(v, str) else json.dumps(v) for k, v in json.loads(text).items()}
            else:
                params = {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}
        except Exception:
            return self.oauth_error("invalid_request", "Could not parse the request body.")
        grant = params.get("grant_type")
        if not grant:
            return self.oauth_error("invalid_request", "Missing required parameter: grant_type")
        if grant != JWT_BEARER:
            return self.oauth_error("unsupported_grant_type", "Invalid grant_type: " + grant)
        assertion = params.get("assertion")
        if not assertion:
            return self.oauth_error("invalid_request", "Missing required parameter: assertion")
        try:
            header = jwt.get_unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except Exception:
            return self.oauth_error("invalid_grant", "Invalid JWT: could not decode the assertion.")
        if header.get("alg") != "RS256":
            return self.oauth_error("invalid_grant", "Invalid JWT Signature.")
        acct = self.fcm_accounts.get(unverified.get("iss"))
        if acct is None:
            return self.oauth_error("invalid_grant", "Invalid grant: account not found")
        kid = header.get("kid")
        if kid is not None and acct["private_key_id"] and kid != acct["private_key_id"]:
            return self.oauth_error("invalid_grant", "Invalid JWT Signature.")
        try:
            claims = jwt.decode(assertion, acct["public_key"], algorithms=["RS256"], options={
                "verify_signature": True, "verify_exp": False, "verify_nbf": False,
                "verify_iat": False, "verify_aud": False, "verify_iss": False})
        except Exception:
            return self.oauth_error("invalid_grant", "Invalid JWT Signature.")
        aud = claims.get("aud")
        ok_auds = {acct["token_uri"]}
        if authority:
            ok_auds.add("https://%s/token" % authority.decode("latin-1"))
        if self.port:
            for h in ("127.0.0.1", "localhost", self.args.host):
                ok_auds.add("https://%s:%d/token" % (h, self.port))
        if aud not in ok_auds:
            return self.oauth_error("invalid_grant", "Invalid JWT: Failed audience check. The right audience is "
                                    + acct["token_uri"])
        iat, exp = claims.get("iat"), claims.get("exp")
        now = time.time()
        skew = self.args.clock_skew
        if type(iat) not in (int, float) or type(exp) not in (int, float) or exp - iat > 3600 or exp <= iat \
                or iat > now + skew or exp < now - skew:
            return self.oauth_error("invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) "
                                    "and in a reasonable timeframe. Check your iat and exp values in the JWT claim.")
        scope = claims.get("scope")
        if not scope or type(scope) is not str:
            return self.oauth_error("invalid_scope", "Invalid OAuth scope or ID token audience provided.")
        scopes = scope.split()
        if FCM_SCOPE not in scopes and CLOUD_SCOPE not in scopes:
            return self.oauth_error("invalid_scope", "Invalid OAuth scope: the emulator requires "
                                    + FCM_SCOPE + " (or " + CLOUD_SCOPE + ").")
        token = "ya29.c.emu" + secrets.token_urlsafe(48)
        ttl = self.args.fcm_token_ttl
        if len(self.access_tokens) > 200_000:
            self.access_tokens = {k: v for k, v in self.access_tokens.items() if v[0] > now}
        self.access_tokens[token.encode()] = [now + ttl, acct["project_id"], acct["client_email"]]
        self.stats["fcm_token_exchanges_ok"] += 1
        self.count("oauth", 200)
        return [(b":status", b"200"), CT_JSON, (b"cache-control", b"no-store")], \
            jdump({"access_token": token, "expires_in": ttl, "token_type": "Bearer"})

    # ================================================================== control API
    def control_reply(self, obj, status=200):
        return [(b":status", status_bytes(status)), CT_JSON], jdump(obj)

    def control(self, proto, method, path, body):
        name = path[len(b"/_emulator/"):].decode("latin-1")
        try:
            req = json.loads(body) if body.strip() else {}
        except ValueError:
            return self.control_reply({"error": "body is not JSON"}, 400)
        if not isinstance(req, dict):
            return self.control_reply({"error": "body must be a JSON object"}, 400)
        if name == "faults":
            if method == b"GET":
                return self.control_reply({"pending": [f.as_dict() for f in self.faults]})
            if method == b"DELETE":
                n = len(self.faults)
                self.faults.clear()
                return self.control_reply({"cleared": n})
            if method == b"POST":
                items = req.get("faults") if "faults" in req else [req]
                added = []
                for item in items:
                    f, err = _fault_from_json(item)
                    if err:
                        return self.control_reply({"error": err}, 400)
                    added.append(f)
                self.faults.extend(added)
                return self.control_reply({"queued": [f.as_dict() for f in added],
                                           "pending": [f.as_dict() for f in self.faults]})
        elif name == "expire-tokens" and method == b"POST":
            n = 0
            for ent in self.access_tokens.values():
                if ent[0] > 0:
                    ent[0] = 0
                    n += 1
            self.stats["fcm_tokens_expired_by_api"] += n
            return self.control_reply({"expired": n})
        elif name == "unregister" and method == b"POST":
            tok = req.get("token")
            if not isinstance(tok, str) or not tok:
                return self.control_reply({"error": "token (string) required"}, 400)
            ts = req.get("timestamp_ms")
            if ts is None:
                ts = int(time.time() * 1000)
            if type(ts) is not int:
                return self.control_reply({"error": "timestamp_ms must be an integer"}, 400)
            self.unreg_runtime[_norm_token(tok)] = ts
            return self.control_reply({"token": tok, "timestamp_ms": ts})
        elif name == "register" and method == b"POST":
            tok = req.get("token")
            if not isinstance(tok, str) or not tok:
                return self.control_reply({"error": "token (string) required"}, 400)
            key = _norm_token(tok)
            removed = self.unreg_runtime.pop(key, None) is not None
            removed = (self.unreg_file.pop(key, None) is not None) or removed
            return self.control_reply({"token": tok, "removed": removed})
        elif name == "stats" and method == b"GET":
            return self.control_reply(self.stats_json())
        elif name == "reset-stats" and method == b"POST":
            self.stats.clear()
            self.status_counts.clear()
            self.reason_counts.clear()
            return self.control_reply({"ok": True})
        elif name == "flush" and method == b"POST":
            self.accepted.flush()
            return self.control_reply({"written": self.accepted.written})
        elif name == "health" and method == b"GET":
            return self.control_reply({"ok": True, "version": VERSION, "pid": os.getpid()})
        elif name == "goaway" and method == b"POST":
            reason = req.get("reason", "Shutdown")
            debug = jdump({"reason": reason})
            n = 0
            for p in list(self.connections):
                if p is proto:
                    continue
                p.goaway(debug)
                n += 1
            proto.goaway_after = debug
            return self.control_reply({"connections": n + 1})
        return self.control_reply({"error": "unknown control endpoint %s %s" % (method.decode(), name)}, 404)

    def stats_json(self):
        s = self.stats
        per_status = {}
        for (svc, st), n in sorted(self.status_counts.items()):
            per_status.setdefault(svc, {})[str(st)] = n
        per_reason = {}
        for (svc, r), n in sorted(self.reason_counts.items()):
            per_reason.setdefault(svc, {})[r] = n
        return {
            "uptime_s": round(time.time() - self.started, 3),
            "requests": {"total": s["requests_total"], "apns": s["requests_apns"], "fcm": s["requests_fcm"],
                         "oauth": s["requests_oauth"], "control": s["requests_control"],
                         "other": s["requests_other"], "malformed": s["requests_malformed"]},
            "accepted": {"apns": s["accepted_apns"], "fcm": s["accepted_fcm"]},
            "status": per_status,
            "reasons": per_reason,
            "apns": {"distinct_jwts": s["apns_distinct_jwts"],
                     "jwt_verifications_ok": s["apns_jwt_verifications_ok"],
                     "jwt_verifications_failed": s["apns_jwt_verifications_failed"],
                     "provider_token_adoptions": s["apns_provider_token_adoptions"],
                     "too_many_provider_token_updates": s["apns_too_many_provider_token_updates"]},
            "fcm": {"token_exchanges": s["fcm_token_exchanges_ok"],
                    "token_exchanges_failed": s["fcm_token_exchanges_failed"],
                    "tokens_expired_by_api": s["fcm_tokens_expired_by_api"],
                    "access_tokens_live": sum(1 for v in self.access_tokens.values() if v[0] > time.time()),
                    "validate_only": s["fcm_validate_only"]},
            "faults": {"injected_apns": s["faults_injected_apns"], "injected_fcm": s["faults_injected_fcm"],
                       "injected_oauth": s["faults_injected_oauth"], "pending": len(self.faults),
                       "delayed_responses": s["delayed_responses"]},
            "connections": {"total": s["connections_total"], "open": len(self.connections),
                            "rejected_no_h2": s["connections_rejected_no_h2"], "goaways_sent": s["goaways_sent"]},
            "internal_errors": s["internal_errors"],
            "unregistered": {"from_file": len(self.unreg_file), "runtime": len(self.unreg_runtime),
                             "file_reloads": s["unregistered_file_reloads"]},
            "accepted_log": {"path": self.args.accepted, "written": self.accepted.written,
                             "buffered": len(self.accepted.buf)},
        }

    # ================================================================== lifecycle
    def _periodic(self):
        self.accepted.flush()
        self._tick += 1
        if self._tick % 10 == 0:
            try:
                self._load_unregistered()
            except Exception as e:  # keep serving on a half-written file
                print(f"[push-emulator] unregistered file: {e}", file=sys.stderr, flush=True)
        self.loop.call_later(self.args.flush_interval, self._periodic)

    async def run(self):
        a = self.args
        self.loop = loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        state = os.path.abspath(a.state_dir)
        paths = ensure_tls(state)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.options |= ssl.OP_NO_COMPRESSION
        ctx.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20")
        ctx.load_cert_chain(paths["server_cert"], paths["server_key"])
        ctx.set_alpn_protocols(["h2"])
        if a.ready_file and os.path.exists(a.ready_file):
            os.unlink(a.ready_file)
        server = await loop.create_server(lambda: H2Protocol(self), a.host, a.port, ssl=ctx,
                                          backlog=2048, reuse_address=True, ssl_handshake_timeout=10)
        self.port = server.sockets[0].getsockname()[1]
        host_for_url = "127.0.0.1" if a.host in ("0.0.0.0", "::", "") else a.host
        base = "https://%s:%d" % (host_for_url if ":" not in host_for_url else "[%s]" % host_for_url, self.port)
        effective = {}
        for acct in self.fcm_accounts.values():
            sa = dict(acct["raw"], token_uri=base + "/token")
            p = os.path.join(state, "fcm_credentials_%s.effective.json" % acct["project_id"])
            _atomic_write(p, json.dumps(sa, indent=2) + "\n")
            effective[acct["project_id"]] = p
        ready = {"port": self.port, "pid": os.getpid(), "host": a.host, "ca_file": paths["ca"],
                 "url": base, "apns_url": base, "fcm_url": base, "fcm_token_uri": base + "/token",
                 "fcm_credentials_effective": effective, "state_dir": state,
                 "accepted": os.path.abspath(a.accepted) if a.accepted else None, "version": VERSION}
        if a.ready_file:
            _atomic_write(a.ready_file, json.dumps(ready, indent=2) + "\n")
        print("[push-emulator] listening on %s (pid %d)" % (base, os.getpid()), file=sys.stderr, flush=True)
        self._tick = 0
        loop.call_later(a.flush_interval, self._periodic)
        gc.collect()
        gc.freeze()
        await stop.wait()
        # -- shutdown: stop listening, GOAWAY everyone, flush, go.
        server.close()
        for p in list(self.connections):
            try:
                p.goaway(b"", close_after=0)
                p._close_transport()
            except Exception:
                pass
        self.accepted.close()
        if a.ready_file:
            try:
                os.unlink(a.ready_file)
            except FileNotFoundError:
                pass
        try:
            await asyncio.wait_for(server.wait_closed(), 1.0)
        except (asyncio.TimeoutError, Exception):
            pass
        print("[push-emulator] stopped", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- helpers

def _uuid4_hex() -> str:
    h = os.urandom(16).hex()        # random UUID version 4 / RFC 4122 variant, without uuid.UUID's overhead
    return "%s-%s-4%s-%s%s-%s" % (h[:8], h[8:12], h[13:16], "89ab"[int(h[16], 16) & 3], h[17:20], h[20:32])


def _new_apns_id() -> bytes:
    return _uuid4_hex().upper().encode()


def _norm_token(tok: str) -> str:
    return tok.lower() if HEX_ONLY_RE.fullmatch(tok) else tok


def _headers_for_log(hdrs):
    out = {}
    for k, v in hdrs.items():
        if k == b"authorization":
            continue
        if type(v) is list:
            out[k.decode("latin-1")] = [x.decode("utf-8", "replace") for x in v]
        else:
            out[k.decode("latin-1")] = v.decode("utf-8", "replace")
    return out


def _bad_value(field, typ, value):
    return ("Invalid value at '%s' (%s), %s" % (field, typ, json.dumps(value, ensure_ascii=False)), field, False)


def _unknown_name(name, where):
    return ("Invalid JSON payload received. Unknown name \"%s\" at '%s': Cannot find field." % (name, where),
            where, False)


def _check_string_map(m, where):
    if type(m) is not dict:
        return _bad_value(where, "type.googleapis.com/google.protobuf.Map<string,string>", m)
    for i, v in enumerate(m.values()):
        if type(v) is not str:
            return _bad_value("%s[%d].value" % (where, i), "TYPE_STRING", v)
    return None


def _check_flat_object(o, where, fields, typ):
    if type(o) is not dict:
        return _bad_value(where, "type.googleapis.com/" + typ, o)
    for k, v in o.items():
        if k not in fields:
            return _unknown_name(k, where)
        if type(v) is not str:
            return _bad_value(where + "." + k, "TYPE_STRING", v)
    return None


def _kv_bytes(m):
    n = 0
    if type(m) is dict:
        for k, v in m.items():
            if type(v) is str:
                n += len(k.encode("utf-8")) + len(v.encode("utf-8"))
    return n


def _payload_size(msg):
    """Bytes counted against FCM's 4096-byte limit: UTF-8 keys + string values of
    message.data, message.notification, message.android.data, message.android.notification."""
    n = _kv_bytes(msg.get("data")) + _kv_bytes(msg.get("notification"))
    a = msg.get("android")
    if type(a) is dict:
        n += _kv_bytes(a.get("data")) + _kv_bytes(a.get("notification"))
    return n


def _fault_from_json(item):
    if not isinstance(item, dict):
        return None, "fault must be an object"
    service = item.get("service", "any")
    if service not in ("apns", "fcm", "any", "oauth"):
        return None, "service must be apns, fcm, any or oauth"
    status = item.get("status", 0 if item.get("delay_ms") else 503)
    if type(status) is not int or not (status == 0 or 400 <= status <= 599):
        return None, "status must be an HTTP error status (4xx/5xx), or 0 with delay_ms"
    count = item.get("count", 1)
    if type(count) is not int or count < 1:
        return None, "count must be a positive integer"
    ra = item.get("retry_after")
    if ra is not None and (type(ra) is not int or ra < 0):
        return None, "retry_after must be a non-negative integer (seconds)"
    delay = item.get("delay_ms", 0)
    if type(delay) not in (int, float) or delay < 0:
        return None, "delay_ms must be a non-negative number"
    tok = item.get("token")
    if tok is not None and not isinstance(tok, str):
        return None, "token must be a string"
    if tok is not None and service == "apns":
        tok = tok.lower()
    for f in ("reason", "error_code", "message"):
        if item.get(f) is not None and not isinstance(item.get(f), str):
            return None, f + " must be a string"
    return Fault(service, status, count, ra, item.get("reason"), item.get("error_code"), delay,
                 bool(item.get("goaway", False)), tok, item.get("message")), None


def _load_public_key(path):
    with open(path, "rb") as f:
        data = f.read()
    if b"PRIVATE KEY" in data:
        return serialization.load_pem_private_key(data, password=None).public_key()
    return serialization.load_pem_public_key(data)


def _atomic_write(path, text, mode=0o644):
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    tmp = os.path.join(d, ".%s.%d.tmp" % (os.path.basename(path), os.getpid()))
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def ensure_tls(state_dir):
    """Test CA + server certificate (127.0.0.1, localhost, ::1) made once with trustme, then reused."""
    os.makedirs(state_dir, exist_ok=True)
    paths = {"ca": os.path.join(state_dir, "ca.pem"),
             "ca_key": os.path.join(state_dir, "ca-key.pem"),
             "server_cert": os.path.join(state_dir, "server.pem"),
             "server_key": os.path.join(state_dir, "server-key.pem")}
    with open(os.path.join(state_dir, ".tls.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if all(os.path.exists(p) for p in paths.values()):
            return paths
        import trustme
        ca = trustme.CA(organization_name="push-emulator test CA")
        cert = ca.issue_cert("127.0.0.1", "localhost", "::1")
        _atomic_write(paths["ca_key"], ca.private_key_pem.bytes().decode(), 0o600)
        _atomic_write(paths["server_key"], cert.private_key_pem.bytes().decode(), 0o600)
        _atomic_write(paths["server_cert"], "".join(b.bytes().decode() for b in cert.cert_chain_pems))
        _atomic_write(paths["ca"], ca.cert_pem.bytes().decode())   # last: its presence means "complete"
    return paths


def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        description="APNs (token auth) + FCM HTTP v1 emulator over TLS/HTTP/2 (see README.md)")
    g = ap.add_argument_group("server")
    g.add_argument("--host", default="127.0.0.1", help="listen address (default %(default)s)")
    g.add_argument("--port", type=int, default=0, help="listen port; 0 picks a free one (default 0)")
    g.add_argument("--state-dir", default=".push-emulator",
                   help="directory for ca.pem / server certificate / effective FCM credentials")
    g.add_argument("--ready-file", help="JSON {port,pid,ca_file,...} written atomically once listening")
    g.add_argument("--accepted", help="NDJSON file; one line per accepted push (appended)")
    g.add_argument("--flush-interval", type=float, default=0.05,
                   help="seconds between flushes of --accepted (default %(default)s)")
    g.add_argument("--max-concurrent-streams", type=int, default=1000,
                   help="SETTINGS_MAX_CONCURRENT_STREAMS (default %(default)s)")
    g.add_argument("--initial-max-concurrent-streams", type=int, default=None,
                   help="value advertised before the first accepted APNs provider token on a connection "
                        "(default: same as --max-concurrent-streams)")
    g.add_argument("--unregistered", help="file of unregistered device tokens: 'token [timestamp_ms]' a line; "
                                          "re-read when it changes")
    g.add_argument("--clock-skew", type=int, default=60, help="tolerated clock skew, seconds (default 60)")
    g.add_argument("-v", "--verbose", action="store_true", help="log every answer on stderr")
    g = ap.add_argument_group("APNs")
    g.add_argument("--apns-key-id", help="key id (the JWT 'kid')")
    g.add_argument("--apns-team-id", help="team id (the JWT 'iss')")
    g.add_argument("--apns-public-key", help="PEM public key (or the .p8 private key) of the signing key")
    g.add_argument("--apns-key", action="append", metavar="KID,TEAM,PEM",
                   help="another signing key; repeatable")
    g.add_argument("--apns-topics", help="comma-separated allowed topics (bundle ids); "
                                         "bundle id + .voip/.complication/... suffixes are allowed too")
    g.add_argument("--apns-environment", choices=["development", "production"], default="development",
                   help="development answers apns-unique-id like the sandbox (default %(default)s)")
    g.add_argument("--apns-token-update-limit", dest="apns_token_update_limit", action="store_true",
                   default=True, help="429 TooManyProviderTokenUpdates rule on (default)")
    g.add_argument("--no-apns-token-update-limit", dest="apns_token_update_limit", action="store_false",
                   help="turn the TooManyProviderTokenUpdates rule off")
    g.add_argument("--apns-token-update-interval", type=float, default=1200.0,
                   help="minimum seconds between new provider tokens per key id (default 1200 = 20 min)")
    g.add_argument("--apns-require-push-type", action="store_true",
                   help="answer 400 InvalidPushType when apns-push-type is missing")
    g.add_argument("--apns-bad-payload-reason", default="BadPayload",
                   help="reason for a body that is not a JSON object with an 'aps' dictionary "
                        "(not in Apple's table; default %(default)s)")
    g = ap.add_argument_group("FCM")
    g.add_argument("--fcm-credentials", action="append",
                   help="service-account JSON (public key derived from private_key); repeatable")
    g.add_argument("--fcm-token-ttl", type=int, default=3600,
                   help="access-token lifetime, seconds (default %(default)s)")
    g = ap.add_argument_group("random faults")
    g.add_argument("--fault-rate", type=float, default=0.0, help="probability of a random fault per send")
    g.add_argument("--fault-status", type=int, default=503, help="status of random faults (default 503)")
    g.add_argument("--fault-service", choices=["apns", "fcm", "any"], default="any")
    g.add_argument("--fault-retry-after", type=int, default=None, help="retry-after seconds on random faults")
    g.add_argument("--fault-seed", type=int, default=1, help="RNG seed for random faults (default 1)")
    args = ap.parse_args(argv)
    if args.initial_max_concurrent_streams is None:
        args.initial_max_concurrent_streams = args.max_concurrent_streams
    return args


def main(argv=None):
    args = parse_args(argv)
    gc.set_threshold(50_000, 20, 100)
    emu = Emulator(args)
    try:
        asyncio.run(emu.run())
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Self-test of push_emulator.py: starts real emulator processes and talks HTTP/2 to them
(httpx[http2] for requests, raw h2 over ssl for protocol-level checks).

Run:  python3 test_emulator.py        (unittest; no pytest needed)
"""
import asyncio
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

import h2.config
import h2.connection
import h2.events
import h2.settings
import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

HERE = os.path.dirname(os.path.abspath(__file__))
EMULATOR = os.path.join(HERE, "push_emulator.py")
KID = "KEY1234567"
TEAM = "TEAM987654"
PROJECT = "demo-project"
TOPIC = "com.example.app"
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
TOK_OK = "a1" * 32                         # 64 hex chars
TOK_UNREG = "b2" * 32
TOK_UNREG_TS = 1700000000123
FCM_OK = "fcmTok_ok:APA91b" + "x" * 140
FCM_UNREG = "fcmTok_dead:APA91b" + "y" * 140


def start_emulator(workdir, name, extra_args, creds, state_dir=None):
    ready = os.path.join(workdir, name + ".ready.json")
    accepted = os.path.join(workdir, name + ".accepted.ndjson")
    unreg = os.path.join(workdir, name + ".unregistered.txt")
    with open(unreg, "w") as f:
        f.write("# token [timestamp_ms]\n%s %d\n%s\n" % (TOK_UNREG.upper(), TOK_UNREG_TS, FCM_UNREG))
    cmd = [sys.executable, EMULATOR, "--host", "127.0.0.1", "--port", "0",
           "--state-dir", state_dir or os.path.join(workdir, "state"),
           "--apns-key-id", creds["apns_key_id"], "--apns-team-id", creds["apns_team_id"],
           "--apns-public-key", creds["apns_public_key"],
           "--fcm-credentials", creds["fcm_credentials"],
           "--unregistered", unreg, "--accepted", accepted, "--ready-file", ready] + extra_args
    with open(os.path.join(workdir, name + ".log"), "w") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.time() + 20
    while not os.path.exists(ready):
        if proc.poll() is not None:
            with open(os.path.join(workdir, name + ".log")) as log:
                raise RuntimeError("emulator exited: " + log.read())
        if time.time() > deadline:
            proc.kill()
            raise RuntimeError("emulator not ready in time")
        time.sleep(0.05)
    with open(ready) as f:
        info = json.load(f)
    return proc, info, accepted, unreg, ready


class Env:
    """Shared fixture: credentials + main emulator."""
    tmp = None
    creds = None
    proc = None
    info = None
    client = None

    @classmethod
    def up(cls):
        if cls.tmp is not None:
            return
        cls.tmp = tempfile.mkdtemp(prefix="push-emu-test-")
        out = subprocess.run([sys.executable, os.path.join(HERE, "make_credentials.py"), "--out",
                              os.path.join(cls.tmp, "creds"), "--key-id", KID, "--team-id", TEAM,
                              "--project-id", PROJECT, "--base-url", "https://127.0.0.1:1"],
                             check=True, capture_output=True, text=True).stdout
        cls.creds = json.loads(out)
        with open(cls.creds["apns_private_key"], "rb") as f:
            cls.apns_key = f.read()
        with open(cls.creds["fcm_credentials"]) as f:
            cls.sa = json.load(f)
        cls.proc, cls.info, cls.accepted, cls.unreg, cls.ready = start_emulator(
            cls.tmp, "main", ["--apns-topics", TOPIC + ",com.example.other"], cls.creds)
        cls.url = cls.info["url"]
        cls.client = httpx.Client(http2=True, verify=ca_ctx(cls.info["ca_file"]), base_url=cls.url, timeout=10)
        cls.good_jwt = cls.apns_jwt()

    @classmethod
    def down(cls):
        if cls.client:
            cls.client.close()
        if cls.proc and cls.proc.poll() is None:
            cls.proc.send_signal(signal.SIGTERM)
            cls.proc.wait(10)
        if cls.tmp and not os.environ.get("KEEP_EMULATOR_TMP"):
            shutil.rmtree(cls.tmp, ignore_errors=True)

    # -- token minting
    @classmethod
    def apns_jwt(cls, iat=None, kid=KID, iss=TEAM, key=None, alg="ES256"):
        return jwt.encode({"iss": iss, "iat": int(time.time()) if iat is None else iat},
                          key or cls.apns_key, algorithm=alg, headers={"kid": kid})

    @classmethod
    def fcm_assertion(cls, **over):
        now = int(time.time())
        claims = {"iss": cls.sa["client_email"], "scope": FCM_SCOPE, "aud": cls.sa["token_uri"],
                  "iat": now, "exp": now + 3600}
        key = over.pop("key", cls.sa["private_key"])
        for k, v in over.items():
            if v is None:
                claims.pop(k, None)
            else:
                claims[k] = v
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": cls.sa["private_key_id"]})

    @classmethod
    def token_exchange(cls, assertion=None, grant=None):
        return cls.client.post("/token", data={
            "grant_type": grant or "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": assertion or cls.fcm_assertion()})

    @classmethod
    def fcm_token(cls):
        r = cls.token_exchange()
        assert r.status_code == 200, r.text
        return r.json()["access_token"]

    # -- requests
    @classmethod
    def apns(cls, token=TOK_OK, jwt_=None, headers=None, body=None, auth=True, method="POST", path=None):
        h = {"apns-topic": TOPIC, "apns-push-type": "alert"}
        if auth:
            h["authorization"] = "bearer " + (jwt_ or cls.good_jwt)
        if headers:
            for k, v in headers.items():
                if v is None:
                    h.pop(k, None)
                else:
                    h[k] = v
        if body is None:
            body = b'{"aps":{"alert":{"title":"hi","body":"there"}}}'
        return cls.client.request(method, path or "/3/device/" + token, headers=h,
                                  content=body if method == "POST" else None)

    @classmethod
    def fcm(cls, message=None, access=None, project=PROJECT, body=None, auth=True):
        h = {"content-type": "application/json"}
        if auth:
            h["authorization"] = "Bearer " + (access or cls.fcm_token())
        if body is None:
            body = json.dumps({"message": message if message is not None else
                               {"token": FCM_OK, "notification": {"title": "t", "body": "b"}}})
        return cls.client.post("/v1/projects/%s/messages:send" % project, headers=h, content=body)

    @classmethod
    def ctl(cls, method, name, obj=None):
        r = cls.client.request(method, "/_emulator/" + name,
                               content=json.dumps(obj).encode() if obj is not None else None)
        assert r.status_code == 200, r.text
        return r.json()


def setUpModule():
    Env.up()


def tearDownModule():
    Env.down()


def ca_ctx(ca_file):
    return ssl.create_default_context(cafile=ca_file)


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def read_accepted(path, pred, timeout=2.0):
    deadline = time.time() + timeout
    while True:
        recs = []
        if os.path.exists(path):
            with open(path) as f:
                recs = [json.loads(line) for line in f if line.strip()]
        hits = [r for r in recs if pred(r)]
        if hits or time.time() > deadline:
            return hits
        time.sleep(0.02)


def padded_apns_body(size, push=None):
    base = {"aps": {"alert": "x"}, "pad": ""}
    n = len(json.dumps(base, separators=(",", ":")).encode())
    base["pad"] = "p" * (size - n)
    b = json.dumps(base, separators=(",", ":")).encode()
    assert len(b) == size
    return b


# =============================================================================== APNs

class APNsTests(unittest.TestCase):
    def reason(self, r):
        return r.json()["reason"]

    def test_success(self):
        r = Env.apns()
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(r.http_version, "HTTP/2")
        self.assertEqual(r.content, b"")
        self.assertRegex(r.headers["apns-id"], r"^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$")
        self.assertIn("apns-unique-id", r.headers)

    def test_apns_id_echoed_and_accepted_log(self):
        aid = str(uuid.uuid4())
        body = {"aps": {"alert": "logged"}, "custom": {"k": [1, 2]}}
        r = Env.apns(headers={"apns-id": aid, "apns-priority": "5", "apns-expiration": "0",
                              "apns-collapse-id": "c" * 64, "apns-push-type": "alert"},
                     body=json.dumps(body).encode())
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(r.headers["apns-id"], aid)
        recs = read_accepted(Env.accepted, lambda x: x.get("apns_id") == aid)
        self.assertEqual(len(recs), 1)
        rec = recs[0]
        self.assertEqual(rec["service"], "apns")
        self.assertEqual(rec["device_token"], TOK_OK)
        self.assertEqual(rec["payload"], body)
        self.assertNotIn("authorization", rec["headers"])
        self.assertEqual(rec["headers"]["apns-topic"], TOPIC)
        self.assertEqual(rec["headers"]["apns-priority"], "5")
        self.assertEqual(rec["apns_unique_id"], r.headers["apns-unique-id"])
        self.assertIsInstance(rec["time"], float)

    def test_missing_provider_token(self):
        r = Env.apns(auth=False)
        self.assertEqual((r.status_code, self.reason(r)), (403, "MissingProviderToken"))
        self.assertIn("apns-id", r.headers)

    def test_expired_provider_token(self):
        r = Env.apns(jwt_=Env.apns_jwt(iat=int(time.time()) - 3700))
        self.assertEqual((r.status_code, self.reason(r)), (403, "ExpiredProviderToken"))

    def test_invalid_provider_tokens(self):
        other_ec = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        cases = {
            "future iat": Env.apns_jwt(iat=int(time.time()) + 600),
            "wrong kid": Env.apns_jwt(kid="NOTMYKEY00"),
            "wrong iss": Env.apns_jwt(iss="OTHERTEAM0"),
            "bad signature": Env.apns_jwt(key=other_ec),
            "HS256": jwt.encode({"iss": TEAM, "iat": int(time.time())}, "secret-key-of-32-bytes-or-more!!",
                                algorithm="HS256", headers={"kid": KID}),
            "garbage": "not.a.jwt",
            "no iat": jwt.encode({"iss": TEAM}, Env.apns_key, algorithm="ES256", headers={"kid": KID}),
        }
        for name, tok in cases.items():
            with self.subTest(name):
                r = Env.apns(jwt_=tok)
                self.assertEqual((r.status_code, self.reason(r)), (403, "InvalidProviderToken"))

    def test_too_many_provider_token_updates(self):
        before = Env.ctl("GET", "stats")["apns"]["too_many_provider_token_updates"]
        fresh = Env.apns_jwt(iat=int(time.time()) - 1)      # a second, different, valid token
        self.assertNotEqual(fresh, Env.good_jwt)
        r = Env.apns(jwt_=fresh)
        self.assertEqual((r.status_code, self.reason(r)), (429, "TooManyProviderTokenUpdates"))
        self.assertEqual(Env.apns().status_code, 200)         # the adopted token still works
        st = Env.ctl("GET", "stats")["apns"]
        self.assertEqual(st["too_many_provider_token_updates"], before + 1)
        self.assertGreaterEqual(st["distinct_jwts"], 2)

    def test_header_rules(self):
        cases = [
            ({"apns-topic": None}, 400, "MissingTopic"),
            ({"apns-topic": "com.evil.app"}, 400, "TopicDisallowed"),
            ({"apns-push-type": "banner"}, 400, "InvalidPushType"),
            ({"apns-priority": "7"}, 400, "BadPriority"),
            ({"apns-expiration": "tomorrow"}, 400, "BadExpirationDate"),
            ({"apns-collapse-id": "c" * 65}, 400, "BadCollapseId"),
            ({"apns-id": "123"}, 400, "BadMessageId"),
        ]
        for hdrs, status, reason in cases:
            with self.subTest(reason):
                r = Env.apns(headers=hdrs)
                self.assertEqual((r.status_code, self.reason(r)), (status, reason))
        for hdrs in ({"apns-priority": "1"}, {"apns-priority": "10"}, {"apns-push-type": None},
                     {"apns-topic": TOPIC + ".voip", "apns-push-type": "voip"},
                     {"apns-topic": "com.example.other", "apns-push-type": "background", "apns-priority": "5"},
                     {"apns-push-type": "liveactivity", "apns-topic": TOPIC + ".push-type.liveactivity"}):
            with self.subTest(ok=hdrs):
                self.assertEqual(Env.apns(headers=hdrs).status_code, 200)

    def test_duplicate_headers(self):
        h = [("authorization", "bearer " + Env.good_jwt), ("apns-topic", TOPIC), ("apns-topic", TOPIC)]
        r = Env.client.post("/3/device/" + TOK_OK, headers=h, content=b'{"aps":{}}')
        self.assertEqual((r.status_code, self.reason(r)), (400, "DuplicateHeaders"))

    def test_bad_device_token(self):
        for tok in ("xyz", "a" * 63, "a" * 65, "a" * 202, "g" * 64):
            with self.subTest(tok=tok[:8] + "..%d" % len(tok)):
                r = Env.apns(token=tok)
                self.assertEqual((r.status_code, self.reason(r)), (400, "BadDeviceToken"))
        self.assertEqual(Env.apns(token="ab" * 50).status_code, 200)       # 100 hex chars: fine
        self.assertEqual(Env.apns(token=TOK_OK.upper()).status_code, 200)

    def test_payload_size(self):
        self.assertEqual(Env.apns(body=padded_apns_body(4096)).status_code, 200)
        r = Env.apns(body=padded_apns_body(4097))
        self.assertEqual((r.status_code, self.reason(r)), (413, "PayloadTooLarge"))
        voip = {"apns-push-type": "voip", "apns-topic": TOPIC + ".voip"}
        self.assertEqual(Env.apns(headers=voip, body=padded_apns_body(5120)).status_code, 200)
        self.assertEqual(Env.apns(headers=voip, body=padded_apns_body(5121)).status_code, 413)

    def test_payload_rules(self):
        r = Env.apns(body=b"")
        self.assertEqual((r.status_code, self.reason(r)), (400, "PayloadEmpty"))
        for body in (b"{not json", b"[1,2]", b'{"alert":"no aps"}', b'{"aps":"string"}'):
            with self.subTest(body=body):
                r = Env.apns(body=body)
                self.assertEqual((r.status_code, self.reason(r)), (400, "BadPayload"))

    def test_unregistered_from_file(self):
        r = Env.apns(token=TOK_UNREG)
        self.assertEqual(r.status_code, 410)
        self.assertEqual(r.json(), {"reason": "Unregistered", "timestamp": TOK_UNREG_TS})

    def test_auth_checked_before_token_state(self):
        r = Env.apns(token=TOK_UNREG, auth=False)
        self.assertEqual((r.status_code, self.reason(r)), (403, "MissingProviderToken"))

    def test_unregister_at_runtime_and_file_reload(self):
        tok = "c3" * 32
        self.assertEqual(Env.apns(token=tok).status_code, 200)
        Env.ctl("POST", "unregister", {"token": tok.upper(), "timestamp_ms": 1234})
        r = Env.apns(token=tok)
        self.assertEqual(r.json(), {"reason": "Unregistered", "timestamp": 1234})
        Env.ctl("POST", "register", {"token": tok})
        self.assertEqual(Env.apns(token=tok).status_code, 200)
        tok2 = "d4" * 32
        with open(Env.unreg, "a") as f:
            f.write("%s 99\n" % tok2)
        deadline = time.time() + 3
        while time.time() < deadline:
            r = Env.apns(token=tok2)
            if r.status_code == 410:
                break
            time.sleep(0.1)
        self.assertEqual(r.json(), {"reason": "Unregistered", "timestamp": 99})

    def test_method_and_path(self):
        r = Env.apns(method="GET")
        self.assertEqual((r.status_code, self.reason(r)), (405, "MethodNotAllowed"))
        r = Env.apns(path="/3/devices/" + TOK_OK)
        self.assertEqual((r.status_code, self.reason(r)), (404, "BadPath"))
        r = Env.apns(path="/3/device/")
        self.assertEqual((r.status_code, self.reason(r)), (400, "MissingDeviceToken"))

    def test_many_concurrent_streams(self):
        async def go():
            async with httpx.AsyncClient(http2=True, verify=ca_ctx(Env.info["ca_file"]), base_url=Env.url,
                                         timeout=20, limits=httpx.Limits(max_connections=1)) as c:
                h = {"authorization": "bearer " + Env.good_jwt, "apns-topic": TOPIC}
                rs = await asyncio.gather(*[c.post("/3/device/" + "%064x" % i, headers=h,
                                                   content=b'{"aps":{"badge":%d}}' % i) for i in range(400)])
                return rs
        rs = asyncio.run(go())
        self.assertEqual([r.status_code for r in rs], [200] * 400)
        self.assertEqual(len({r.headers["apns-id"] for r in rs}), 400)
        recs = read_accepted(Env.accepted, lambda x: x.get("device_token") == "%064x" % 399)
        self.assertEqual(recs[0]["payload"], {"aps": {"badge": 399}})


# =============================================================================== FCM

class FCMTests(unittest.TestCase):
    def err(self, r):
        return r.json()["error"]

    def test_token_exchange(self):
        r = Env.token_exchange()
        self.assertEqual(r.status_code, 200, r.text)
        j = r.json()
        self.assertEqual(j["token_type"], "Bearer")
        self.assertEqual(j["expires_in"], 3600)
        self.assertTrue(j["access_token"].startswith("ya29."))

    def test_token_exchange_errors(self):
        other_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        now = int(time.time())
        cases = [
            ("bad signature", Env.fcm_assertion(key=other_rsa), "invalid_grant"),
            ("wrong aud", Env.fcm_assertion(aud="https://example.com/token"), "invalid_grant"),
            ("too long", Env.fcm_assertion(iat=now, exp=now + 7200), "invalid_grant"),
            ("expired", Env.fcm_assertion(iat=now - 7200, exp=now - 3700), "invalid_grant"),
            ("no exp", Env.fcm_assertion(exp=None), "invalid_grant"),
            ("unknown iss", Env.fcm_assertion(iss="nobody@x.iam.gserviceaccount.com"), "invalid_grant"),
            ("no scope", Env.fcm_assertion(scope=None), "invalid_scope"),
            ("other scope", Env.fcm_assertion(scope="https://www.googleapis.com/auth/userinfo.email"),
             "invalid_scope"),
        ]
        for name, assertion, error in cases:
            with self.subTest(name):
                r = Env.token_exchange(assertion)
                self.assertEqual(r.status_code, 400)
                self.assertEqual(r.json()["error"], error)
                self.assertIn("error_description", r.json())
        r = Env.token_exchange(grant="client_credentials")
        self.assertEqual((r.status_code, r.json()["error"]), (400, "unsupported_grant_type"))
        # cloud-platform scope is accepted like on Google; so is the emulator's own URL as audience
        self.assertEqual(Env.token_exchange(Env.fcm_assertion(
            scope="https://www.googleapis.com/auth/cloud-platform")).status_code, 200)
        self.assertEqual(Env.token_exchange(Env.fcm_assertion(aud=Env.info["fcm_token_uri"])).status_code, 200)

    def test_send_success_and_accepted_log(self):
        msg = {"token": FCM_OK, "data": {"k": "v"}, "notification": {"title": "T", "body": "B"},
               "android": {"collapse_key": "ck", "ttl": "3600s", "priority": "HIGH",
                           "notification": {"channel_id": "x"}},
               "apns": {"headers": {"apns-priority": "10"}, "payload": {"aps": {"badge": 1}}}}
        r = Env.fcm(msg)
        self.assertEqual(r.status_code, 200, r.text)
        name = r.json()["name"]
        self.assertRegex(name, r"^projects/%s/messages/\S+$" % PROJECT)
        recs = read_accepted(Env.accepted, lambda x: x.get("message_name") == name)
        self.assertEqual(len(recs), 1)
        self.assertEqual(recs[0]["service"], "fcm")
        self.assertEqual(recs[0]["device_token"], FCM_OK)
        self.assertEqual(recs[0]["payload"], {"message": msg})
        self.assertNotIn("authorization", recs[0]["headers"])

    def test_camel_case_and_topic_and_validate_only(self):
        r = Env.fcm({"token": FCM_OK, "android": {"collapseKey": "x", "ttl": "0.5s", "directBootOk": True},
                     "fcmOptions": {"analyticsLabel": "l"}})
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(Env.fcm({"topic": "news"}).status_code, 200)
        r = Env.fcm(body=json.dumps({"validate_only": True, "message": {"token": FCM_OK}}))
        self.assertEqual(r.json(), {"name": "projects/%s/messages/fake_message_id" % PROJECT})
        r = Env.fcm(body=json.dumps({"validate_only": True, "message": {"token": FCM_UNREG}}))
        self.assertEqual(r.status_code, 404)        # dry run still reports stale tokens

    def test_auth_errors(self):
        r = Env.fcm(auth=False)
        e = self.err(r)
        self.assertEqual((r.status_code, e["status"]), (401, "UNAUTHENTICATED"))
        self.assertEqual(e["details"][0]["reason"], "CREDENTIALS_MISSING")
        r = Env.fcm(access="ya29.bogus")
        self.assertEqual((r.status_code, self.err(r)["status"], self.err(r)["code"]), (401, "UNAUTHENTICATED", 401))
        self.assertIn("www-authenticate", r.headers)

    def test_expired_access_token(self):
        tok = Env.fcm_token()
        self.assertEqual(Env.fcm(access=tok).status_code, 200)
        n = Env.ctl("POST", "expire-tokens")["expired"]
        self.assertGreaterEqual(n, 1)
        r = Env.fcm(access=tok)
        self.assertEqual(r.status_code, 401)
        self.assertEqual(self.err(r)["details"][0]["reason"], "ACCESS_TOKEN_EXPIRED")
        self.assertEqual(Env.fcm().status_code, 200)        # a fresh exchange works again

    def test_wrong_project(self):
        r = Env.fcm(project="someone-else")
        self.assertEqual((r.status_code, self.err(r)["status"]), (403, "PERMISSION_DENIED"))

    def test_invalid_token_and_unregistered(self):
        r = Env.fcm({"token": "bad token!"})
        self.assertEqual(r.status_code, 400)
        self.assertEqual(r.json(), {"error": {
            "code": 400, "message": "The registration token is not a valid FCM registration token",
            "status": "INVALID_ARGUMENT",
            "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                         "errorCode": "INVALID_ARGUMENT"}]}})
        r = Env.fcm({"token": FCM_UNREG})
        self.assertEqual(r.status_code, 404)
        e = self.err(r)
        self.assertEqual(e["status"], "NOT_FOUND")
        self.assertEqual(e["details"], [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                                         "errorCode": "UNREGISTERED"}])
        tok = "fcm_runtime_dead_token_123"
        Env.ctl("POST", "unregister", {"token": tok})
        self.assertEqual(Env.fcm({"token": tok}).status_code, 404)

    def test_invalid_arguments(self):
        cases = [
            ("data not string", {"token": FCM_OK, "data": {"a": "1", "n": 5}}, "message.data[1].value"),
            ("data not map", {"token": FCM_OK, "data": ["x"]}, "message.data"),
            ("unknown field", {"token": FCM_OK, "colour": "red"}, "message"),
            ("two targets", {"token": FCM_OK, "topic": "news"}, "message"),
            ("no target", {"data": {"a": "b"}}, "message"),
            ("bad ttl", {"token": FCM_OK, "android": {"ttl": "3600"}}, "message.android.ttl"),
            ("ttl > 4 weeks", {"token": FCM_OK, "android": {"ttl": "2419201s"}}, "message.android.ttl"),
            ("bad priority", {"token": FCM_OK, "android": {"priority": "URGENT"}}, "message.android.priority"),
            ("collapse_key type", {"token": FCM_OK, "android": {"collapse_key": 3}}, "message.android.collapse_key"),
            ("notification title type", {"token": FCM_OK, "notification": {"title": 1}},
             "message.notification.title"),
            ("apns headers type", {"token": FCM_OK, "apns": {"headers": {"apns-priority": 10}}},
             "message.apns.headers[0].value"),
            ("apns payload type", {"token": FCM_OK, "apns": {"payload": "x"}}, "message.apns.payload"),
            ("reserved data key", {"token": FCM_OK, "data": {"from": "me"}}, "message.data"),
        ]
        for name, msg, field in cases:
            with self.subTest(name):
                r = Env.fcm(msg)
                self.assertEqual(r.status_code, 400, r.text)
                e = self.err(r)
                self.assertEqual(e["status"], "INVALID_ARGUMENT")
                fields = [v["field"] for d in e.get("details", []) for v in d.get("fieldViolations", [])]
                self.assertIn(field, fields, e)
        r = Env.fcm(body="{nope")
        self.assertEqual((r.status_code, self.err(r)["status"]), (400, "INVALID_ARGUMENT"))

    def test_payload_size_limit(self):
        # counted: UTF-8 bytes of keys and values of data (+ notification, android.data/notification)
        ok = {"token": FCM_OK, "data": {"k": "v" * 4095}}
        self.assertEqual(Env.fcm(ok).status_code, 200)
        big = {"token": FCM_OK, "data": {"k": "v" * 4090}, "notification": {"title": "abcdef"}}
        r = Env.fcm(big)
        self.assertEqual(r.status_code, 400)
        e = self.err(r)
        self.assertIn("exceeds the limit", e["message"])
        self.assertEqual(e["details"][0], {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                                           "errorCode": "INVALID_ARGUMENT"})


# =============================================================================== faults/control

class FaultAndControlTests(unittest.TestCase):
    def tearDown(self):
        Env.ctl("DELETE", "faults")

    def test_apns_429_with_retry_after_then_success(self):
        Env.ctl("POST", "faults", {"service": "apns", "status": 429, "count": 2, "retry_after": 7})
        for _ in range(2):
            r = Env.apns()
            self.assertEqual((r.status_code, r.json()["reason"]), (429, "TooManyRequests"))
            self.assertEqual(r.headers["retry-after"], "7")
        self.assertEqual(Env.apns().status_code, 200)

    def test_apns_500_503(self):
        Env.ctl("POST", "faults", {"faults": [{"service": "apns", "status": 500},
                                              {"service": "apns", "status": 503}]})
        r1, r2 = Env.apns(), Env.apns()
        self.assertEqual((r1.status_code, r1.json()["reason"]), (500, "InternalServerError"))
        self.assertEqual((r2.status_code, r2.json()["reason"]), (503, "ServiceUnavailable"))
        self.assertNotIn("retry-after", r2.headers)

    def test_fcm_faults(self):
        tok = Env.fcm_token()
        Env.ctl("POST", "faults", {"service": "fcm", "status": 429, "retry_after": 3})
        Env.ctl("POST", "faults", {"service": "fcm", "status": 503})
        Env.ctl("POST", "faults", {"service": "fcm", "status": 500})
        exp = [(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"), (503, "UNAVAILABLE", "UNAVAILABLE"),
               (500, "INTERNAL", "INTERNAL")]
        for code, status, ec_ in exp:
            r = Env.fcm(access=tok)
            e = r.json()["error"]
            self.assertEqual((r.status_code, e["status"], e["details"][0]["errorCode"]), (code, status, ec_))
            if code == 429:
                self.assertEqual(r.headers["retry-after"], "3")
        self.assertEqual(Env.fcm(access=tok).status_code, 200)

    def test_any_service_and_token_filter(self):
        Env.ctl("POST", "faults", {"service": "any", "status": 503, "count": 1})
        self.assertEqual(Env.fcm().status_code, 503)
        self.assertEqual(Env.apns().status_code, 200)
        special = "e5" * 32
        Env.ctl("POST", "faults", {"service": "apns", "status": 429, "token": special})
        self.assertEqual(Env.apns().status_code, 200)                 # other token: untouched
        self.assertEqual(Env.apns(token=special).status_code, 429)
        self.assertEqual(Env.apns(token=special).status_code, 200)

    def test_delay_and_goaway(self):
        Env.ctl("POST", "faults", {"service": "apns", "status": 0, "delay_ms": 300})
        t = time.time()
        self.assertEqual(Env.apns().status_code, 200)
        self.assertGreaterEqual(time.time() - t, 0.28)
        Env.ctl("POST", "faults", {"service": "apns", "status": 503, "reason": "Shutdown", "goaway": True})
        r = Env.apns()
        self.assertEqual((r.status_code, r.json()["reason"]), (503, "Shutdown"))
        self.assertEqual(Env.apns().status_code, 200)          # the client reconnects after GOAWAY

    def test_oauth_fault(self):
        Env.ctl("POST", "faults", {"service": "oauth", "status": 503, "retry_after": 1})
        r = Env.token_exchange()
        self.assertEqual(r.status_code, 503)
        self.assertEqual(r.headers["retry-after"], "1")
        self.assertEqual(Env.token_exchange().status_code, 200)

    def test_fault_validation(self):
        r = Env.client.post("/_emulator/faults", content=b'{"service":"sms","status":503}')
        self.assertEqual(r.status_code, 400)

    def test_stats(self):
        s0 = Env.ctl("GET", "stats")
        Env.apns()
        Env.apns(auth=False)
        Env.fcm()
        s = Env.ctl("GET", "stats")
        self.assertEqual(s["accepted"]["apns"], s0["accepted"]["apns"] + 1)
        self.assertEqual(s["accepted"]["fcm"], s0["accepted"]["fcm"] + 1)
        self.assertEqual(s["fcm"]["token_exchanges"], s0["fcm"]["token_exchanges"] + 1)
        self.assertEqual(s["status"]["apns"]["403"], s0["status"].get("apns", {}).get("403", 0) + 1)
        self.assertEqual(s["reasons"]["apns"]["MissingProviderToken"],
                         s0["reasons"].get("apns", {}).get("MissingProviderToken", 0) + 1)
        self.assertGreaterEqual(s["requests"]["total"], s0["requests"]["total"] + 4)
        self.assertIn("distinct_jwts", s["apns"])
        self.assertEqual(s["internal_errors"], 0)


# =============================================================================== protocol level

def raw_tls(port, ca, alpn):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.set_alpn_protocols(alpn)
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    return ctx.wrap_socket(s, server_hostname="127.0.0.1")


class ProtocolTests(unittest.TestCase):
    def test_http11_only_client_is_refused(self):
        s = raw_tls(Env.info["port"], Env.info["ca_file"], ["http/1.1"])
        self.assertIsNone(s.selected_alpn_protocol())
        try:
            s.sendall(b"GET /_emulator/health HTTP/1.1\r\nHost: x\r\n\r\n")
            data = s.recv(100)
        except (ConnectionResetError, ssl.SSLError, BrokenPipeError):
            data = b""
        self.assertEqual(data, b"")
        s.close()
        # and through httpx with HTTP/1.1 only
        with httpx.Client(http2=False, http1=True, verify=ca_ctx(Env.info["ca_file"])) as c:
            with self.assertRaises(httpx.TransportError):
                c.get(Env.url + "/_emulator/health")

    def test_settings_max_concurrent_streams(self):
        s = raw_tls(Env.info["port"], Env.info["ca_file"], ["h2"])
        self.assertEqual(s.selected_alpn_protocol(), "h2")
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        s.sendall(conn.data_to_send())
        got = None
        deadline = time.time() + 5
        while got is None and time.time() < deadline:
            for ev in conn.receive_data(s.recv(65535)):
                if isinstance(ev, h2.events.RemoteSettingsChanged):
                    got = conn.remote_settings.max_concurrent_streams
            s.sendall(conn.data_to_send())
        s.close()
        self.assertEqual(got, 1000)

    def test_tls_reuse_and_sigterm(self):
        ca_before = read_file(Env.info["ca_file"])
        proc, info, _, _, ready = start_emulator(
            Env.tmp, "second", ["--no-apns-token-update-limit", "--fault-rate", "0.5", "--fault-status", "503",
                                "--fault-service", "apns", "--fault-seed", "42"],
            Env.creds, state_dir=os.path.dirname(Env.info["ca_file"]))
        try:
            self.assertEqual(info["ca_file"], Env.info["ca_file"])
            self.assertEqual(read_file(info["ca_file"]), ca_before)
            self.assertNotEqual(info["port"], Env.info["port"])
            with httpx.Client(http2=True, verify=ca_ctx(info["ca_file"]), base_url=info["url"]) as c:
                h = {"apns-topic": TOPIC}
                codes = []
                for i in range(200):
                    h["authorization"] = "bearer " + Env.apns_jwt(iat=int(time.time()) - i % 3)
                    codes.append(c.post("/3/device/" + TOK_OK, headers=h, content=b'{"aps":{}}').status_code)
                n503 = codes.count(503)
                self.assertEqual(codes.count(200) + n503, 200)       # no 429: update limit is off
                self.assertTrue(60 <= n503 <= 140, n503)
                st = c.get("/_emulator/stats").json()
                self.assertEqual(st["faults"]["injected_apns"], n503)
        finally:
            t = time.time()
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(10)
        self.assertEqual(rc, 0)
        self.assertLess(time.time() - t, 3.0)
        self.assertFalse(os.path.exists(ready))


if __name__ == "__main__":
    unittest.main(verbosity=2)

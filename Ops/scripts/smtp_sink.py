"""An SMTP sink for tests and demos (aiosmtpd): every accepted message becomes a file in a Maildir
(DIR/new), with a `Received:` header on top naming the protocol as RFC 3848 does (`ESMTP`, `ESMTPS` over
TLS, `ESMTPA` authenticated, `ESMTPSA` both), so a test can tell how a message came in.

Addresses can be made to fail: a rules file (JSON, re-read on every recipient) maps a recipient address to a
reply, e.g. {"bounce@example.com": "550 5.1.1 mailbox unavailable",
"later@example.com": {"reply": "451 4.3.0 try again later", "times": 2}} (`times`: only the first N tries,
counted per process).

Service extensions: the environment variable FLEET_SMTP_SINK_EXTENSIONS (a comma list of PIPELINING and
CHUNKING, `none` for neither; default both) says what EHLO offers. Commands are read in order whatever is
offered (as any server reads them); BDAT (RFC 3030) is refused unless CHUNKING is offered. Every accepted
message is logged as `message via DATA|BDAT pipelined=yes|no` (pipelined: the RCPT command had arrived with
the MAIL command, in one write).

Options:
  --tls-cert PEM --tls-key PEM   offer STARTTLS with this certificate chain and key
  --require-starttls             refuse every command but EHLO, NOOP, QUIT and STARTTLS before TLS (530)
  AUTH: the environment variable FLEET_SMTP_SINK_AUTH=USER:PASSWORD (never on the command line) makes AUTH
  PLAIN/LOGIN required; it is offered only after STARTTLS when STARTTLS is offered, else in clear.
Every completed STARTTLS and every AUTH attempt is logged on stdout (mechanism and outcome, never the credentials).

Run: /usr/bin/python3 smtp_sink.py HOST PORT MAILDIR [RULES] [options]"""
import argparse, json, logging, mailbox, os, signal, ssl, threading
from email.utils import formatdate
# A daemon: drop descriptors inherited from whoever started the script (a Swift Process waits for its
# own socket to close before it reports the script's exit).
os.closerange(3, 4096)
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

EXTENSIONS = {"PIPELINING", "CHUNKING"}

def log(line):
    print(line, flush=True)

class Sink:
    def __init__(self, maildir, rules, extensions=frozenset()):
        self.box = mailbox.Maildir(maildir, create=True)
        self.rules = rules
        self.extensions = extensions
        self.counts = {}
        self.lock = threading.Lock()

    def rule(self, address):
        if not self.rules or not os.path.exists(self.rules):
            return None
        try:
            with open(self.rules, encoding="utf-8") as f:
                rules = json.load(f)
        except (OSError, ValueError):
            return None
        r = rules.get(address.lower())
        if r is None:
            return None
        if isinstance(r, str):
            return r
        with self.lock:
            n = self.counts.get(address, 0) + 1
            self.counts[address] = n
        return r["reply"] if n <= r.get("times", 1 << 30) else None

    def handle_STARTTLS(self, server, session, envelope):  # called by aiosmtpd without await
        cipher = (session.ssl or {}).get("cipher") or ("?", "?", 0)
        log(f"starttls ok {cipher[1]} {cipher[0]}")
        return True  # no client certificate asked for

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname  # what aiosmtpd does itself when there is no hook
        extra = [f"250-{e}" for e in sorted(self.extensions)]
        return responses[:-1] + extra + responses[-1:]

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        # Pipelined: the next command was already read with this one (one write from the client).
        envelope.pipelined = len(getattr(server._reader, "_buffer", b"")) > 0
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.rule(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        tls = session.ssl is not None
        protocol = "ESMTP" + ("S" if tls else "") + ("A" if session.authenticated else "")
        detail = ""
        if tls and session.ssl.get("cipher"):
            name, version, _ = session.ssl["cipher"]
            detail = f" (using {version} with cipher {name})"
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)
        received = (f"Received: from {session.host_name or 'unknown'} ([{peer}])\r\n"
                    f"\tby fleet-smtp-sink with {protocol}{detail};\r\n\t{formatdate()}\r\n")
        self.box.add(received.encode() + (envelope.original_content or envelope.content))
        via = "BDAT" if getattr(envelope, "bdat", None) is not None else "DATA"
        log(f"message via {via} pipelined={'yes' if getattr(envelope, 'pipelined', False) else 'no'}")
        return "250 2.0.0 accepted"


class ChunkingSMTP(SMTP):
    """aiosmtpd's server with BDAT (RFC 3030): chunks of exactly the announced size, no dot stuffing, the
    message handed to handle_DATA after the LAST chunk. The chunk is read even when the command is refused, as
    the RFC requires, so that the session stays in step."""

    def __init__(self, handler, chunking, **kwargs):
        super().__init__(handler, **kwargs)
        self.chunking = chunking

    async def smtp_BDAT(self, arg):
        if not self.chunking:
            await self.push("502 5.5.1 BDAT not offered")
            return
        words = (arg or "").split()
        if not words or not words[0].isdigit() or len(words) > 2 or (len(words) == 2 and words[1].upper() != "LAST"):
            await self.push("501 5.5.4 Syntax: BDAT size [LAST]")
            return
        size, last = int(words[0]), len(words) == 2
        chunk = await self._reader.readexactly(size) if size else b""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        if not self.envelope.rcpt_tos:
            await self.push("503 5.5.1 Error: need RCPT command")
            return
        if getattr(self.envelope, "bdat", None) is None:
            self.envelope.bdat = bytearray()
        self.envelope.bdat += chunk
        if len(self.envelope.bdat) > (self.data_size_limit or 1 << 62):
            self._set_post_data_state()
            await self.push("552 5.3.4 Error: too much mail data")
            return
        if not last:
            await self.push(f"250 2.0.0 {size} octets received")
            return
        self.envelope.original_content = bytes(self.envelope.bdat)
        self.envelope.content = self.envelope.original_content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is None else status)


class SinkController(Controller):
    def __init__(self, handler, chunking, **kwargs):
        self.chunking = chunking
        super().__init__(handler, **kwargs)

    def factory(self):
        return ChunkingSMTP(self.handler, self.chunking, **self.SMTP_kwargs)

def authenticator(user, password):
    """AUTH PLAIN/LOGIN against one USER:PASSWORD pair; logs the outcome, not the credentials."""
    def check(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == user.encode()
              and auth_data.password == password.encode())
        log(f"auth {mechanism} {'ok' if ok else 'failed'} tls={'yes' if session.ssl is not None else 'no'}")
        return AuthResult(success=ok, handled=False)  # aiosmtpd answers 235 or 535
    return check

def tls_context(cert, key):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context

def main():
    logging.getLogger("mail.log").setLevel(logging.ERROR)  # aiosmtpd's own deprecation notices on every AUTH
    parser = argparse.ArgumentParser(description="an SMTP sink writing a Maildir")
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("maildir")
    parser.add_argument("rules", nargs="?")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--require-starttls", action="store_true")
    args = parser.parse_args()
    options = {"data_size_limit": 10 << 20}
    if args.tls_cert or args.tls_key:
        if not (args.tls_cert and args.tls_key):
            parser.error("--tls-cert and --tls-key go together")
        options["tls_context"] = tls_context(args.tls_cert, args.tls_key)
        options["require_starttls"] = args.require_starttls
    elif args.require_starttls:
        parser.error("--require-starttls needs --tls-cert and --tls-key")
    auth = os.environ.get("FLEET_SMTP_SINK_AUTH", "")
    if auth:
        user, sep, password = auth.partition(":")
        if not sep:
            parser.error("FLEET_SMTP_SINK_AUTH must be USER:PASSWORD")
        options["authenticator"] = authenticator(user, password)
        options["auth_required"] = True
        # With STARTTLS on offer AUTH waits for it (aiosmtpd's default); without, it is offered in clear.
        options["auth_require_tls"] = "tls_context" in options
        # FLEET_SMTP_SINK_AUTH_MECHANISMS (e.g. LOGIN) limits what EHLO lists; default PLAIN and LOGIN.
        allowed = {m.strip().upper() for m in os.environ.get("FLEET_SMTP_SINK_AUTH_MECHANISMS", "PLAIN,LOGIN").split(",") if m.strip()}
        if not allowed <= {"PLAIN", "LOGIN"}:
            parser.error("FLEET_SMTP_SINK_AUTH_MECHANISMS takes PLAIN and LOGIN only")
        options["auth_exclude_mechanism"] = sorted({"PLAIN", "LOGIN"} - allowed)
    raw = os.environ.get("FLEET_SMTP_SINK_EXTENSIONS", "PIPELINING,CHUNKING").strip().upper()
    extensions = frozenset() if raw in ("", "NONE") else frozenset(e.strip() for e in raw.split(",") if e.strip())
    if not extensions <= EXTENSIONS:
        parser.error("FLEET_SMTP_SINK_EXTENSIONS takes PIPELINING and CHUNKING (or none)")
    controller = SinkController(Sink(args.maildir, args.rules, extensions), "CHUNKING" in extensions,
                                hostname=args.host, port=args.port, **options)
    controller.start()
    features = [f for f, on in (("starttls", "tls_context" in options), ("require-starttls", args.require_starttls),
                                ("auth", bool(auth))) if on] + sorted(e.lower() for e in extensions)
    log(f"smtp sink on {args.host}:{args.port} -> {args.maildir}" + (f" ({', '.join(features)})" if features else ""))
    stop = threading.Event()
    # A parent that spawned us from a thread with signals blocked (a Swift process) passes its mask on.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    # FLEET_SMTP_SINK_WATCH_PID: stop when that process (a test run) is gone, so a sink never outlives it.
    watch = int(os.environ.get("FLEET_SMTP_SINK_WATCH_PID", "0") or "0")
    while not stop.wait(0.5):  # a bounded wait, so the signal handler gets to run
        if watch:
            try:
                os.kill(watch, 0)
            except ProcessLookupError:
                log(f"process {watch} is gone; stopping")
                break
            except PermissionError:
                pass
    controller.stop()

if __name__ == "__main__":
    main()

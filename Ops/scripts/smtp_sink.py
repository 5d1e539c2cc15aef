"""An SMTP sink for tests and demos (aiosmtpd): every accepted message becomes a file in a Maildir
(DIR/new). Addresses can be made to fail: a rules file (JSON, re-read on every recipient) maps a recipient
address to a reply, e.g. {"bounce@example.com": "550 5.1.1 mailbox unavailable",
"later@example.com": {"reply": "451 4.3.0 try again later", "times": 2}} (`times`: only the first N tries,
counted per process). Run: /usr/bin/python3 smtp_sink.py HOST PORT MAILDIR [RULES]"""
import json, mailbox, os, signal, sys, threading
# A daemon: drop descriptors inherited from whoever started the script (a Swift Process waits for its
# own socket to close before it reports the script's exit).
os.closerange(3, 4096)
from aiosmtpd.controller import Controller

class Sink:
    def __init__(self, maildir, rules):
        self.box = mailbox.Maildir(maildir, create=True)
        self.rules = rules
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

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.rule(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.box.add(envelope.original_content or envelope.content)
        return "250 2.0.0 accepted"

def main():
    host, port, maildir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    rules = sys.argv[4] if len(sys.argv) > 4 else None
    controller = Controller(Sink(maildir, rules), hostname=host, port=port, data_size_limit=10 << 20)
    controller.start()
    print(f"smtp sink on {host}:{port} -> {maildir}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(0.5):  # a bounded wait, so the signal handler gets to run
        pass
    controller.stop()

if __name__ == "__main__":
    main()

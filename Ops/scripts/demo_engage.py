"""The demo's recipients: open, click, unsubscribe and buy, through the real links of the mails in a Maildir.

    python3 demo_engage.py MAILDIR OUT_NDJSON PEOPLE

Reads every message of MAILDIR/new, and for a share of them (decided by a hash of the Message-ID, so a rerun
behaves the same) requests the open pixel and a tracked link exactly as a mail client would (the URLs from the
html part, answered by `fleet serve`), posts a few RFC 8058 one-click unsubscribes to the List-Unsubscribe URL,
and writes crm `track` jobs (purchases) for some of the clickers to OUT_NDJSON: conversions attributed by last
click. Variant b's mail has a button: its readers click more often (the campaign report should see it).
Everyone (profiles p0 .. p<PEOPLE-1>, mail or not, the holdout too) also buys now and then on their own: 3%.
Prints one summary line.
"""
import email
import email.policy
import hashlib
import json
import os
import re
import sys
import urllib.error
import urllib.request
from datetime import datetime, timezone

maildir, out_path, people = sys.argv[1], sys.argv[2], int(sys.argv[3])
now = None  # the purchases' time: set after every click was made (a purchase follows its click)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


opener = urllib.request.build_opener(NoRedirect)


def share(key, salt):
    """A stable number in [0, 1) for a message and a purpose."""
    return int(hashlib.sha256((salt + key).encode()).hexdigest()[:8], 16) / 2**32


def request(url, data=None):
    req = urllib.request.Request(url, data=data, headers={"User-Agent": "fleet-demo"})
    try:
        with opener.open(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


counts = {"mails": 0, "opens": 0, "clicks": 0, "unsubscribes": 0, "purchases": 0, "errors": 0}
jobs = []
new = os.path.join(maildir, "new")
for name in sorted(os.listdir(new)):
    with open(os.path.join(new, name), "rb") as f:
        msg = email.message_from_binary_file(f, policy=email.policy.default)
    counts["mails"] += 1
    mid = msg["Message-ID"] or name
    variant = msg["X-Campaign-Variant"] or "default"
    job = msg["X-Fleet-Job-ID"] or ""
    profile = job.split(":", 1)[1] if ":" in job else ""
    html = msg.get_body(preferencelist=("html",)).get_content()
    pixel = re.findall(r'<img src="([^"]+/o/[^"]+\.gif)"', html)
    links = [u.replace("&amp;", "&") for u in re.findall(r'href="([^"]+/c/[^"]+)"', html)]
    if pixel and share(mid, "open") < 0.45:
        counts["opens"] += 1
        if request(pixel[0]) != 200:
            counts["errors"] += 1
        click_rate = 0.30 if variant == "b" else 0.18
        if links and share(mid, "click") < click_rate:
            counts["clicks"] += 1
            if request(links[int(share(mid, "which") * len(links))]) != 302:
                counts["errors"] += 1
            if share(mid, "buy") < 0.35:
                counts["purchases"] += 1
                jobs.append({"id": f"demo-buy-{profile}", "kind": "crm", "data": {
                    "op": "track", "op_id": f"demo-buy-{profile}", "profile_id": profile, "event_id": f"demo-buy-{profile}",
                    "event": "order_completed", "occurred_at": now, "amount": 20 + int(share(mid, "amount") * 80), "currency": "EUR"}})
    unsubscribe = (msg["List-Unsubscribe"] or "").strip("<>")
    if unsubscribe.startswith("http") and share(mid, "unsubscribe") < 0.01:
        counts["unsubscribes"] += 1
        if request(unsubscribe, data=b"List-Unsubscribe=One-Click") != 200:
            counts["errors"] += 1
now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
for j in jobs:
    j["data"]["occurred_at"] = now
buyers = {j["data"]["profile_id"] for j in jobs}
for i in range(people):
    profile = f"p{i}"
    if profile not in buyers and share(profile, "own") < 0.03:
        counts["purchases"] += 1
        jobs.append({"id": f"demo-buy-{profile}", "kind": "crm", "data": {
            "op": "track", "op_id": f"demo-buy-{profile}", "profile_id": profile, "event_id": f"demo-buy-{profile}",
            "event": "order_completed", "occurred_at": now, "amount": 30, "currency": "EUR"}})
with open(out_path, "w") as f:
    for j in jobs:
        f.write(json.dumps(j) + "\n")
print(json.dumps(counts))
